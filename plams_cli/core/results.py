"""``Results``: the files a job produced, and ways to read them.

Every reading method waits until the job has ended (its status final, its files saved);
only the job's own ``check()`` and ``postrun()`` read them before that, as soon as the
files are collected. ``$JN`` in a file name stands for the job's name, as in PLAMS.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from plams_cli.core.logger import log
from plams_cli.core.runtime import config
from plams_cli.errors import FileError, ResultFileNotFoundError, ResultsError
from plams_cli.runners.local import waiting

if TYPE_CHECKING:
    from plams_cli.core.jobs import Job

__all__ = ["Results", "saferun"]

F = TypeVar("F", bound=Callable[..., Any])

#: guards the making of every Results' events against their setting (both rare and short)
_EVENTS_LOCK = threading.Lock()


def _needs_files(method: F) -> F:
    """Make ``method`` wait for the job's files (and fail clearly on a job that never ran)."""

    @functools.wraps(method)
    def wrapper(self: Results, *args: Any, **kwargs: Any) -> Any:
        self._wait_collected()
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _list_files(folder: str, prefix: str, skip: set[str], found: list[str], own: str = "",
                drop: bool = False) -> None:
    """Add the files under ``folder`` (names relative to the job folder) to ``found``.

    Hidden files (temporary files of atomic writes, exit-code records) are left out, but
    not the job's own files when its name starts with a dot (``own`` is ``"<name>."``),
    and so are the folders named in ``skip``. With ``drop`` the hidden files are deleted
    (those in hidden folders too).
    """
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(".") and not (own and entry.name.startswith(own)):
            if drop:
                if entry.is_dir(follow_symlinks=False):
                    _drop_hidden_files(entry.path)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in skip:
                _list_files(entry.path, prefix + entry.name + os.sep, set(), found, drop=drop)
        else:
            found.append(prefix + entry.name)


