"""Runners that hold something to close when the run ends (a ``DaskRunner``'s cluster).

Kept apart from :mod:`plams_cli.runners.base` so that ``finish()`` needs nothing more than
this module (start-up cost: see ``tests/test_startup.py``).
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

__all__ = ["register_closing", "close_runners"]


class _Closing(Protocol):
    def close(self) -> Any: ...


_closing: weakref.WeakSet[Any] = weakref.WeakSet()


def register_closing(runner: _Closing) -> None:
    """Have ``finish()`` call ``runner.close()`` (a runner holding a cluster, e.g. ``DaskRunner``)."""
    _closing.add(runner)


def close_runners() -> None:
    """Close every runner registered with :func:`register_closing` (``finish()`` calls it)."""
    for runner in list(_closing):
        runner.close()
