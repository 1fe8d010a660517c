"""The job layer: settings, config, jobs, results, the job manager and saved jobs.

Names load on first use (PEP 562), as in :mod:`plams_cli`: ``plams_cli.init()`` loads
the run's folder and log, not the job classes, results or hashing a script may never use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Settings": "plams_cli.core.settings",
    "config": "plams_cli.core.runtime",
    "init": "plams_cli.core.runtime",
    "finish": "plams_cli.core.runtime",
    "log": "plams_cli.core.logger",
    "JobStatus": "plams_cli.core.status",
    "Job": "plams_cli.core.jobs",
    "SingleJob": "plams_cli.core.jobs",
    "MultiJob": "plams_cli.core.jobs",
    "ShellJob": "plams_cli.core.jobs",
    "Results": "plams_cli.core.results",
    "JobManager": "plams_cli.core.jobmanager",
    "load": "plams_cli.core.pickling",
    "load_all": "plams_cli.core.pickling",
    "add_to_class": "plams_cli.core.binding",
    "add_to_instance": "plams_cli.core.binding",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        # ``plams_cli.core.lifecycle`` without importing it first worked while this file
        # imported everything: a submodule still loads on first use.
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from plams_cli.core.binding import add_to_class as add_to_class
    from plams_cli.core.binding import add_to_instance as add_to_instance
    from plams_cli.core.jobmanager import JobManager as JobManager
    from plams_cli.core.jobs import Job as Job
    from plams_cli.core.jobs import MultiJob as MultiJob
    from plams_cli.core.jobs import ShellJob as ShellJob
    from plams_cli.core.jobs import SingleJob as SingleJob
    from plams_cli.core.logger import log as log
    from plams_cli.core.pickling import load as load
    from plams_cli.core.pickling import load_all as load_all
    from plams_cli.core.results import Results as Results
    from plams_cli.core.runtime import config as config
    from plams_cli.core.runtime import finish as finish
    from plams_cli.core.runtime import init as init
    from plams_cli.core.settings import Settings as Settings
    from plams_cli.core.status import JobStatus as JobStatus
