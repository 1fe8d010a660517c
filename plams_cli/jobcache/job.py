"""``Job``: one recorded job, with job_manager's fields and methods."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from plams_cli.errors import UserError
from plams_cli.jobcache.status import JobStatus, parse_status

__all__ = ["Job", "FIELDS", "SPEC_FIELDS", "MATCH_FIELDS", "compile_pattern"]

#: job_manager's fields, in its order
FIELDS = ("job_id", "program", "path", "input_fname", "output_fname", "status", "submit", "comment")
#: what plams-cli adds: how to check the job (``local`` or ``grid``), the grid's name,
#: and the start time of the local process (to tell a reused PID from the job)
EXTRA_FIELDS = ("kind", "grid", "pid_start")
#: every key a job spec may have
SPEC_FIELDS = FIELDS + EXTRA_FIELDS
#: the fields :meth:`Job.match` searches
MATCH_FIELDS = FIELDS + ("kind", "grid")
_REQUIRED = ("path",)


def compile_pattern(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """``pattern`` compiled; ``None`` (or an empty pattern) matches every job.

    Raises
    ------
    UserError
        ``pattern`` is not a valid regular expression.
    """
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    if pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"bad regular expression {pattern!r}: {exc}") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def check_spec(job_spec: Mapping[str, Any]) -> None:
    """Raise :class:`UserError` for an unknown key or a status that is not a :class:`JobStatus` name."""
    unknown = [key for key in job_spec if key not in SPEC_FIELDS]
    if unknown:
        raise UserError(f"unknown job field {unknown[0]!r}; the fields are {', '.join(SPEC_FIELDS)}")
    status = job_spec.get("status")
    if status not in (None, ""):
        parse_status(status)
    pid_start = job_spec.get("pid_start")
    if pid_start not in (None, ""):
        try:
            float(pid_start)
        except (TypeError, ValueError):
            raise UserError(f"pid_start must be a number of seconds, not {pid_start!r}") from None


class Job:
    """One job: what runs (``program``), where (``path``), under which id, and how it stands.

    Parameters
    ----------
    job_id
        The local process id or the queueing system's id (kept as a string).
    program
        What runs (for jobs recorded by plams, the job's class).
    path
        The job's folder; with the host name, it identifies the job in the cache.
    input_fname, output_fname, submit, comment
        The input and output file, the runscript submitted, and free text.
    status
        A :class:`JobStatus` or its name; ``None`` is ``unknown``.
    kind, grid, pid_start
        How :meth:`auto_update` checks the job: ``"local"`` (a process), ``"grid"``
        (a queued job on the grid named ``grid``) or ``"dask"`` (a job on a Dask worker;
        ``job_id`` is the worker's batch job on ``grid``), and the start time of the process.
    mtime
        The modification time (seconds since the epoch); now when not given.

    Raises
    ------
    UserError
        ``status`` is not a :class:`JobStatus` name.
    """

    def __init__(
        self,
        job_id: str | int | None,
        program: str | None,
        path: str,
        input_fname: str | None = None,
        output_fname: str | None = None,
        status: str | JobStatus | None = None,
        submit: str | None = None,
        comment: str | None = None,
        *,
        kind: str | None = None,
        grid: str | None = None,
        pid_start: float | None = None,
        mtime: float | None = None,
    ) -> None:
        if not path:
            raise UserError("a job needs a path (its folder)")
        self.job_id = _text(job_id)
        self.program = _text(program)
        self.path = str(path)
        self.input_fname = _text(input_fname)
        self.output_fname = _text(output_fname)
        self.status = parse_status(status) if status else JobStatus.unknown
        self.submit = _text(submit)
        self.comment = _text(comment)
        self.kind = _text(kind)
        self.grid = _text(grid)
        self.pid_start = None if pid_start is None else float(pid_start)
        self._timestamp = time.time() if mtime is None else float(mtime)
        #: (path, mtime) of the row as last read from or written to the store; None: new
        self._saved: tuple[str, float] | None = None
        #: changed by the user since it was saved (written if newer than the stored row)
        self._edited = False
        #: changed by a status check since it was saved (written only if nobody else
        #: changed the row meanwhile: a live writer knows better than a check)
        self._auto = False

    @classmethod
    def from_spec(cls, job_spec: Mapping[str, Any], mtime: float | None = None) -> Job:
        """A job from a job spec (see :meth:`job_spec`); ``None`` values are left out.

        Raises
        ------
        UserError
            An unknown key, a bad status, or no ``path``.
        """
        check_spec(job_spec)
        given = {key: value for key, value in job_spec.items() if value not in (None, "")}
        if "path" not in given:
            raise UserError("a job needs a path (its folder): give path=FOLDER")
        return cls(given.pop("job_id", None), given.pop("program", None), given.pop("path"), mtime=mtime, **given)

    def __repr__(self) -> str:
        return (f"Job(job_id={self.job_id!r}, program={self.program!r}, path={self.path!r}, "
                f"status={self.status.value!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return self.job_spec() == other.job_spec() and self._timestamp == other._timestamp

    __hash__ = None  # type: ignore[assignment]  # mutable

    def timestamp(self) -> float:
        """The last time (seconds since the epoch) the job was modified."""
        return self._timestamp

    mtime = timestamp  # job_manager's name

    def _touch(self) -> None:
        # strictly later than before, so "the newer modification wins" sees the change
        self._timestamp = max(time.time(), self._timestamp + 1e-6)

    def job_spec(self) -> dict[str, Any]:
        """The job's fields as a dict (a *job spec*), status by name."""
        spec: dict[str, Any] = {name: getattr(self, name) for name in SPEC_FIELDS}
        spec["status"] = self.status.value
        return spec

    def modify(self, job_spec: Mapping[str, Any]) -> None:
        """Change the fields given in ``job_spec``.

        Keys whose value is ``None`` are ignored; an empty string clears the field (a
        cleared status is ``unknown``). The modification time becomes now.

        Raises
        ------
        UserError
            An unknown key, a status that is not a :class:`JobStatus` name, or an
            attempt to clear ``path``. Nothing is changed then.
        """
        check_spec(job_spec)
        for key in _REQUIRED:
            if job_spec.get(key) == "":
                raise UserError(f"{key} cannot be cleared: it identifies the job")
        for key, value in job_spec.items():
            if value is None:
                continue
            if key == "status":
                self.status = parse_status(value) if value != "" else JobStatus.unknown
            elif key == "pid_start":
                self.pid_start = float(value) if value != "" else None
            else:
                setattr(self, key, str(value) if value != "" else None)
        self._touch()
        self._edited = True

    def set_status(self, status: JobStatus, mtime: float | None = None) -> bool:
        """Set the status found by a check (not by the user); return whether it changed."""
        if status == self.status:
            return False
        self.status = status
        if mtime is None:
            self._touch()
        else:
            self._timestamp = max(float(mtime), self._timestamp + 1e-6)
        self._auto = True
        return True

    def values(self, fields: tuple[str, ...] = MATCH_FIELDS) -> list[str]:
        """The text of the ``fields`` that are set."""
        out = []
        for name in fields:
            value = getattr(self, name)
            if value is not None:
                out.append(value.value if isinstance(value, JobStatus) else str(value))
        return out

    def match(self, pattern: str | re.Pattern[str] | None) -> bool:
        """Whether the regular expression ``pattern`` is found (``re.search``) in any field.

        ``None`` or an empty pattern matches every job. Fields that are not set do not
        match (job_manager searched the text ``"None"``).

        Raises
        ------
        UserError
            ``pattern`` is not a valid regular expression.
        """
        regex = compile_pattern(pattern)
        if regex is None:
            return True
        return any(regex.search(text) for text in self.values())

    def auto_update(self, hostname: str = "localhost") -> bool:
        """Check the job's process or queued job and update its status; return whether it changed.

        Only jobs that are unknown, held, queueing or running are checked, and only on
        this machine (see :func:`~plams_cli.jobcache.update.update_jobs`).

        Raises
        ------
        QueueQueryError
            The queue command failed; the status is left as it was.
        """
        from plams_cli.errors import QueueQueryError
        from plams_cli.jobcache.update import update_jobs

        report = update_jobs([self], hostname)
        if report.failures:
            raise QueueQueryError("; ".join(report.failures))
        return report.changed > 0
