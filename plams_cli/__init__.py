"""plams-cli: run, restart, track and submit computational jobs.

``from plams_cli import *`` gives the job layer of PLAMS (Settings, config, init, finish,
log, JobStatus, Job, SingleJob, MultiJob, Results, JobManager, load, load_all), the
runners (JobRunner, GridRunner) and the errors.
"""

from __future__ import annotations

from typing import Any

from plams_cli.core import JobManager as JobManager
from plams_cli.core import JobStatus as JobStatus
from plams_cli.core import Job as Job
from plams_cli.core import MultiJob as MultiJob
from plams_cli.core import Results as Results
from plams_cli.core import Settings as Settings
from plams_cli.core import ShellJob as ShellJob
from plams_cli.core import SingleJob as SingleJob
from plams_cli.core import config as config
from plams_cli.core import finish as finish
from plams_cli.core import init as init
from plams_cli.core import load as load
from plams_cli.core import load_all as load_all
from plams_cli.core import log as log
from plams_cli.errors import ConfigError as ConfigError
from plams_cli.errors import CorruptedJobFileError as CorruptedJobFileError
from plams_cli.errors import FileError as FileError
from plams_cli.errors import GridError as GridError
from plams_cli.errors import JobError as JobError
from plams_cli.errors import PlamsError as PlamsError
from plams_cli.errors import ResultsError as ResultsError
from plams_cli.runners.local import JobRunner as JobRunner

__all__ = [
    "Settings", "config", "init", "finish", "log", "JobStatus", "Job", "SingleJob", "MultiJob",
    "ShellJob", "Results", "JobManager", "load", "load_all", "JobRunner", "GridRunner",
    "PlamsError", "FileError", "CorruptedJobFileError", "JobError", "ResultsError", "GridError",
    "ConfigError",
]


def __getattr__(name: str) -> Any:
    # GridRunner loads its module on first use: most runs never touch a queue.
    if name == "GridRunner":
        from plams_cli.runners import GridRunner

        return GridRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
