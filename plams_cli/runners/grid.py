"""``GridRunner``: submit runscripts to a queueing system (SLURM, PBS, Grid Engine …).

The generic half lives here: building the submit command from the grid's settings
branch, the exit-code wrapper, the one poller per runner and cancelling. What differs
between schedulers (reading a job id, a queue listing, the accounting) lives in one module
per back-end, :mod:`plams_cli.runners.slurm`, :mod:`~plams_cli.runners.pbs` and
:mod:`~plams_cli.runners.sge`, and is named from the settings (YAML holds no functions).

Settings branch of a grid (``gridrunner.<name>`` in the YAML defaults)
-------------------------------------------------------------------------
``workdir``, ``output``, ``error``, ``jobname``
    Submit flags for the working folder, the scheduler's own stdout/stderr file and the job
    name (``null``: not passed).
``commands.submit``, ``commands.check``, ``commands.cancel``
    Argument lists (a string is split as a shell would). In ``check`` and ``cancel`` an
    element ``"{ids}"`` becomes one argument per job id and ``"{ids,}"`` one argument
    with the ids joined by commas.
``commands.getid``, ``commands.running``, ``commands.accounting``
    Parsers: a back-end name (``slurm`` means ``plams_cli.runners.slurm.getid`` and so
    on), ``"package.module:function"``, or, from Python, a callable.
``special``
    Run flags with their own spelling: ``queue: "-p "`` makes ``queue='short'`` into
    ``-p short``; ``memory: "--mem="`` makes ``memory=4G`` into ``--mem=4G``.
``exitcode_grace_s``
    How long a job that left the queue may take to show its exit-code file (shared
    file systems cache directory listings).

Exit codes
----------
What is submitted is a small POSIX ``sh`` wrapper, ``<runscript>.grid.sh``, that runs the
runscript and writes ``<runscript>.exitcode`` atomically (a temporary file then ``mv``)
with the exit code; the start and end times are the mtimes of ``.<runscript>.exitcode.start``
and of the record (see :func:`read_exit_file`). :meth:`GridRunner.call` returns that
code, so a batch job that exits 3 is a crashed job with exit code 3. A job that left
the queue without the file, or whose runscript died of a signal the scheduler sent, was
stopped by the scheduler; the accounting says why (TIMEOUT, CANCELLED, OUT_OF_MEMORY …).

Job ids
-------
At submission the scheduler's job id goes into ``<runscript>.jobid`` (JSON: ``job_id``,
``grid``, ``host``, ``cancel``; written atomically, see :func:`write_job_record`). A job
folder with that record and no exit-code record belongs to a job that may still be
queued or running after its ``plams`` was killed: ``plams -r`` asks the scheduler and
cancels it (see :mod:`plams_cli.cli._grid_leftovers`).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plams_cli.errors import GridError, QueueQueryError, SubmitError, UnknownGridError
from plams_cli.runners.base import Stopped
from plams_cli.runners.launch import Launch, LaunchCallback, current_callback, report_launch
from plams_cli.runners.local import JobRunner, signals_to_main_thread

__all__ = [
    "GridRunner",
    "CommandResult",
    "QueueState",
    "Accounting",
    "run_command",
    "grid_definitions",
    "grid_settings",
    "flags_from_runflags",
    "resolve_parser",
    "read_job_record",
    "write_job_record",
]

logger = logging.getLogger(__name__)

#: shortest pause between two queue queries, seconds
MIN_POLL_INTERVAL_S = 0.2
#: queue state codes (SLURM, PBS, Grid Engine) of a job whose runscript runs, for the job cache
RUNNING_STATE_CODES = frozenset({"R", "RUNNING", "CG", "COMPLETING", "E", "T", "RR", "RT"})
#: the pause grows with the age of the youngest job: this fraction of it, up to sleepstep
POLL_AGE_FRACTION = 0.05
#: while queue queries keep failing, a warning every this many seconds
FAILURE_REPORT_INTERVAL_S = 60.0
#: most job ids in one query command (longer lists are split)
MAX_IDS_PER_QUERY = 500


@dataclass(frozen=True)
class CommandResult:
    """What a scheduler command did: its arguments, exit status and output.

    ``returncode`` is ``None`` when the command could not be run or timed out; ``stderr``
    then says why.
    """

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """``True`` when the command ran and exited 0."""
        return self.returncode == 0

    def describe(self) -> str:
        """One line for error messages: the command, its status and what it printed."""
        status = "could not run" if self.returncode is None else f"exit {self.returncode}"
        text = " ".join((self.stderr.strip() or self.stdout.strip()).split())
        return f"{shlex.join(self.argv)} ({status}){': ' + text if text else ''}"


@dataclass(frozen=True)
class QueueState:
    """The state of one job as a queue listing shows it.

    ``state`` is the scheduler's code (``PD``, ``R``, ``CD`` …); ``finished`` is ``True``
    when the job has left the running states for good.
    """

    state: str
    finished: bool


@dataclass(frozen=True)
class Accounting:
    """How a job ended, as the scheduler's accounting tells it.

    Parameters
    ----------
    state
        The final state (``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TIMEOUT`` …).
    exit_code
        The exit code the scheduler recorded, when it did.
    reason
        Extra words (who cancelled, the scheduler's reason), possibly empty.
    killed
        ``True`` when the scheduler stopped the job before its script ended (so no
        exit-code file is to be expected); ``False`` when it ran to its end; ``None``
        when the state does not say.
    source
        The command that told (``sacct``, ``scontrol``, ``qstat -f`` …).
    active
        ``True`` when the scheduler says the job is not over (pending, running …): a
        queue listing that did not show it was wrong, and the job is waited for again.
    """

    state: str
    exit_code: int | None = None
    reason: str = ""
    killed: bool | None = None
    source: str = ""
    active: bool = False

    def describe(self) -> str:
        """Human words, e.g. ``state CANCELLED by 0, exit code 0:15 (from sacct)``."""
        words = f"state {self.state}"
        if self.reason:
            words += f" ({self.reason})"
        if self.exit_code is not None:
            words += f", exit code {self.exit_code}"
        if self.source:
            words += f" (from {self.source})"
        return words


def run_command(
    argv: Sequence[str], timeout_s: float = 30.0, cwd: str | None = None
) -> CommandResult:
    """Run a scheduler command without a shell and capture its output.

    Never raises for a failing command: a missing program or a timeout gives
    ``returncode=None`` and the reason in ``stderr``.
    """
    args = tuple(str(a) for a in argv)
    try:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
            stdin=subprocess.DEVNULL, errors="replace",
        )
    except subprocess.TimeoutExpired:
        return CommandResult(args, None, "", f"timed out after {timeout_s:g} s")
    except OSError as exc:
        return CommandResult(args, None, "", exc.strerror or str(exc))
    return CommandResult(args, proc.returncode, proc.stdout, proc.stderr)


# --- grid definitions ---------------------------------------------------------------
def grid_definitions() -> dict[str, dict[str, Any]]:
    """All grids known from the YAML defaults (packaged and the user's), by name."""
    from plams_cli.defaults import load_defaults

    grids = load_defaults().get("gridrunner") or {}
    if not isinstance(grids, dict):
        raise GridError("the 'gridrunner' section of the defaults must be a mapping")
    return {str(k): v for k, v in grids.items() if isinstance(v, dict)}


def grid_settings(name: str) -> dict[str, Any]:
    """The settings branch of grid ``name``.

    Raises
    ------
    UnknownGridError
        No grid of that name; the message lists the valid ones.
    """
    grids = grid_definitions()
    if name not in grids:
        import difflib

        close = difflib.get_close_matches(name, list(grids))
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownGridError(
            f"no grid named {name!r}; valid names: {', '.join(sorted(grids)) or 'none'}, "
            f"or 'auto'.{hint}"
        )
    return grids[name]


def _plain(value: Any) -> Any:
    """A deep copy of nested mappings as plain dicts (callables kept as they are)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _argv(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str | int) for v in value):
        return [str(v) for v in value]
    raise GridError(f"grid setting commands.{what} must be a list of arguments or a string")


def resolve_parser(spec: Any, role: str) -> Callable[..., Any]:
    """Turn a parser named in the settings into the function.

    Parameters
    ----------
    spec
        A callable; a back-end name such as ``"slurm"`` (the function ``role`` of
        :mod:`plams_cli.runners.slurm`); or ``"package.module:function"``.
    role
        ``getid``, ``running`` or ``accounting``.

    Raises
    ------
    GridError
        The name leads to no function.
    """
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    if not isinstance(spec, str) or not spec:
        raise GridError(f"grid setting commands.{role} must name a parser")
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        module_name, attribute = f"plams_cli.runners.{spec}", role
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise GridError(f"commands.{role}: cannot find parser {spec!r} ({exc})") from exc
    if not callable(function):
        raise GridError(f"commands.{role}: {spec!r} is not a function")
    return function  # type: ignore[no-any-return]


def _takes_one_argument(function: Callable[..., Any]) -> bool:
    """PLAMS's own parsers take the command output only; ours take more."""
    try:
        params = [
            p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


def _split_prefix(prefix: str, value: str) -> list[str]:
    """``"-p "`` + ``short`` -> ``["-p", "short"]``; ``"-l mem="`` + ``4gb`` -> ``["-l", "mem=4gb"]``."""
    tokens = prefix.split()
    if not tokens:
        return [value]
    if prefix[-1].isspace():
        return [*tokens, value]
    return [*tokens[:-1], tokens[-1] + value]


def flags_from_runflags(runflags: Mapping[str, Any], special: Mapping[str, str]) -> list[str]:
    """Submit flags from run flags, as PLAMS builds them, but as an argument list.

    Keys sorted; a key in ``special`` is spelled by its prefix (glued to the value unless
    the prefix ends with a space); any other key becomes ``-key value``; ``True`` gives a
    bare ``-key``; ``None``, ``False`` and nested mappings are left out.
    """
    args: list[str] = []
    for key in sorted(runflags, key=str):
        value = runflags[key]
        if value is None or value is False or isinstance(value, Mapping) or callable(value):
            continue
        if key in special and special[key] is not None:
            prefix = str(special[key])
            if value is True:
                args.extend(prefix.split())
            else:
                args.extend(_split_prefix(prefix, str(value)))
        elif value is True:
            args.append(f"-{key}")
        else:
            args.extend([f"-{key}", str(value)])
    return args


def _expand_ids(template: Sequence[str], ids: Sequence[str]) -> list[str]:
    argv: list[str] = []
    for arg in template:
        if arg == "{ids}":
            argv.extend(ids)
        elif "{ids,}" in arg:
            argv.append(arg.replace("{ids,}", ",".join(ids)))
        elif "{id}" in arg:
            argv.append(arg.replace("{id}", ids[0]))
        else:
            argv.append(arg)
    return argv


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def _safe_name(name: str) -> str:
    """A file/job name without spaces or shell characters (PBS wrappers split on spaces)."""
    return _UNSAFE.sub("_", name) or "job"


# --- the wrapper ------------------------------------------------------------------
#: the wrapper's exit code when it cannot enter the job folder (before the runscript starts)
WORKDIR_MISSING_EXIT = 97

_WRAPPER = """\
#!/bin/sh
# Written by plams-cli GridRunner: runs the runscript and records its exit code in
# {exitfile_doc} (temporary file, then mv: readers never see half of it). The start time
# is the mtime of the .start file, the end time that of the record: shell builtins only,
# since every extra process slows short jobs on a busy node.
cd {workdir} || exit {workdir_missing}
: >{startfile}
{command}
plams_rc=$?
printf '{{"exit_code": %d, "job_id": "%s"}}\\n' "$plams_rc" \\
  "${{SLURM_JOB_ID:-${{PBS_JOBID:-${{JOB_ID:-}}}}}}" >{tmpfile}.$$ && mv -f {tmpfile}.$$ {exitfile}
exit $plams_rc
"""


def write_wrapper(workdir: str, runscript: str, out: str | None, err: str | None) -> tuple[str, str]:
    """Write the exit-code wrapper of ``runscript`` into ``workdir``.

    Returns
    -------
    tuple of str
        The wrapper's file name and the exit-code file's name, both inside ``workdir``.
    """
    safe = _safe_name(runscript)
    wrapper = f"{safe}.grid.sh"
    exitfile = f"{runscript}.exitcode"
    command = shlex.quote("./" + runscript)
    if out:
        command += " >" + shlex.quote(out)
    if err:
        command += " 2>" + shlex.quote(err)
    text = _WRAPPER.format(
        workdir=shlex.quote(workdir),
        workdir_missing=WORKDIR_MISSING_EXIT,
        command=command,
        exitfile_doc=exitfile.replace("\n", " "),
        tmpfile=shlex.quote(f".{exitfile}.tmp"),
        startfile=shlex.quote(f".{exitfile}.start"),
        exitfile=shlex.quote(exitfile),
    )
    path = os.path.join(workdir, wrapper)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o755)
    return wrapper, exitfile


def read_exit_file(path: str) -> dict[str, Any] | None:
    """The record the wrapper wrote, or ``None`` when it is not (yet) there or unreadable.

    Keys: ``exit_code``, ``job_id``, ``start`` and ``end`` (seconds since the epoch).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exit_code"), int):
        return None
    folder, name = os.path.split(path)
    with contextlib.suppress(OSError):
        data.setdefault("end", os.stat(path).st_mtime)
        data.setdefault("start", os.stat(os.path.join(folder, f".{name}.start")).st_mtime)
    return data


#: ``<runscript>`` + this: the scheduler's job id, written at submission
JOB_RECORD_SUFFIX = ".jobid"


def write_job_record(workdir: str, runscript: str, record: Mapping[str, Any]) -> str:
    """Write ``<runscript>.jobid`` into ``workdir`` atomically (temporary file, fsync, rename); return its path."""
    path = os.path.join(workdir, runscript + JOB_RECORD_SUFFIX)
    temporary = os.path.join(workdir, f".{runscript}{JOB_RECORD_SUFFIX}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(dict(record), handle)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return path


def read_job_record(path: str) -> dict[str, Any] | None:
    """The record :func:`write_job_record` wrote, or ``None`` when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not data["job_id"]:
        return None
    return data


# --- tracking submitted jobs --------------------------------------------------------
@dataclass(eq=False)
class _Tracked:
    job_id: str
    name: str
    submitted: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.time)  # wall clock of the submission
    done: threading.Event = field(default_factory=threading.Event)
    state: str = ""
    final: QueueState | None = None
    cancelled_by: str = ""
    #: where changes of the job's queue state go (the job's launch callback), if anywhere
    report: LaunchCallback | None = None


class GridRunner(JobRunner):
    """Run jobs through a queueing system; use it like a :class:`JobRunner`.

    ``job.run(jobrunner=gr, queue='short', nodes=2, J='name')`` submits the job with
    ``-p short -N 2 -J name`` on SLURM. See ``plams grid detect``, ``plams grid list`` and
    ``plams grid show NAME`` for the command line side.

    Parameters
    ----------
    grid
        ``'auto'`` (detect; ``$PLAMS_GRID`` overrides), the name of a grid in the YAML
        defaults (``'slurm'``, ``'pbs'``, ``'sge'`` or a user one), or a mapping with the
        settings branch itself, whose parsers may be Python callables.
    sleepstep
        Longest pause, in seconds, between two queue queries. The pause starts at
        0.2 s and grows with the age of the youngest job, so short jobs are seen
        finished quickly and long ones cost few queries.
    parallel
        ``True``: ``job.run()`` returns at once (the normal use).
    maxjobs
        Most jobs in the queue at once (0: no limit).

    Raises
    ------
    SchedulerNotFoundError
        ``'auto'`` found no queueing system, or the name is unknown.
    """

    def __init__(
        self,
        grid: str | Mapping[str, Any] = "auto",
        sleepstep: float = 5,
        parallel: bool = True,
        maxjobs: int = 0,
    ) -> None:
        super().__init__(parallel=parallel, maxjobs=maxjobs)
        if isinstance(grid, Mapping):
            self.grid = str(grid.get("name", "custom"))
            self.settings: dict[str, Any] = _plain(grid)
        else:
            if grid == "auto":
                from plams_cli.runners.detect import detect_grid

                grid = detect_grid()
            self.grid = grid
            self.settings = _plain(grid_settings(grid))
        if sleepstep <= 0:
            raise ValueError("sleepstep must be positive")
        self.sleepstep = float(sleepstep)
        commands = self.settings.get("commands") or {}
        for key in ("submit", "check", "getid", "running"):
            if not commands.get(key):
                raise GridError(
                    f"grid {self.grid!r} has no commands.{key}; see 'plams grid show slurm' for a complete grid"
                )
        self._submit_argv = _argv(commands["submit"], "submit")
        self._check_argv = _argv(commands["check"], "check")
        # PLAMS's grids have no cancel command: without one, jobs cannot be cancelled
        self._cancel_argv = _argv(commands["cancel"], "cancel") if commands.get("cancel") else None
        self._getid = resolve_parser(commands["getid"], "getid")
        self._running = resolve_parser(commands["running"], "running")
        accounting = commands.get("accounting")
        self._accounting = resolve_parser(accounting, "accounting") if accounting else None
        self._query_timeout_s = float(self.settings.get("query_timeout_s", 30))
        self._submit_timeout_s = float(self.settings.get("submit_timeout_s", 120))
        self._grace_s = float(self.settings.get("exitcode_grace_s", 10))
        self._active: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._poller: threading.Thread | None = None
        #: consecutive failed queue queries (0 when the last one worked)
        self.query_failures = 0
        self._failing_since = 0.0
        self._failure_reports = 1

    def __repr__(self) -> str:
        return f"GridRunner(grid={self.grid!r}, sleepstep={self.sleepstep:g}, parallel={self.parallel})"

    # --- submitting ---------------------------------------------------------------
    def submit_command(
        self, script: str, workdir: str, log: str | None, runflags: Mapping[str, Any], jobname: str
    ) -> list[str]:
        """The argument list that submits ``script`` (a file name in ``workdir``)."""
        s = self.settings
        argv = list(self._submit_argv)
        if s.get("workdir"):
            argv += [*str(s["workdir"]).split(), workdir]
        if s.get("jobname"):
            argv += [*str(s["jobname"]).split(), jobname]
        if log and s.get("output"):
            argv += [*str(s["output"]).split(), log]
        if log and s.get("error"):
            argv += [*str(s["error"]).split(), log]
        argv += flags_from_runflags(runflags or {}, s.get("special") or {})
        argv.append(script)
        return argv

    def _parse_id(self, result: CommandResult) -> str | None:
        if _takes_one_argument(self._getid):
            job_id = self._getid(result.stdout)
        else:
            job_id = self._getid(result.stdout, result.stderr)
        return str(job_id).strip() if job_id else None

    def call(
        self,
        runscript: str,
        workdir: str,
        out: str | None,
        err: str | None,
        runflags: Mapping[str, Any] | None = None,
    ) -> int:
        """Submit ``runscript``, wait for the job to leave the queue, return its exit code.

        Parameters
        ----------
        runscript
            File name, inside ``workdir``, of an executable script with a shebang line.
        workdir
            The job folder (it must be on a file system the compute nodes share).
        out, err
            File names in ``workdir`` for the runscript's stdout and stderr, written live
            by the job; ``out=None`` leaves stdout to the runscript
            (``runscript.stdout_redirect``). The scheduler's own messages go to
            ``<runscript>.grid.log``.
        runflags
            ``job.settings.run``: become submit flags (see the module docs).

        Returns
        -------
        int
            The runscript's exit code, as recorded by the job itself.

        Raises
        ------
        SubmitError
            The scheduler refused the job or printed no job id.
        GridError
            The job left the queue without an exit code (cancelled, out of time or
            memory, node failure …): the message says what the scheduler reported.
        """
        if self._cancelled:
            raise GridError("not submitted: the run was cancelled")
        workdir = os.path.abspath(workdir)
        wrapper, exitname = write_wrapper(workdir, runscript, out, err)
        exitfile = os.path.join(workdir, exitname)
        for stale in (exitfile, os.path.join(workdir, runscript + JOB_RECORD_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)  # left over from an earlier run of the same folder
        log = f"{_safe_name(runscript)}.grid.log"
        jobname = _safe_name(os.path.splitext(runscript)[0])
        argv = self.submit_command(wrapper, workdir, log, runflags or {}, jobname)
        # The submission's cwd is the job folder: schedulers without a working-folder
        # flag (PBS) start there and put their default output files there.
        result = run_command(argv, self._submit_timeout_s, cwd=workdir)
        if not result.ok:
            raise SubmitError(f"{self.grid}: submission refused: {result.describe()}")
        job_id = self._parse_id(result)
        if not job_id:
            raise SubmitError(
                f"{self.grid}: the submit command printed no job id, so plams cannot follow the job: "
                f"{result.describe()}; if the scheduler queued it anyway, find it in the queue "
                f"(job name {jobname}) and cancel it"
            )
        tracked = self._track(job_id, jobname, current_callback())
        try:  # so that a restart after a kill finds the job (see plams_cli.cli._grid_leftovers)
            write_job_record(workdir, runscript, {
                "job_id": job_id, "grid": self.grid, "host": socket.gethostname(), "name": jobname,
                "cancel": shlex.join(self.cancel_command([job_id]) or []) or None,
            })
        except OSError as exc:
            logger.warning("could not record the id of %s job %s in %s: %s", self.grid, job_id, workdir, exc)
        if self._cancelled:  # cancel() ran while this job was being submitted
            for line in self._cancel_tracked([tracked], "submitted while the run was being cancelled"):
                sys.stderr.write(f"plams: {line}\n")
        try:
            report_launch(Launch("grid", job_id, tracked.started, self.grid, running=False), tracked.report)
            while True:
                while not tracked.done.wait(1.0):
                    self._ensure_poller()
                if tracked.cancelled_by:
                    raise GridError(
                        f"{self.grid} job {job_id} was cancelled by plams ({tracked.cancelled_by})"
                    )
                code = self._exit_code(tracked, exitfile, os.path.join(workdir, log))
                if code is not None:
                    return code
                self._retrack(tracked)  # the scheduler says it is not over: the listing missed it
        except BaseException:  # KeyboardInterrupt in a serial run: do not leave it queued
            for line in self._cancel_tracked([tracked], "interrupted"):
                sys.stderr.write(f"plams: {line}\n")
            raise

    def _exit_code(self, tracked: _Tracked, exitfile: str, logfile: str) -> int | None:
        """The job's exit code, or ``None`` when the scheduler says it is not over after all."""
        record = read_exit_file(exitfile)
        if record is not None:
            return self._checked_code(tracked, int(record["exit_code"]), exitfile)
        # No record yet: either a shared file system is slow to show it, or the
        # scheduler killed the job before the wrapper could write it. The accounting
        # tells the two apart; only a job that ran to its end is worth waiting for.
        accounting = self._ask_accounting(tracked.job_id)
        if accounting is not None and accounting.active:
            logger.warning("%s job %s left the queue listing but the scheduler says %s; waiting for it again",
                           self.grid, tracked.job_id, accounting.describe())
            return None
        deadline = time.monotonic() + (0 if accounting and accounting.killed else self._grace_s)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                os.listdir(os.path.dirname(exitfile))  # refreshes NFS's directory cache
            record = read_exit_file(exitfile)
            if record is not None:
                return self._checked_code(tracked, int(record["exit_code"]), exitfile)
        if accounting is None and tracked.final is not None:
            accounting = Accounting(tracked.final.state, source="queue listing")
        told = accounting.describe() if accounting else "no accounting available"
        message = (
            f"{self.grid} job {tracked.job_id} left the queue without recording an exit code; "
            f"the scheduler says: {told}"
        )
        tail = _tail(logfile)
        if tail:
            message += f"; {os.path.basename(logfile)}: {tail}"
        raise GridError(message)

    def _checked_code(self, tracked: _Tracked, code: int, exitfile: str) -> int:
        """``code``, unless the runscript died of a signal the scheduler sent.

        A cancelled or timed-out job gets SIGTERM in all its processes; when the
        runscript dies first, the wrapper may still record 143 before its own signal
        arrives. The accounting then says what happened, which is the better message.
        """
        folder, name = os.path.split(exitfile)
        if code == WORKDIR_MISSING_EXIT and not os.path.exists(os.path.join(folder, f".{name}.start")):
            raise GridError(
                f"{self.grid} job {tracked.job_id} could not enter its folder {folder} on the compute "
                "node; the job folder must be on a file system the compute nodes share"
            )
        if code <= 128:
            return code
        accounting = self._ask_accounting(tracked.job_id)
        if accounting is not None and accounting.killed:
            raise GridError(
                f"{self.grid} job {tracked.job_id} was stopped by the scheduler: "
                f"{accounting.describe()}; the runscript ended with exit code {code}"
            )
        return code

    def _ask_accounting(self, job_id: str) -> Accounting | None:
        if self._accounting is None:
            return None
        try:
            answer = self._accounting(job_id, self._query_timeout_s)
        except QueueQueryError as exc:
            logger.info("accounting of job %s failed: %s", job_id, exc)
            return None
        return answer if isinstance(answer, Accounting) else None

    # --- polling --------------------------------------------------------------------
    def _track(self, job_id: str, name: str, report: LaunchCallback | None = None) -> _Tracked:
        tracked = _Tracked(job_id, name, report=report)
        with self._lock:
            self._active[job_id] = tracked
        self._ensure_poller()
        self._wakeup.set()
        return tracked

    def _retrack(self, tracked: _Tracked) -> None:
        """Wait for ``tracked`` again (a queue listing missed a job that is not over)."""
        tracked.done.clear()
        tracked.final = None
        with self._lock:
            self._active[tracked.job_id] = tracked
        self._ensure_poller()

    def _ensure_poller(self) -> None:
        # Start and stop are decided under the same lock as adding a job, so a job is
        # never added just after the poller decided to end (it would wait forever).
        with self._lock:
            if not self._active or (self._poller is not None and self._poller.is_alive()):
                return
            self._poller = threading.Thread(
                target=self._poll_loop, name=f"plams-grid-poller-{self.grid}", daemon=True
            )
            with signals_to_main_thread():
                self._poller.start()

    def query(self, ids: Sequence[str]) -> dict[str, QueueState]:
        """Ask the scheduler about ``ids`` in one command (per 500 ids).

        Returns
        -------
        dict
            Job id -> :class:`QueueState`, for the jobs the scheduler still lists; an id
            missing from it has left the queue.

        Raises
        ------
        QueueQueryError
            The command failed or timed out, or its output made no sense: the states
            are unknown, which is not the same as finished.
        """
        states: dict[str, QueueState] = {}
        has_ids = any("{ids" in a or "{id}" in a for a in self._check_argv)
        chunks = [ids[i : i + MAX_IDS_PER_QUERY] for i in range(0, len(ids), MAX_IDS_PER_QUERY)]
        for chunk in chunks if has_ids else [ids]:
            result = run_command(_expand_ids(self._check_argv, chunk), self._query_timeout_s)
            if _takes_one_argument(self._running):  # a PLAMS parser: ids of jobs still queued
                if not result.ok:
                    raise QueueQueryError(f"queue query failed: {result.describe()}")
                listed = self._running(result.stdout) or []
                states.update({str(i): QueueState("?", False) for i in listed})
            else:
                states.update(self._running(result, list(chunk)))
        return states

    def _poll_interval(self) -> float:
        with self._lock:
            youngest = max((t.submitted for t in self._active.values()), default=time.monotonic())
        age = time.monotonic() - youngest
        interval = max(MIN_POLL_INTERVAL_S, POLL_AGE_FRACTION * age)
        if self.query_failures:
            interval = max(interval, min(2.0**self.query_failures * 0.5, self.sleepstep))
        return min(interval, self.sleepstep)

    def _poll_loop(self) -> None:
        while True:
            with self._lock:
                if not self._active:
                    self._poller = None
                    return
                tracked = list(self._active.values())
            try:
                self._poll_once(tracked)
            except Exception:  # a bug in a parser must not strand the waiting jobs
                self.query_failures += 1
                logger.exception("grid poller: unexpected error; asking again later")
            self._wakeup.wait(self._poll_interval())
            self._wakeup.clear()

    def _poll_once(self, tracked: list[_Tracked]) -> None:
        try:
            states = self.query([t.job_id for t in tracked])
        except QueueQueryError as exc:
            self.query_failures += 1
            if self.query_failures == 1:
                logger.warning("%s; job states unknown, asking again later", exc)
                self._failing_since = time.monotonic()
            elif time.monotonic() - self._failing_since >= FAILURE_REPORT_INTERVAL_S * self._failure_reports:
                self._failure_reports += 1
                logger.warning("queue query still failing after %d tries (%.0f s): %s; %d job(s) waiting",
                               self.query_failures, time.monotonic() - self._failing_since, exc, len(tracked))
            return
        if self.query_failures:
            logger.warning("queue query works again after %d failures", self.query_failures)
        self.query_failures = 0
        self._failure_reports = 1
        for item in tracked:
            state = states.get(item.job_id)
            if state is not None and not state.finished:
                if item.report is not None and state.state != item.state:
                    running = state.state.upper() in RUNNING_STATE_CODES
                    report_launch(Launch("grid", item.job_id, item.started, self.grid, running), item.report)
                item.state = state.state
                continue
            item.final = state
            with self._lock:
                self._active.pop(item.job_id, None)
            item.done.set()

    # --- cancelling -------------------------------------------------------------------
    def _cancel_tracked(self, items: list[_Tracked], why: str) -> list[Stopped]:
        with self._lock:
            items = [t for t in items if self._active.pop(t.job_id, None) is not None]
        if not items:
            return []
        if self._cancel_argv is None:
            result = CommandResult((), None, "", f"grid {self.grid!r} has no commands.cancel")
        else:
            result = run_command(_expand_ids(self._cancel_argv, [t.job_id for t in items]), self._query_timeout_s)
        records = []
        for item in items:
            item.cancelled_by = why
            item.done.set()
            detail = (item.state or "queued") if result.ok else result.describe()
            records.append(Stopped("grid", item.job_id, item.name, detail=detail, ok=result.ok, grid=self.grid))
        return records

    def cancel_command(self, ids: Sequence[str]) -> list[str] | None:
        """The argument list that cancels the jobs ``ids`` (``scancel 12 13``); ``None`` when the grid has none."""
        return _expand_ids(self._cancel_argv, list(ids)) if self._cancel_argv is not None else None

    def cancel(self) -> list[Stopped]:
        """Cancel every job this runner submitted that is still queued or running.

        Jobs not submitted yet are refused from now on. Returns one record per job, saying
        whether the scheduler accepted the cancellation (``str(record)`` is the line).
        """
        self._cancelled = True
        with self._lock:
            items = list(self._active.values())
        return self._cancel_tracked(items, "run cancelled")

    @property
    def active_jobs(self) -> dict[str, str]:
        """Job id -> last state seen, for the jobs this runner is waiting for."""
        with self._lock:
            return {t.job_id: t.state for t in self._active.values()}


def _tail(path: str, limit: int = 400) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()[-limit:]
    except OSError:
        return ""
    return " ".join(text.split())