def _drop_hidden_files(folder: str) -> None:
    """Delete the hidden files under ``folder`` (in every subfolder)."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    _drop_hidden_files(entry.path)
                elif entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
    except OSError:
        pass


def saferun(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """:func:`subprocess.run`, tried again when starting the process fails with ``BlockingIOError``.

    ``config.saferun.repeat`` more attempts, ``config.saferun.delay`` seconds apart, as in
    PLAMS; the last error is raised when every attempt fails. Other ``OSError`` (a missing
    program) is raised at once: PLAMS would retry it too, only to fail later.
    """
    saferun_settings = config.get("saferun") or {}
    repeat = int(saferun_settings.get("repeat", 10))
    delay = float(saferun_settings.get("delay", 1))
    attempt = 0
    while True:
        try:
            return subprocess.run(*args, **kwargs)
        except BlockingIOError as exc:
            attempt += 1
            if attempt > repeat:
                raise
            log(f"subprocess.run({args[0] if args else kwargs.get('args')}) attempt {attempt} failed with {exc}", 5)
            time.sleep(delay)


class Results:
    """The results of one job: its folder's files and helpers to read them.

    Parameters
    ----------
    job
        The job these results belong to.
    """

    # The two events are made on first use (a waiter, or a script asking for them): until
    # then a flag stands for each. Tens of thousands of jobs of a run mostly never wait,
    # and two Events are 12 of the 24 objects a job brings to the garbage collector.
    _finished_event: threading.Event | None = None
    _done_event: threading.Event | None = None
    _finished_flag = False
    _done_flag = False
    #: the files were taken from an index entry (:meth:`take_listed`), not listed
    listed = False

    def __init__(self, job: Job) -> None:
        self.job = job
        self.files: list[str] = []

    # --- the events: PLAMS's ``finished`` and ``done``, made when first asked for ---------
    @property
    def finished(self) -> threading.Event:
        """Set once the files are collected (``check()`` and ``postrun()`` may read them)."""
        event = self._finished_event
        return event if event is not None else self._make_event("_finished_event", "_finished_flag")

    @finished.setter
    def finished(self, event: threading.Event) -> None:
        self._finished_event = event

    @property
    def done(self) -> threading.Event:
        """Set once the job has ended completely (``postrun()`` and saving included)."""
        event = self._done_event
        return event if event is not None else self._make_event("_done_event", "_done_flag")

    @done.setter
    def done(self, event: threading.Event) -> None:
        self._done_event = event

    def _make_event(self, attribute: str, flag: str) -> threading.Event:
        with _EVENTS_LOCK:
            event: threading.Event | None = getattr(self, attribute)
            if event is None:
                event = threading.Event()
                if getattr(self, flag):
                    event.set()
                setattr(self, attribute, event)
        return event

    def _set(self, attribute: str, flag: str) -> None:
        with _EVENTS_LOCK:  # so an event made meanwhile is made set, or is set here
            event: threading.Event | None = getattr(self, attribute)
            if event is None:
                setattr(self, flag, True)
                return
        event.set()

    def is_done(self) -> bool:
        """Whether the job has ended completely (:attr:`done` is set), without waiting."""
        event = self._done_event
        return event.is_set() if event is not None else self._done_flag

    def is_finished(self) -> bool:
        """Whether the job's files are collected (:attr:`finished` is set), without waiting."""
        event = self._finished_event
        return event.is_set() if event is not None else self._finished_flag

    def mark_done(self) -> None:
        """The job has ended: wake everyone waiting for it (sets :attr:`done`)."""
        self._set("_done_event", "_done_flag")

    # --- pickling: the job back-reference is rebuilt on load; a loaded job has ended -----
    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.files = state.get("files", [])
        self.job = None  # type: ignore[assignment]
        self._finished_flag = self._done_flag = True

    # --- waiting ---------------------------------------------------------------------
    def mark_collected(self) -> None:
        """The files are collected: the calling thread (which runs ``check()`` and
        ``postrun()``) may read them from now on; everyone else waits for the end."""
        self._collector = threading.get_ident()
        self._set("_finished_event", "_finished_flag")

    def _wait_collected(self) -> None:
        if not self.is_done():
            if self.is_finished() and getattr(self, "_collector", None) == threading.get_ident():
                return  # the job's own check() or postrun()
            if self.job is not None and self.job.status == "created":
                raise ResultsError(
                    f"job {self.job.name} has not been run: call job.run() before reading its results"
                )
            with waiting():
                self.done.wait()
        if self.job is not None and self.job.status in ("crashed", "failed"):
            self._results_of_bad_job()

    def _results_of_bad_job(self) -> None:
        """Reading results of a crashed or failed job: a warning, or an error (``config.ignore_failure``)."""
        job = self.job
        reason = job.get_errormsg() or job.status
        if not config.get("ignore_failure", True):
            raise ResultsError(
                f"job {job.name} {job.status}, so its results are not to be trusted ({reason}); "
                "set config.ignore_failure = True to read them anyway"
            )
        if not getattr(self, "_warned", False):
            self._warned = True
            log(f"WARNING: reading results of job {job.name}, which {job.status}: {reason}", 3)

    def wait(self) -> Results:
        """Block until the job has ended completely; return these results."""
        if not self.is_done():
            with waiting():
                self.done.wait()
        return self

    def ok(self) -> bool:
        """Wait for the job, then tell whether it ended well."""
        self.wait()
        return bool(self.job.ok())

    def collect(self, drop_hidden: bool = False) -> None:
        """Refresh :attr:`files` from the job folder (names relative to it, sorted).

        Hidden files are not the job's; with ``drop_hidden`` they are deleted (a folder
        moved in whole from a killed run may hold the temporary files of its writes).
        """
        path = self.job.path
        found: list[str] = []
        if path:
            skip = self._child_names()  # a MultiJob's children hold their own results
            _list_files(path, "", skip, found, own=self.job.name + ".", drop=drop_hidden)
        self.files = sorted(found)

    def take_listed(self, files: list[str]) -> None:
        """Take ``files`` as :attr:`files`, known without listing the folder (an intact index entry's list).

        :meth:`collect` is not needed then; :attr:`listed` says it was done.
        """
        self.files = sorted(files)
        self.listed = True

    def _child_names(self) -> set[str]:
        children = getattr(self.job, "children", None)
        if not children:
            return set()
        items = children.values() if isinstance(children, dict) else children
        return {c.name for c in items}

    # --- file access -----------------------------------------------------------------
    def _replace_jn(self, filename: str) -> str:
        return filename.replace("$JN", self.job.name)

    def _folder(self) -> str:
        path = self.job.path
        if path is None:
            raise FileError(f"job {self.job.name} has no folder yet: it was not run")
        return path

    def _path(self, filename: str) -> str:
        name = self._replace_jn(filename)
        if name not in self.files and not os.path.isfile(os.path.join(self._folder(), name)):
            raise ResultFileNotFoundError(
                f"job {self.job.name} has no file {name} (its files: {', '.join(self.files) or 'none'})"
            )
        return os.path.join(self._folder(), name)

    @_needs_files
    def __getitem__(self, filename: str) -> str:
        """Absolute path of ``filename`` in the job folder."""
        return self._path(filename)

    @_needs_files
    def __contains__(self, filename: object) -> bool:
        return isinstance(filename, str) and self._replace_jn(filename) in self.files

    @_needs_files
    def read_file(self, filename: str) -> str:
        """Return the whole text of ``filename``.

        Raises
        ------
        ResultFileNotFoundError
            The job has no such file (a ``ResultsError`` as in PLAMS, and a ``FileError``).
        """
        with open(self._path(filename), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    @_needs_files
    def grep_file(self, filename: str, pattern: str = "", options: str = "") -> list[str]:
        """Lines of ``filename`` that ``grep OPTIONS PATTERN`` selects (PLAMS's interface).

        ``options`` is a string of grep options such as ``"-A 2 -i"``.
        """
        path = self._path(filename)
        grep = shutil.which("grep")
        if grep is None:  # pragma: no cover - grep is everywhere we run
            regex = re.compile(pattern)
            with open(path, encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in handle if regex.search(line)]
        command = [grep, *shlex.split(options), "--", pattern, path]
        result = saferun(command, capture_output=True, text=True, errors="replace")
        if result.returncode > 1:
            raise ResultsError(f"grep failed on {path}: {result.stderr.strip()}")
        output: str = result.stdout
        return output.splitlines()

    def grep_output(self, pattern: str = "", options: str = "") -> list[str]:
        """:meth:`grep_file` on the job's output file ``$JN.out``."""
        return self.grep_file(self._output_name(), pattern, options)

    @_needs_files
    def regex_file(self, filename: str, regex: str) -> list[Any]:
        """All matches of ``regex`` in ``filename`` (``re.findall`` with MULTILINE)."""
        return re.findall(regex, self.read_file(filename), re.MULTILINE)

    @_needs_files
    def get_file_chunk(
        self,
        filename: str,
        begin: str | None = None,
        end: str | None = None,
        match: int = 0,
        inc_begin: bool = False,
        inc_end: bool = False,
        process: Callable[[str], Any] | None = None,
    ) -> list[Any]:
        """Lines of ``filename`` between a line containing ``begin`` and one containing ``end``.

        As in PLAMS: ``begin``/``end`` are plain strings (``None``: from the start, up to
        the end of the file); ``match=0`` returns the lines of every block, ``match=n`` those
        of the n-th block only (counted from 1); the ``inc_*`` flags keep the delimiting
        lines; ``process`` is applied to each line.
        """
        current = 0
        lines: list[str] = []
        inside = begin is None

        def append(line: str) -> None:
            if match in (0, current):
                lines.append(line.rstrip("\n"))

        # PLAMS's loop, step for step: the order of the three tests decides what a line
        # holding both ``end`` and ``begin`` does.
        with open(self._path(filename), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if inside and end and end in line:
                    inside = False
                    if inc_end:
                        append(line)
                    if match == current:
                        break
                if inside:
                    append(line)
                if not inside and begin and begin in line:
                    inside = True
                    current += 1
                    if inc_begin:
                        append(line)
        return [process(x) for x in lines] if process else lines

    def get_output_chunk(
        self,
        begin: str | None = None,
        end: str | None = None,
        match: int = 0,
        inc_begin: bool = False,
        inc_end: bool = False,
        process: Callable[[str], Any] | None = None,
    ) -> list[Any]:
        """:meth:`get_file_chunk` on the job's output file ``$JN.out``."""
        return self.get_file_chunk(self._output_name(), begin, end, match, inc_begin, inc_end, process)

    def _output_name(self) -> str:
        filename = getattr(self.job, "_filename", None)
        if filename is None:
            raise ResultsError(f"job {self.job.name} is not a SingleJob: it has no output file")
        try:
            return str(filename("out"))
        except KeyError:
            raise ResultsError(f"job {self.job.name} has no output file") from None

    @_needs_files
    def awk_file(self, filename: str, script: str = "", progfile: str | None = None, **kwargs: Any) -> list[str]:
        """Output lines of ``awk`` run on ``filename`` (PLAMS's interface).

        ``script`` is the AWK program, or ``progfile`` names a file holding it (an
        absolute path, one relative to the current folder, or a file of the job); each
        keyword becomes ``-v name=value``. As in PLAMS, awk failing gives ``[]``.

        Raises
        ------
        FileError
            ``progfile`` does not exist.
        ResultFileNotFoundError
            The job has no file ``filename``.
        """
        command = ["awk"]
        for key, value in kwargs.items():
            command += ["-v", f"{key}={value}"]
        if progfile:
            candidates = [os.path.abspath(progfile), os.path.join(self._folder(), progfile)]
            found = next((c for c in candidates if os.path.isfile(c)), None)
            if found is None:
                raise FileError(f"AWK program file {progfile} not present")
            command += ["-f", found]
        else:
            command.append(script)
        return self._process_file(filename, command)

    def awk_output(self, script: str = "", progfile: str | None = None, **kwargs: Any) -> list[str]:
        """:meth:`awk_file` on the job's output file ``$JN.out``."""
        return self.awk_file(self._output_name(), script, progfile, **kwargs)

    def _process_file(self, filename: str, command: list[str]) -> list[str]:
        """Run ``command`` with the job file ``filename`` as its last argument; its output lines.

        Started through :func:`saferun`; a non-zero exit gives ``[]``, as in PLAMS.
        """
        path = self._path(filename)
        result = saferun([*command, path], cwd=self._folder(), capture_output=True)
        if result.returncode != 0:
            return []
        return result.stdout.decode(errors="replace").splitlines()  # type: ignore[no-any-return]

    @_needs_files
    def rename(self, old: str, new: str) -> None:
        """Rename file ``old`` to ``new`` in the job folder."""
        source = self._path(old)
        target = os.path.join(self._folder(), self._replace_jn(new))
        os.replace(source, target)
        self.files = sorted({*(f for f in self.files if f != self._replace_jn(old)), self._replace_jn(new)})

    # --- hooks of load_external() -------------------------------------------------------
    def recreate_settings(self) -> Any:
        """Settings rebuilt from the job's files, for ``load_external()``; ``None`` here.

        Override in a Results subclass that can read them back (as PLAMS's do).
        """
        return None

    def recreate_molecule(self) -> Any:
        """The molecule rebuilt from the job's files, for ``load_external()``; ``None`` here."""
        return None

    # --- cleaning --------------------------------------------------------------------
    def clean(self, keep: Any) -> None:
        """Delete files of the job folder according to ``keep``.

        ``'all'`` (or ``None``) keeps everything; ``'none'`` deletes every file but the
        saved job; a list of patterns keeps the files that match one (``$JN`` allowed);
        a list starting with ``'-'`` deletes the files that match instead.
        """
        if keep in (None, "all") or not self.job.path:
            return
        protected = {f"{self.job.name}.dill", f"{self.job.name}.job.json"}
        if keep == "none":
            delete = [f for f in self.files if f not in protected]
        elif isinstance(keep, (list, tuple)):
            patterns = [self._replace_jn(p) for p in keep]
            if patterns and patterns[0] == "-":
                delete = [f for f in self.files if any(fnmatch.fnmatch(f, p) for p in patterns[1:])]
            else:
                delete = [f for f in self.files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
            delete = [f for f in delete if f not in protected]
        else:
            raise ResultsError(f"keep/save must be 'all', 'none' or a list of patterns, not {keep!r}")
        for name in delete:
            try:
                os.unlink(os.path.join(self.job.path, name))
            except FileNotFoundError:
                pass
        removed = set(delete)
        self.files = [f for f in self.files if f not in removed]

    _clean = clean  # PLAMS's name
