"""Runners: where a job's runscript is executed (this machine, or a queueing system)."""

from __future__ import annotations

from typing import Any

from plams_cli.runners.local import JobRunner as JobRunner
from plams_cli.runners.local import cancel_all as cancel_all

__all__ = ["JobRunner", "GridRunner", "DaskRunner", "cancel_all", "runner_from_defaults"]


def runner_from_defaults(name: Any) -> Any:
    """The runner ``default_jobrunner: NAME`` of the YAML defaults names: ``local`` or ``dask``.

    ``dask`` is a :class:`~plams_cli.runners.dask.DaskRunner` with the ``daskrunner``
    branch's settings; its cluster starts with the first job.

    Raises
    ------
    ConfigError
        Another name.
    """
    from plams_cli.errors import ConfigError

    if name == "local":
        return JobRunner()
    if name == "dask":
        from plams_cli.runners.dask import DaskRunner

        return DaskRunner()
    raise ConfigError(f"default_jobrunner = {name!r} in the defaults: must be local or dask")


def __getattr__(name: str) -> Any:
    # GridRunner is imported on first use: most runs never touch a queue.
    if name == "GridRunner":
        from plams_cli.runners.grid import GridRunner

        return GridRunner
    if name == "DaskRunner":
        from plams_cli.runners.dask import DaskRunner

        return DaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
