"""The index of a working folder's saved jobs, which ``-r`` and ``-l`` read instead of unpickling.

``<workdir>/.plams-index`` (beside the ``logfile``) holds one JSON line per saved job. A line
is made each time a job is saved (:func:`record`); lines are appended in batches, each with a
single ``O_APPEND`` write (:func:`flush`: every :data:`BATCH` lines, at ``finish()`` and at
exit). A line gives the job's ``.dill`` path (relative to the index's folder), name, class,
status, hash, exit code and files, and the identity (inode, size, ``mtime_ns``) of the
``.dill`` and ``.job.json`` it was written with. A killed run loses its last lines: the
summaries of those jobs vouch for them instead.

The index is a cache of the saved jobs, never their truth:

* An entry is used only while the ``.dill`` and the ``.job.json`` in that folder are the
  files it was written with (:func:`load_saved` stats both). When only the ``.job.json``
  changed since, the job is unpickled: only the ``.dill`` can tell. A job with no entry,
  or whose ``.dill`` changed, is taken from its ``.job.json`` when that summary names the
  ``.dill`` beside it (``saved``: its identity, written by :func:`save_job
  <plams_cli.core.pickling.save_job>`). Otherwise the job is unpickled, as it was before
  there was an index.
* So a missing, stale, truncated, garbled or other-version index costs time, never a wrong
  reuse. Lines that do not parse are skipped; the last entry for a path wins. An index
  is never rewritten in place: a restart's new folder gets a fresh one, with a line for
  every job it saves or moves in (:func:`carry`), so the index is rebuilt by the next
  ``-r``. Nothing is written into a folder given to ``-l``.

A job known from the index is a :class:`SavedJob`: it answers what rerun prevention and a
restart ask (name, folder, status, hash, exit code) from the entry, and unpickles the
saved job the first time anything else is asked of it.
"""

from __future__ import annotations

import atexit
import json
import os
import stat
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from plams_cli.core._files import folder_to_load
from plams_cli.core.logger import log
from plams_cli.core.status import JobStatus
from plams_cli.errors import FileError

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job

__all__ = ["INDEX", "SavedJob", "carry", "file_id", "flush", "load_saved", "record", "record_kept"]

#: the index file, in the working folder
INDEX = ".plams-index"
_VERSION = 1
_DILL, _SUMMARY = ".dill", ".job.json"
_DONE = threading.Event()
_DONE.set()

FileId = list[int]
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_LINE = " line"  # where a read entry keeps its line (never a key of a written entry)


def file_id(st: os.stat_result) -> FileId:
    """``[inode, size, mtime_ns]``: what tells a saved file from the one written before or after it."""
    return [st.st_ino, st.st_size, st.st_mtime_ns]


# --- writing ---------------------------------------------------------------------------
# Entries wait here and go out in batches, one append per index file: a kill loses the
# last ones, and the summaries beside the .dill files vouch for those jobs instead.
# A line waits with the job folder whose time it is to get (see _timed), and when that folder
# changed last as far as the writer knows (0: long ago, or not known).
_pending: dict[str, list[tuple[bytes, str | None, int]]] = {}  # index file -> its lines not written yet
_pending_lock = threading.Lock()
_pending_count = 0
#: entries kept before they are written (all are written by :func:`flush`, at ``finish()`` and at exit)
BATCH = 500
#: how long ago a job folder must have changed last for its time to go into the index (see _timed)
SETTLED_NS = 50_000_000


def _queue(index: str, line: bytes, folder: str | None = None, fresh: bool = False) -> None:
    """Keep ``line`` for ``index``; ``fresh``: ``folder`` changed just now (its time cannot be settled before
    :data:`SETTLED_NS` has passed, so it is not even read before then)."""
    global _pending_count
    changed = time.time_ns() if fresh else 0
    with _pending_lock:
        _pending.setdefault(index, []).append((line, folder, changed))
        _pending_count += 1
        if _pending_count >= BATCH:
            _write_pending()


def _timed(line: bytes, folder: str | None, now_ns: int) -> bytes:
    """``line`` with the ``mtime_ns`` of the job folder ``folder`` as its last field ``t``, when that time is settled.

    File systems stamp changes with a coarse clock (a tick of up to 10 ms on Linux), so a
    change made in the same tick as the time read would not change it. A time at least
    :data:`SETTLED_NS` old is safe: any later change gets a later one. Then the time
    tells a later restart that the folder holds what the entry lists
    (:meth:`SavedJob.check_folder`); without it the folder is listed.
    """
    if folder is None:
        return line
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return line
    return line[:-1] + b',"t":%d}' % mtime if mtime <= now_ns - SETTLED_NS else line


