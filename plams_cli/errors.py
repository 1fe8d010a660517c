"""The one exception hierarchy of plams-cli.

Every error a user can cause derives from :class:`PlamsError`. Each class is also mixed
with the built-in category it belongs to (``OSError``, ``RuntimeError``, ``ValueError`` …)
so that code written against the built-ins keeps working. ``exit_code`` is the status the
command line exits with when such an error reaches it, by one rule: 2 for anything wrong in
what the user gave (arguments, options, the files and folders they name, environment
variables, defaults files), 1 for a failure while doing the work.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PlamsError",
    "ConfigError",
    "FileError",
    "CorruptedJobFileError",
    "JobError",
    "NotStartedError",
    "ResultsError",
    "ResultFileNotFoundError",
    "JobClassMismatchError",
    "GridError",
    "SchedulerNotFoundError",
    "UnknownGridError",
    "SubmitError",
    "QueueQueryError",
    "WorkspaceError",
    "NotAWorkspaceError",
    "DestinationExistsError",
    "JobsCorruptedError",
    "UserError",
    "LockException",
    "JobCacheError",
    "CorruptedCacheError",
    "CacheVersionError",
    "NotRestartableError",
    "FolderInUseError",
    "SessionError",
    "DaskError",
    "DaskNotInstalledError",
    "SchedulerConnectionError",
    "WorkerLostError",
]


class PlamsError(Exception):
    """Base class of every error raised on purpose by plams-cli."""

    exit_code: ClassVar[int] = 1


class ConfigError(PlamsError, ValueError):
    """A configuration value, an environment variable or a defaults file is invalid."""

    exit_code: ClassVar[int] = 2


class FileError(PlamsError, OSError):
    """A file or folder is missing, unreadable or not what was expected."""

    def __str__(self) -> str:
        # OSError's __str__ formats "[Errno n] ..." only when errno is set; we always
        # pass a single message, so show it as it is.
        return str(self.args[0]) if self.args else ""


class CorruptedJobFileError(FileError):
    """A saved job file (``.dill``) is truncated, corrupt or not a plams job."""


class JobError(PlamsError, RuntimeError):
    """A job was used in a way its state does not allow (e.g. run twice)."""


class NotStartedError(JobError):
    """A job was refused before its runscript started, as the run was cancelled (Ctrl-C)."""

    def __init__(self, message: str = "not started: the run was cancelled") -> None:
        super().__init__(message)


class ResultsError(PlamsError, RuntimeError):
    """Results were asked for that the job does not have."""


class ResultFileNotFoundError(FileError, ResultsError, FileNotFoundError):
    """A job has no file of that name: a :class:`FileError` and a :class:`ResultsError` both.

    PLAMS raises ``ResultsError`` from ``read_file`` and ``FileError`` from ``results[name]``;
    this one class answers ``except`` clauses written for either.
    """


class JobClassMismatchError(PlamsError, ValueError):
    """A saved job is not of the class ``SomeJob.load(..., strict=True)`` expects."""

    exit_code: ClassVar[int] = 2


class GridError(PlamsError, RuntimeError):
    """A queueing system could not be used."""


class SchedulerNotFoundError(GridError):
    """No queueing system was found, or the one named does not exist."""


class UnknownGridError(SchedulerNotFoundError):
    """A grid was named (``grid=NAME``, ``$PLAMS_GRID``, ``plams grid show NAME``) that is not defined."""

    exit_code: ClassVar[int] = 2


class SubmitError(GridError):
    """The scheduler refused a submission or printed no job id."""


class QueueQueryError(GridError):
    """Asking the scheduler about jobs failed; their state is unknown for now."""


class WorkspaceError(PlamsError, OSError):
    """A workspace or one of its jobs could not be read or written."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotAWorkspaceError(WorkspaceError):
    """The folder named as a workspace is missing or holds no workspace."""

    exit_code: ClassVar[int] = 2


class DestinationExistsError(WorkspaceError, RuntimeError):
    """A state point change would land on a job that already exists.

    A ``RuntimeError``, as signac's is, and an ``OSError`` like every workspace error.
    """

    def __init__(self, destination: object, message: str | None = None) -> None:
        self.destination = destination
        super().__init__(message or f"a job with id {destination} already exists")


class JobsCorruptedError(WorkspaceError, RuntimeError):
    """One or more workspace jobs have an unreadable or inconsistent state point file.

    A ``RuntimeError``, as signac's is, and an ``OSError`` like every workspace error.
    """

    def __init__(self, job_ids: list[str]) -> None:
        self.job_ids = list(job_ids)
        super().__init__(
            "corrupted state point file in job(s): " + ", ".join(self.job_ids)
        )


class UserError(PlamsError, ValueError):
    """Something the user gave the job cache is wrong: an unknown key, a bad status,
    regular expression or index (job_manager's name)."""

    exit_code: ClassVar[int] = 2


class LockException(PlamsError, TimeoutError):
    """The job cache stayed locked by another process past the timeout (job_manager's name)."""


class JobCacheError(PlamsError, OSError):
    """The job cache could not be read or written (read-only, full disk …)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptedCacheError(JobCacheError):
    """The job cache file is corrupt, or is not a plams-cli job cache at all."""

    exit_code: ClassVar[int] = 2


class CacheVersionError(JobCacheError):
    """The job cache was written by a newer plams-cli (its schema version is unknown here)."""

    exit_code: ClassVar[int] = 2


class NotRestartableError(PlamsError, ValueError):
    """A run was asked to restart a folder that cannot be restarted; the message says why."""

    exit_code: ClassVar[int] = 2


class FolderInUseError(NotRestartableError):
    """A live ``plams`` run holds the lock of the folder a restart was to take."""

    def __init__(self, folder: str, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        super().__init__(f"{folder} is in use by plams (pid {pid if pid is not None else '?'}); "
                         "wait for it or stop it")


class SessionError(PlamsError, RuntimeError):
    """A :class:`~plams_cli.core.session.Session` was used out of turn (e.g. started while a run goes on)."""


class DaskError(PlamsError, RuntimeError):
    """A Dask cluster could not be used by :class:`~plams_cli.runners.dask.DaskRunner`."""


class DaskNotInstalledError(DaskError, ImportError):
    """``DaskRunner`` was asked for, and the extra ``plams-cli[dask]`` is not installed."""


class SchedulerConnectionError(DaskError, ConnectionError):
    """The Dask scheduler did not answer in time (``scheduler_address``, or a cluster that did not start)."""


class WorkerLostError(DaskError):
    """The Dask worker running a job was lost mid-job (its batch job killed, its process died)."""
