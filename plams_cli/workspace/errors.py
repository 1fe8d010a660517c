"""Errors of the workspace beyond those in :mod:`plams_cli.errors`.

They mix in the built-in category signac raises for the same case (``KeyError`` for an
unknown job id, ``LookupError`` for an ambiguous prefix), so code written for signac keeps
catching them.
"""

from __future__ import annotations

from plams_cli.errors import DestinationExistsError, JobsCorruptedError, PlamsError, WorkspaceError

__all__ = [
    "WorkspaceError",
    "DestinationExistsError",
    "JobsCorruptedError",
    "JobNotFoundError",
    "AmbiguousJobIdError",
    "StatepointKeyError",
    "FilterError",
]


class _MessageMixin:
    """``str()`` is the message itself, without the quotes ``KeyError`` adds."""

    args: tuple[object, ...]

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobNotFoundError(_MessageMixin, PlamsError, KeyError):
    """No job in the workspace has the given id (or id prefix)."""

    def __init__(self, job_id: str, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message or f"no job with id {job_id!r} in the workspace")


class AmbiguousJobIdError(_MessageMixin, PlamsError, LookupError):
    """An id prefix matches more than one job."""

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


class FilterError(PlamsError, ValueError):
    """A filter is malformed, or cannot be applied to the values the jobs hold.

    Raised for an unknown operator, an operator argument of the wrong kind (``$regex``
    without a valid pattern, ``$near`` without numbers, ...), and where signac's
    ``find_jobs`` would raise for the same filter on the same data (``$gt`` between a
    string and a number).
    """