def flush() -> None:
    """Write the entries :func:`record` and :func:`carry` keep, one append per index file.

    ``finish()`` calls it, and so does the end of the process. A failed write is ignored:
    the index is a cache, and the saved files are whole.
    """
    with _pending_lock:
        _write_pending()


def _write_pending() -> None:
    """Write the pending entries (called holding ``_pending_lock``: batches go out in order)."""
    global _pending_count
    pending = list(_pending.items())
    _pending.clear()
    _pending_count = 0
    now_ns = time.time_ns()
    settled = now_ns - SETTLED_NS  # (a folder changed later is not settled: not looked at)
    for index, lines in pending:
        try:
            fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            continue
        try:
            os.write(fd, b"".join((_timed(line, folder, now_ns) if changed <= settled else line) + b"\n"
                                  for line, folder, changed in lines))
        except OSError:
            pass
        finally:
            os.close(fd)


atexit.register(flush)
if hasattr(os, "register_at_fork"):  # a forked child must not write its parent's entries again
    os.register_at_fork(after_in_child=_pending.clear)

_multijob_class: list[type] = []  # MultiJob, imported on first use (it imports the job classes, which import us)


def _is_multijob(job: Job) -> bool:
    if not _multijob_class:
        from plams_cli.core.multijob import MultiJob

        _multijob_class.append(MultiJob)
    return isinstance(job, _multijob_class[0])


def record(job: Job, dill: str, dill_id: FileId, summary_id: FileId) -> None:
    """Add the entry of ``job``, just saved as ``dill`` beside its summary, to its working folder's index.

    ``dill_id`` and ``summary_id`` are the :func:`file_id` of the two files as written.
    Jobs saved outside their job manager's working folder are not indexed. The entry
    is written with the next batch (see :func:`flush`).
    """
    workdir = getattr(job.jobmanager, "workdir", None)
    if not workdir or not dill.startswith(workdir + os.sep):
        return
    cls = type(job)
    entry = {"v": _VERSION, "p": dill[len(workdir) + 1:], "n": job.name, "c": f"{cls.__module__}.{cls.__qualname__}",
             "s": job.status.value, "h": job._hash, "x": getattr(job, "_exit_code", None), "f": list(job.results.files),
             "d": dill_id, "j": summary_id}
    if _is_multijob(job):
        entry["m"] = 1
    try:
        line = _ENCODER.encode(entry).encode()
    except (TypeError, ValueError):
        return
    _queue(workdir + os.sep + INDEX, line, None if "m" in entry else os.path.dirname(dill), fresh=True)


def record_kept(job: Job, dill: str, saved: SavedJob) -> None:
    """Add the entry of ``job``, which kept the saved files of ``saved`` (``dill`` and its summary), to its index.

    A job reused by ``-r`` or ``-l`` keeps the ``.dill`` and ``.job.json`` of the identical
    job it reuses, untouched (moved with its folder, or hard links): its entry is that job's,
    at its new place. When the folder moved there whole, intact, and that place is the
    same relative to the index, the line read from the old index is written again; else
    the entry is made anew from ``saved`` and the job's files.
    """
    workdir = getattr(job.jobmanager, "workdir", None)
    if not workdir or not dill.startswith(workdir + os.sep):
        return
    relative = dill[len(workdir) + 1:]
    # The line read holds what is still true when the folder was intact (see SavedJob.check_folder),
    # and its time too when the folder moved whole (a rename keeps a folder's time).
    line = saved.line
    if saved.intact and line is not None and saved.relative == relative:
        if saved.moved_whole:  # a rename keeps the folder's time
            _queue(workdir + os.sep + INDEX, line)
            return
        cut = line.rfind(b',"t":')  # a new folder of links: its own time, when settled (see _timed)
        if cut > 0:
            _queue(workdir + os.sep + INDEX, line[:cut] + b"}", os.path.dirname(dill), fresh=True)
            return
    entry = {"v": _VERSION, "p": relative, "n": saved.name, "c": saved._cls, "s": saved.status.value,
             "h": saved._hash, "x": saved._exit_code, "f": list(job.results.files), "d": saved.saved_id,
             "j": saved.summary_id}
    try:
        line = _ENCODER.encode(entry).encode()
    except (TypeError, ValueError):
        return
    _queue(workdir + os.sep + INDEX, line, os.path.dirname(dill))


