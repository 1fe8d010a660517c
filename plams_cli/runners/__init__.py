"""Runners: where a job's runscript is executed (this machine, or a queueing system)."""

from __future__ import annotations

from typing import Any

from plams_cli.runners.local import JobRunner as JobRunner
from plams_cli.runners.local import cancel_all as cancel_all

__all__ = ["JobRunner", "GridRunner", "cancel_all"]


def __getattr__(name: str) -> Any:
    # GridRunner is imported on first use: most runs never touch a queue.
    if name == "GridRunner":
        from plams_cli.runners.grid import GridRunner

        return GridRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
