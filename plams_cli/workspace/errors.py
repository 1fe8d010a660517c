"""Errors of the workspace beyond those in :mod:`plams_cli.errors`.

They mix in the built-in category signac raises for the same case (``KeyError`` for an
unknown job id, ``LookupError`` for an ambiguous prefix, ``TypeError`` for a key that is not
a string), so code written for signac keeps catching them.
"""

from __future__ import annotations

import errno
from typing import ClassVar

from plams_cli.errors import (
    DestinationExistsError,
    JobsCorruptedError,
    NotAWorkspaceError,
    PlamsError,
    WorkspaceError,
)

__all__ = [
    "WorkspaceError",
    "NotAWorkspaceError",
    "DestinationExistsError",
    "JobsCorruptedError",
    "JobNotFoundError",
    "AmbiguousJobIdError",
    "StatepointKeyError",
    "JobRemovedError",
    "KeyTypeError",
    "InvalidKeyError",
    "FilterError",
    "ProjectNotFoundError",
    "IncompatibleSchemaVersion",
    "H5StoreClosedError",
    "H5StoreAlreadyOpenError",
    "NumpyConversionWarning",
]


class _MessageMixin:
    """``str()`` is the message itself, without the quotes ``KeyError`` adds."""

    args: tuple[object, ...]

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobNotFoundError(_MessageMixin, PlamsError, KeyError):
    """No job in the workspace has the given id (or id prefix)."""

    exit_code: ClassVar[int] = 2

    def __init__(self, job_id: str, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message or f"no job with id {job_id!r} in the workspace")


class AmbiguousJobIdError(_MessageMixin, PlamsError, LookupError):
    """An id prefix matches more than one job."""

    exit_code: ClassVar[int] = 2

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = sorted(matches)
        shown = ", ".join(self.matches[:5]) + (", …" if len(self.matches) > 5 else "")
        super().__init__(
            f"id prefix {prefix!r} matches {len(self.matches)} jobs ({shown}); give more digits"
        )


class StatepointKeyError(_MessageMixin, PlamsError, KeyError):
    """``update_statepoint`` would change an existing key without ``overwrite=True``."""

    def __init__(self, key: str, old: object, new: object) -> None:
        self.key = key
        super().__init__(
            f"state point key {key!r} is already {old!r}; pass overwrite=True to set it to {new!r}"
        )


class JobRemovedError(_MessageMixin, WorkspaceError, FileNotFoundError, KeyError):
    """The job's folder was moved or removed since this :class:`Job` object last saw it.

    Raised instead of writing through a stale object, which would otherwise create a job
    folder without a state point, or move the job only in memory. It is an ``OSError``
    (``FileNotFoundError``, what signac raises when writing the document of such a job)
    and a ``KeyError`` (what signac raises when changing its state point). Open the job
    again with :meth:`Workspace.open_job`, or call :meth:`Job.init` to create it anew.
    """

    def __init__(self, job_id: str, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(
            message
            or f"job {job_id} was moved or removed (by another process or another Job "
            "object) since this Job object last used it; open it again with "
            "Workspace.open_job(), or call init() to create it anew"
        )
        self.errno = errno.ENOENT  # as the FileNotFoundError signac raises has


class KeyTypeError(_MessageMixin, PlamsError, TypeError):
    """A state point or document key is not a string (JSON would turn ``1`` into ``"1"``).

    signac raises its own ``KeyTypeError``, also a ``TypeError``, for the same keys.
    """


class InvalidKeyError(_MessageMixin, PlamsError, ValueError):
    """A state point or document key contains a dot, which filters use to reach nested keys.

    signac raises its own ``InvalidKeyError``, also a ``ValueError``, for the same keys.
    """


class FilterError(PlamsError, ValueError):
    """A filter is malformed, or cannot be applied to the values the jobs hold.

    Raised for an unknown operator, an operator argument of the wrong kind (``$regex``
    without a valid pattern, ``$near`` without numbers, ...), and where signac's
    ``find_jobs`` would raise for the same filter on the same data (``$gt`` between a
    string and a number).
    """

    exit_code: ClassVar[int] = 2

class ProjectNotFoundError(NotAWorkspaceError, LookupError):
    """A folder (and, when searching, none of its parents) holds no workspace.

    A ``LookupError``, what signac's ``get_project`` raises for the same folder, and a
    :class:`~plams_cli.errors.NotAWorkspaceError` (exit status 2).
    """


class IncompatibleSchemaVersion(WorkspaceError):
    """The project was written by another signac schema version (signac 1, or a newer one).

    signac raises its own ``IncompatibleSchemaVersion`` for the same projects. The
    project is never changed: migrate it with ``python -m signac migrate``.
    """


class H5StoreClosedError(WorkspaceError, RuntimeError):
    """An HDF5 store's open file was asked for while the store is closed.

    A ``RuntimeError``, as signac's is.
    """


class H5StoreAlreadyOpenError(WorkspaceError):
    """An HDF5 store that is open already was opened again (``store.open(mode)``).

    An ``OSError``, as signac's is. ``with store:`` inside an open store is allowed.
    """


class NumpyConversionWarning(UserWarning):
    """A NumPy value was stored in a state point or document as the plain value JSON holds.

    Emitted where signac emits its own ``NumpyConversionWarning``: NumPy scalars become
    Python numbers and arrays become lists, so they read back as those.
    """