def carry(workdir: str, jobs: list[SavedJob]) -> None:
    """Add entries to ``workdir``'s index for ``jobs``, moved into it from another working folder (a restart).

    Each entry is made from the job's summary, when that still names its ``.dill``.
    """
    lines = []
    for job in jobs:
        if job.path is None or not job.path.startswith(workdir + os.sep):
            continue
        dill = job.path + os.sep + job.name + _DILL
        summary = job.path + os.sep + job.name + _SUMMARY
        dill_id, summary_id = _regular_id(dill), _regular_id(summary)
        entry = _from_summary(dill, dill_id, summary, summary_id) if dill_id and summary_id else None
        if entry is not None:
            entry["p"] = dill[len(workdir) + 1:]
            lines.append((_ENCODER.encode(entry).encode(), job.path))
    for line, folder in lines:
        _queue(workdir + os.sep + INDEX, line, folder)


# --- the stand-in of a saved job ---------------------------------------------------------
class _SavedResults:
    """The results of a :class:`SavedJob`: done already; anything else is asked of the unpickled job's."""

    __slots__ = ("_saved",)
    done = _DONE

    def __init__(self, saved: SavedJob) -> None:
        self._saved = saved

    def wait(self) -> None:
        """Return at once: a saved job has ended."""

    def is_done(self) -> bool:
        """True: a saved job has ended."""
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saved.load().results, name)


class SavedJob:
    """A finished job known from an index entry (or its summary), unpickled only when needed.

    Rerun prevention and the restart read its :attr:`name`, :attr:`path`, :attr:`status`,
    :attr:`registered_hash` and exit code; any other attribute (its settings, a results
    method that reads files) unpickles the saved job once (:meth:`load`) and answers
    from it.

    Parameters
    ----------
    path
        The job's folder (absolute).
    entry
        Its index entry (the fields :func:`record` writes).
    """

    # Slots, no dict: tens of thousands of them stand in memory during a restart.
    __slots__ = ("name", "path", "jobmanager", "_hash", "_exit_code", "_status", "_cls", "_job", "saved_id",
                 "summary_id", "relative", "line", "folder_mtime", "intact", "moved_whole")
    #: a saved job found through the index is never a MultiJob (those are unpickled)
    children = None

    def __init__(self, path: str, entry: dict[str, Any]) -> None:
        self.name: str = entry["n"]
        self.path: str | None = path
        self.jobmanager: Any = None
        self._hash: str | None = entry.get("h")
        self._exit_code: int | None = entry.get("x")
        self._status = _STATUSES[entry["s"]]  # (checked by _valid)
        self._cls = sys.intern(str(entry.get("c")))
        self._job: Job | None = None
        #: the :func:`file_id` of the ``.dill`` the entry vouches for, and of its ``.job.json``
        self.saved_id: FileId = entry["d"]
        self.summary_id: FileId = entry["j"]
        #: the ``.dill``'s path relative to the index's folder, and the index line read
        #: (``None``: the entry was made from the summary)
        self.relative: str = entry["p"]
        self.line: bytes | None = entry.get(_LINE)
        #: the ``mtime_ns`` of the job's folder when the entry was written (``None``: not known)
        folder_mtime = entry.get("t")
        self.folder_mtime: int | None = folder_mtime if type(folder_mtime) is int else None
        #: set by :meth:`check_folder`: the folder is as the index entry saw it
        self.intact = False
        #: set by a restart that moved the folder whole into its new place (its time unchanged)
        self.moved_whole = False

    def check_folder(self) -> bool:
        """Whether the job's folder is (still) a folder; :attr:`intact` then says whether it is as the index saw it.

        Intact: its ``mtime`` is the one the index entry recorded after the job was saved
        (so no file was added, removed or replaced in it since) and it has no subfolders
        (a link count of 2, on file systems that count them): the entry's file list
        (:meth:`listed_files`) is what the folder holds, and its saved files are those the
        entry vouched for when it was loaded.
        """
        self.intact = False
        if self.path is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return False
        self.intact = self.line is not None and st.st_mtime_ns == self.folder_mtime and st.st_nlink == 2
        return True

    def listed_files(self) -> list[str] | None:
        """The files of the job's folder, from its index entry, when :attr:`intact` (else ``None``)."""
        if not self.intact or self.line is None:
            return None
        line = self.line
        start, end = line.find(b',"f":["'), line.find(b'"],"d":')  # (the order record() writes them in)
        if 0 < start < end and b"\\" not in line[start:end]:
            files = line[start + 7:end].decode().split('","')  # plain names: no JSON to decode
        else:
            try:
                files = json.loads(line).get("f")
            except ValueError:
                return None
            if type(files) is not list or not all(type(name) is str for name in files):
                return None
        # (a job lists its files before it is saved: the saved files are not in a first run's entry)
        dill = self.name + _DILL
        if dill not in files:
            files = sorted([*files, dill, self.name + _SUMMARY])
        return files

    @property
    def status(self) -> JobStatus:
        """The status the job was saved with."""
        return self._status

    @property
    def registered_hash(self) -> str | None:
        """The hash the job was saved with."""
        return self._hash

    @property
    def results(self) -> Any:
        """Its results: done; reading them unpickles the job."""
        return _SavedResults(self) if self._job is None else self._job.results

    @property
    def loaded(self) -> bool:
        """Whether the saved job has been unpickled."""
        return self._job is not None

    def ok(self, strict: bool = True) -> bool:
        """Whether the job ended well (successful or copied), as :meth:`Job.ok <plams_cli.core.job.Job.ok>`."""
        good = {JobStatus.SUCCESSFUL, JobStatus.COPIED}
        if not strict:
            good |= {JobStatus.FAILED, JobStatus.FINISHED}
        return self._status in good

    def load(self) -> Job:
        """The saved job, unpickled (once) from its ``.dill``, in its folder now and with its job manager.

        Raises
        ------
        FileError, CorruptedJobFileError
            See :func:`~plams_cli.core.pickling.read_job`.
        """
        if self._job is None:
            from plams_cli.core.pickling import read_job

            if self.path is None:
                raise FileError(f"the saved job {self.name} has no folder any more")
            job = read_job(os.path.join(self.path, self.name + _DILL))
            job.jobmanager = self.jobmanager
            self._job = job
        return self._job

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for these: no unpickling for them
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __repr__(self) -> str:
        return f"<{self._cls.rsplit('.', 1)[-1]} {self.name!r} {self._status.value} (saved)>"


