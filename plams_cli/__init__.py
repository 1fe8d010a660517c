"""plams-cli: run, restart, track and submit computational jobs.

``from plams_cli import *`` gives the job layer of PLAMS (Settings, config, init, finish,
log, JobStatus, Job, SingleJob, MultiJob, Results, JobManager, load, load_all,
add_to_class, add_to_instance), the
runners (JobRunner, GridRunner, DaskRunner) and the errors.

Names load on first use (PEP 562), so ``import plams_cli.workspace`` does not pay for
the job layer, nor a job script for the grid code it never touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: the package's version (the wheel's metadata is made from it)
__version__ = "0.1.0"

_WHERE = {
    **dict.fromkeys(
        ("Settings", "config", "init", "finish", "log", "JobStatus", "Job", "SingleJob",
         "MultiJob", "ShellJob", "Results", "JobManager", "load", "load_all", "add_to_class",
         "add_to_instance"),
        "plams_cli.core",
    ),
    "JobRunner": "plams_cli.runners.local",
    "GridRunner": "plams_cli.runners.grid",
    "DaskRunner": "plams_cli.runners.dask",
    **dict.fromkeys(
        ("PlamsError", "FileError", "CorruptedJobFileError", "JobError", "ResultsError",
         "ResultFileNotFoundError", "JobClassMismatchError", "GridError", "ConfigError"),
        "plams_cli.errors",
    ),
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from plams_cli.core import (
        Job as Job,
    )
    from plams_cli.core import (
        JobManager as JobManager,
    )
    from plams_cli.core import (
        JobStatus as JobStatus,
    )
    from plams_cli.core import (
        MultiJob as MultiJob,
    )
    from plams_cli.core import (
        Results as Results,
    )
    from plams_cli.core import (
        Settings as Settings,
    )
    from plams_cli.core import (
        ShellJob as ShellJob,
    )
    from plams_cli.core import (
        SingleJob as SingleJob,
    )
    from plams_cli.core import (
        add_to_class as add_to_class,
    )
    from plams_cli.core import (
        add_to_instance as add_to_instance,
    )
    from plams_cli.core import (
        config as config,
    )
    from plams_cli.core import (
        finish as finish,
    )
    from plams_cli.core import (
        init as init,
    )
    from plams_cli.core import (
        load as load,
    )
    from plams_cli.core import (
        load_all as load_all,
    )
    from plams_cli.core import (
        log as log,
    )
    from plams_cli.errors import (
        ConfigError as ConfigError,
    )
    from plams_cli.errors import (
        CorruptedJobFileError as CorruptedJobFileError,
    )
    from plams_cli.errors import (
        FileError as FileError,
    )
    from plams_cli.errors import (
        GridError as GridError,
    )
    from plams_cli.errors import (
        JobClassMismatchError as JobClassMismatchError,
    )
    from plams_cli.errors import (
        JobError as JobError,
    )
    from plams_cli.errors import (
        PlamsError as PlamsError,
    )
    from plams_cli.errors import (
        ResultFileNotFoundError as ResultFileNotFoundError,
    )
    from plams_cli.errors import (
        ResultsError as ResultsError,
    )
    from plams_cli.runners.dask import DaskRunner as DaskRunner
    from plams_cli.runners.grid import GridRunner as GridRunner
    from plams_cli.runners.local import JobRunner as JobRunner
