"""The job layer: settings, config, jobs, results, the job manager and saved jobs."""

from __future__ import annotations

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

__all__ = [
    "Settings", "config", "init", "finish", "log", "JobStatus", "Job", "SingleJob", "MultiJob",
    "ShellJob", "Results", "JobManager", "load", "load_all", "add_to_class", "add_to_instance",
]