# --- reading -------------------------------------------------------------------------------
def _read_index(folder: str, known: dict[str, dict[str, Any]]) -> None:
    """Add the usable entries of ``folder``'s index to ``known`` (absolute ``.dill`` path -> entry)."""
    if _pending:
        flush()  # this process may have entries of that very index waiting
    try:
        with open(os.path.join(folder, INDEX), "rb") as handle:
            data = handle.read()
    except OSError:
        return
    prefix = folder + os.sep
    # An index is ASCII (the encoder escapes the rest): decoded at once, each line parsed by
    # the decoder's raw_decode (json.loads of each line costs a third more). A line it does
    # not take whole (a torn one, bytes that are not ASCII) is parsed alone by _parse_line.
    texts = data.decode("ascii").split("\n") if data.isascii() else None
    for number, line in enumerate(data.split(b"\n")):
        if not line:
            continue
        entry: Any = None
        if texts is not None:
            text = texts[number]
            try:
                entry, end = _raw_decode(text)
            except ValueError:
                end = -1
            if end != len(text) or type(entry) is not dict:
                entry = None
        if entry is None:
            entry = _parse_line(line)
            if entry is None:
                continue
            line = entry.pop(_LINE)
        if _valid(entry):
            entry[_LINE] = line
            known[prefix + entry["p"]] = entry


_raw_decode = json.JSONDecoder().raw_decode


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One index line's entry (with the line it was read from under ``_LINE``), or ``None``."""
    try:
        entry = json.loads(line)
    except ValueError:
        # A killed writer left a torn line, which the next entry continues: keep that one.
        start = line.rfind(b'{"v":')
        if start <= 0:
            return None
        line = line[start:]
        try:
            entry = json.loads(line)
        except ValueError:
            return None
    if type(entry) is not dict:
        return None
    entry[_LINE] = line
    return entry


def _valid(entry: Any) -> bool:
    # Only what is used unchecked; the file identities are compared for equality, so
    # anything but the right list of ints simply does not match. (Once per saved job:
    # indexing, not get(), for the keys every entry has.)
    try:
        return (entry["v"] == _VERSION and type(entry["p"]) is str and type(entry["n"]) is str
                and entry["s"] in _STATUSES and ((digest := entry.get("h")) is None or type(digest) is str)
                and ((code := entry.get("x")) is None or type(code) is int) and "d" in entry and "j" in entry)
    except (KeyError, TypeError):  # not a dict, a key missing, a status that cannot be hashed
        return False


_STATUSES = {status.value: status for status in JobStatus}


def _from_summary(dill: str, dill_id: FileId, summary: str, summary_id: FileId) -> dict[str, Any] | None:
    """The entry of the job saved as ``dill``, rebuilt from its summary, when the summary names that very file."""
    try:
        with open(summary, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("saved") != dill_id or "children" in data:
        return None
    files = data.get("files")
    entry = {"v": _VERSION, "p": os.path.basename(dill), "n": data.get("name"), "c": data.get("class"),
             "s": data.get("status"), "h": data.get("hash"), "x": data.get("exit_code"),
             "f": files if isinstance(files, list) else [], "d": dill_id, "j": summary_id}
    return entry if _valid(entry) else None


def _regular_id(path: str) -> FileId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return file_id(st) if stat.S_ISREG(st.st_mode) else None


def load_saved(path: str, jobmanager: JobManager) -> tuple[dict[str, Job | SavedJob], list[str]]:
    """Make every job saved under ``path`` known to ``jobmanager``, unpickling only what the index cannot vouch for.

    The same jobs as :func:`~plams_cli.core.pickling.load_tree` finds, by the same rules
    (a folder with a saved job is not searched further; one without is); each is a
    :class:`SavedJob` when an index entry or its summary matches its files, else the
    unpickled job. Returns a dict from ``.dill`` path to job, and the unreadable files.

    .. warning:: Unpickling runs code: use it only on folders you trust (see
       :func:`~plams_cli.core.pickling.read_job`).

    Raises
    ------
    FileError
        ``path`` does not exist or is not a folder.
    """
    root = folder_to_load(path)
    loaded: dict[str, Job | SavedJob] = {}
    bad: list[str] = []
    known: dict[str, dict[str, Any]] = {}

    def visit(folder: str) -> None:
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError as exc:
            log(f"Cannot read {folder}: {exc.strerror}", 1)
            return
        if any(entry.name == INDEX for entry in entries):
            _read_index(folder, known)
        saved: list[SavedJob] = []
        for name in sorted(e.name for e in entries if e.is_dir(follow_symlinks=False)):
            # Performance-critical (once per saved job): str concatenation, not os.path.join.
            sub = folder + os.sep + name
            dill = sub + os.sep + name + _DILL
            dill_id = _regular_id(dill)
            job = None if dill_id is None else _saved(sub, name, dill, dill_id, known.get(dill))
            if job is not None:
                job.jobmanager = jobmanager
                saved.append(job)
                loaded[dill] = job
                continue
            # (the jobs found so far are added first: the first of identical jobs wins their hash)
            jobmanager.add_saved(*saved)
            saved.clear()
            if dill_id is None:
                visit(sub)
                continue
            try:
                loaded[dill] = jobmanager.load_job(dill)
            except FileError as exc:
                log(f"Skipping {dill}: {exc}", 1)
                bad.append(dill)
                visit(sub)
        jobmanager.add_saved(*saved)

    visit(root)
    known.clear()  # at once: visit() is a closure on itself, so only the garbage collector would free them
    return loaded, bad


def _saved(folder: str, name: str, dill: str, dill_id: FileId, entry: dict[str, Any] | None) -> SavedJob | None:
    """The :class:`SavedJob` of job ``name`` (saved as ``dill``) if its entry or summary vouches for it, else None."""
    summary = dill[: -len(_DILL)] + _SUMMARY
    summary_id = _regular_id(summary)
    if summary_id is None:
        return None
    if entry is not None and entry["d"] == dill_id:
        if entry["j"] != summary_id:
            return None  # the summary changed after the job was saved: only the .dill can tell
    else:
        entry = _from_summary(dill, dill_id, summary, summary_id)
        if entry is None:
            return None
    if entry.get("m") or entry["n"] != name:
        return None
    return SavedJob(folder, entry)
