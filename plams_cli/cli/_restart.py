"""The restart model of ``plams -r``: run again in place, reusing every finished job.

``plams -r -f NAME script.plms`` works in three steps, each safe against a kill:

1. :func:`set_aside` moves ``NAME`` to ``NAME.res`` with one ``os.rename``. If
   ``NAME.res`` is already there (an earlier restart was killed), ``NAME`` moves *into*
   it as ``NAME.res/_interrupted_restart`` instead, so the finished jobs of both are loaded.
2. The script runs in a fresh ``NAME``; the jobs saved in ``NAME.res`` are loaded first,
   so identical jobs are copied (hard-linked) rather than rerun.
3. :func:`settle` moves each loaded job that the new run did not reproduce into ``NAME``
   (one ``os.rename`` per job folder), then everything else ``NAME.res`` holds (files the
   script or the user put there; the old ``logfile`` is appended to
   ``NAME/logfile.previous``), renames ``NAME.res`` to a hidden trash name and deletes
   it. A loaded job the new run *replaced* (it made a job of the same name, as the
   script now defines it) is obsolete and dropped with ``NAME.res``. Anything that cannot
   be moved keeps ``NAME.res`` in place.

At every moment each finished job, and each file, is complete in ``NAME`` or in
``NAME.res``; a half-deleted folder is never called ``NAME.res``.

Only plams working folders are restarted (:func:`restart_target`): a folder with a
``logfile``. The ``plams`` command also writes a marker file :data:`MARKER` into each
working folder it makes; ``-r`` without ``-f`` picks the most recent folder with the
marker (or, for folders made before the marker existed, a ``logfile`` and a job folder).
The marker records the folder's name, so a ``NAME.res`` left by a killed restart is told
from a working folder the user called ``calc.res``. A run holds an exclusive lock
(``flock``) on its marker until it ends, and ``-r`` takes the locks of ``NAME`` and
``NAME.res`` first (:func:`lock_for_restart`): a folder a live run uses is never moved.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job

__all__ = ["MARKER", "RES_SUFFIX", "FolderInUseError", "NotRestartableError", "clear_trash", "find_latest",
           "is_plams_run", "is_workdir", "lock_for_restart", "mark_workdir", "restart_target", "set_aside",
           "settle", "SettleReport"]

RES_SUFFIX = ".res"
#: written by ``plams`` into each working folder it makes (JSON: who made it, when)
MARKER = ".plams-run"
LOGFILE = "logfile"
#: the logs of earlier runs of a restarted folder, oldest first
PREVIOUS_LOG = "logfile.previous"
_INTERRUPTED = "_interrupted_restart"
_INTERRUPTED_RE = re.compile(re.escape(_INTERRUPTED) + r"(\.\d+)?")
_PREVIOUS_RE = re.compile(r"(.*\.previous)(\.\d{3,})?")
_TRASH_PREFIX = ".plams-trash."
#: ``.plams-trash.<PID>.<name>``: the process that deletes it, and what it was
_TRASH_RE = re.compile(re.escape(_TRASH_PREFIX) + r"(\d+)\.(.+)")
#: files a plams job folder ``D`` holds, named ``D.<suffix>``
_JOB_FILE_SUFFIXES = (".dill", ".job.json", ".run", ".in", ".out", ".err")


class NotRestartableError(ValueError):
    """``-r`` was given a folder that cannot be restarted; the message says why."""


class FolderInUseError(NotRestartableError):
    """A live ``plams`` run holds the lock of the folder ``-r`` was to restart."""

    def __init__(self, folder: str, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        super().__init__(f"{folder} is in use by plams (pid {pid if pid is not None else '?'}); "
                         "wait for it or stop it")


def _is_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def is_workdir(path: str) -> bool:
    """Whether ``path`` is a plams working folder: it has a ``logfile`` or the :data:`MARKER`."""
    return _is_dir(path) and (os.path.isfile(os.path.join(path, LOGFILE))
                              or os.path.isfile(os.path.join(path, MARKER)))


def _is_job_folder(path: str) -> bool:
    """Whether ``path`` is a job's folder ``D``: it holds files named ``D.dill``, ``D.run``, …."""
    name = os.path.basename(path)
    return _is_dir(path) and any(os.path.isfile(os.path.join(path, name + suffix))
                                 for suffix in _JOB_FILE_SUFFIXES)


def is_plams_run(path: str) -> bool:
    """Whether ``path`` surely is a working folder of a ``plams`` run (what ``-r`` alone may pick).

    It must have a ``logfile`` and either the :data:`MARKER` or, for folders made before
    the marker existed, a job folder. A folder of the user's that merely holds a file
    called ``logfile`` is not picked.
    """
    if not os.path.isfile(os.path.join(path, LOGFILE)):
        return False
    if os.path.isfile(os.path.join(path, MARKER)):
        return True
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        return any(_is_job_folder(entry.path) for entry in entries)
    return False


def _read_marker(folder: str) -> dict[str, object]:
    """The JSON of ``folder``'s :data:`MARKER`; empty when it is missing or unreadable."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


#: seconds a new run retries the lock of its fresh marker (another ``-r`` may hold it for a moment)
_LOCK_RETRY_S = 2.0


def mark_workdir(workdir: str, scripts: Iterable[str]) -> int | None:
    """Write the :data:`MARKER` into a working folder ``plams`` has just made, and lock it.

    Returns the descriptor that holds the lock: keep it open for the whole run (the lock
    goes when it is closed or the process ends, even by SIGKILL). ``None`` when the lock
    could not be taken (the run goes on, unprotected).
    """
    from plams_cli.cli.main import _version

    data = {"made_by": "plams-cli", "version": _version(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pid": os.getpid(), "folder": os.path.basename(workdir), "scripts": list(scripts)}
    fd = os.open(os.path.join(workdir, MARKER), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + _LOCK_RETRY_S
        while not _try_lock(fd):
            # A -r checking this folder holds the lock for a moment, then lets it go.
            if time.monotonic() > deadline:
                os.close(fd)
                fd = -1
                break
            time.sleep(0.02)
        with open(os.path.join(workdir, MARKER), "w", encoding="utf-8") as handle:
            # another descriptor of the file: closing it leaves the lock (flock is per descriptor)
            json.dump(data, handle, indent=2)
            handle.write("\n")
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd if fd >= 0 else None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_holder(path: str) -> int | None:
    """The process holding the ``flock`` of ``path``, from ``/proc/locks`` (Linux); ``None`` if unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.readlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    by_inode = None
    for line in lines:
        parts = line.split()
        # "3: FLOCK  ADVISORY  WRITE 18547 fe:00:2154666 0 EOF"; a waiter's line has "->"
        if len(parts) < 6 or parts[1] != "FLOCK" or "->" in parts or not parts[4].isdigit():
            continue
        if parts[5] == device:
            return int(parts[4])
        if parts[5].rsplit(":", 1)[-1] == str(st.st_ino):
            by_inode = int(parts[4])  # some file systems show another device number
    return by_inode


def lock_for_restart(workdir: str, res: str) -> list[int]:
    """Take the locks of ``NAME`` and ``NAME.res`` (their markers) before ``-r`` touches them.

    Returns the descriptors holding the locks; keep them open until the run ends. A
    folder without a marker was not made by a live run of this ``plams``: nothing to lock.

    Raises
    ------
    FolderInUseError
        A live run holds one of the locks (nothing was changed).
    """
    held: list[int] = []
    try:
        for folder in (workdir, res):
            marker = os.path.join(folder, MARKER)
            if not _is_dir(folder) or not os.path.isfile(marker):
                continue
            try:
                fd = os.open(marker, os.O_RDWR | os.O_CLOEXEC)
            except PermissionError:
                fd = os.open(marker, os.O_RDONLY | os.O_CLOEXEC)
            if not _try_lock(fd):
                os.close(fd)
                pid = _lock_holder(marker)
                if pid is None:
                    pid = _marker_pid(workdir) or _marker_pid(folder)
                raise FolderInUseError(workdir, pid)
            held.append(fd)
    except BaseException:
        for fd in held:
            os.close(fd)
        raise
    return held


def _marker_pid(folder: str) -> int | None:
    pid = _read_marker(folder).get("pid")
    return pid if isinstance(pid, int) else None


def _is_leftover(res: str) -> bool:
    """Whether ``X.res`` is what a restart of ``X`` left, not a working folder the user called ``X.res``.

    Its marker names the folder it was made as: ``X`` for a leftover, ``X.res`` for a run
    made under that name. Without that record (no marker, or one of an older version) the
    name decides: it is a leftover.
    """
    made_as = _read_marker(res).get("folder")
    if isinstance(made_as, str):
        return made_as + RES_SUFFIX == os.path.basename(res)
    return True


def find_latest(path: str) -> str | None:
    """The name of the most recently used working folder of a ``plams`` run in ``path``.

    Only folders :func:`is_plams_run` accepts count; the most recent is the one whose
    ``logfile`` changed last. A ``NAME.res`` left by a killed restart stands for ``NAME``
    (a folder the user named ``calc.res`` stands for itself). ``None`` when there is none.
    """
    best: tuple[float, str] | None = None
    try:
        entries = list(os.scandir(path))
    except OSError:
        return None
    for entry in entries:
        if entry.name.startswith(_TRASH_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        if not is_plams_run(entry.path):
            continue
        try:
            mtime = os.stat(os.path.join(entry.path, LOGFILE)).st_mtime
        except OSError:
            continue
        name = entry.name
        if name.endswith(RES_SUFFIX) and _is_leftover(entry.path):
            name = name[: -len(RES_SUFFIX)]
        if best is None or mtime > best[0]:
            best = (mtime, name)
    return best[1] if best else None


def restart_target(path: str, folder: str) -> tuple[str, str]:
    """``(NAME, NAME.res)`` as absolute paths, when ``NAME`` in ``path`` can be restarted.

    ``NAME`` must be a plams working folder (:func:`is_workdir`), or ``NAME.res`` must be
    one left by a restart of ``NAME`` (a killed restart; ``NAME``, if there, is then a
    folder too).

    Raises
    ------
    NotRestartableError
        There is nothing to restart, or what is there is not a plams working folder.
    """
    workdir = os.path.abspath(os.path.join(path, folder))
    res = workdir + RES_SUFFIX
    if os.path.lexists(res):
        if not _is_dir(res):
            raise NotRestartableError(f"cannot restart {workdir}: {res} is in the way (it is not a folder)")
        if not is_workdir(res):
            raise NotRestartableError(
                f"cannot restart {workdir}: {res} is in the way (it is not a plams working folder: "
                f"it has no {LOGFILE}); move it away"
            )
        if not _is_leftover(res):
            raise NotRestartableError(
                f"cannot restart {workdir}: {res} is in the way (it is a working folder of its own, "
                "not what a restart left); move it away"
            )
        if os.path.lexists(workdir) and not _is_dir(workdir):
            raise NotRestartableError(f"cannot restart {workdir}: it is not a folder")
        return workdir, res
    if not os.path.lexists(workdir):
        raise NotRestartableError(f"nothing to restart: {workdir} does not exist")
    if not _is_dir(workdir):
        raise NotRestartableError(f"cannot restart {workdir}: it is not a folder")
    if not is_workdir(workdir):
        raise NotRestartableError(
            f"cannot restart {workdir}: it is not a plams working folder (it has no {LOGFILE}); "
            "-r only restarts folders made by plams"
        )
    return workdir, res


def set_aside(workdir: str, res: str) -> str | None:
    """Step 1: move ``workdir`` out of the way, into ``res``; return where it went (``None``: it was absent).

    Raises
    ------
    OSError
        The move failed (nothing was changed).
    """
    if not os.path.lexists(workdir):
        return None
    if not os.path.isdir(res):
        os.rename(workdir, res)
        return res
    # A restart was killed: keep both sets of finished jobs, NAME's nested in NAME.res.
    target = _free_name(res, _INTERRUPTED)
    os.rename(workdir, target)
    return target


@dataclass
class SettleReport:
    """What :func:`settle` did: job folders and other entries moved into the new run, what kept ``NAME.res``."""

    moved: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    #: finished jobs the new run replaced by a job of the same name (obsolete: deleted with ``NAME.res``)
    dropped: list[str] = field(default_factory=list)
    removed: bool = False
    #: other entries of ``NAME.res`` (files the script or the user put there) now in ``NAME``
    moved_other: list[str] = field(default_factory=list)
    #: the old logfiles appended to ``NAME/logfile.previous``
    logs: int = 0


def _walk(job: Job) -> Iterator[Job]:
    yield job
    children = getattr(job, "children", None)
    if children is not None:
        for child in children.values() if isinstance(children, dict) else children:
            yield from _walk(child)


def _covered(job: Job, done_hashes: set[str]) -> bool:
    """Whether the new run holds an identical finished job for ``job`` (for a MultiJob: for every job in it)."""
    leaves = [item for item in _walk(job) if getattr(item, "children", None) is None]
    if not leaves:
        return False
    return all(getattr(item, "_hash", None) in done_hashes for item in leaves)


def _children(job: Job) -> list[Job]:
    children = getattr(job, "children", None)
    if children is None:
        return []
    return list(children.values()) if isinstance(children, dict) else list(children)


def _replaced(job: Job, new_jobs: dict[str, Job], workdir: str, res: str, done_hashes: set[str]) -> bool:
    """Whether the new run replaced the loaded ``job``: it made a job of its own in the same place.

    That job replaces it when it ran to its end (successful, copied, failed: it is the job
    as the script now defines it) or when its input is known to differ (another hash).
    A MultiJob is replaced when each of its jobs is reproduced or replaced. A new job
    stopped before its hash was known replaces nothing (it may be identical).
    """
    from plams_cli.core.status import JobStatus

    if not job.path:
        return False
    new = new_jobs.get(os.path.normpath(_target(workdir, res, job.path)))
    if new is None:
        return False
    if new.status in (JobStatus.SUCCESSFUL, JobStatus.COPIED, JobStatus.FAILED):
        return True
    old_hash, new_hash = getattr(job, "_hash", None), getattr(new, "_hash", None)
    if old_hash and new_hash and old_hash != new_hash:
        return True
    children = _children(job)
    return bool(children) and all(_covered(child, done_hashes) or _replaced(child, new_jobs, workdir, res, done_hashes)
                                  for child in children)


def _target(workdir: str, res: str, path: str) -> str:
    """Where ``path`` (inside ``res``) belongs in the new working folder."""
    parts = os.path.relpath(path, res).split(os.sep)
    while len(parts) > 1 and _INTERRUPTED_RE.fullmatch(parts[0]):
        parts = parts[1:]
    return os.path.join(workdir, *parts)


def settle(manager: JobManager, res: str, loaded: Iterable[Job], unreadable: Iterable[str]) -> SettleReport:
    """Step 3: move what the new run did not reproduce into its folder, then delete ``res``.

    First each loaded job the new run did not reproduce moves into ``NAME``, unless the
    new run replaced it (:func:`_replaced`: the script changed it); then every other entry
    of ``res`` (see :func:`_keep_other_entries`). ``res`` is deleted only when nothing is
    left in it but the folders of jobs the new run reproduced or replaced.

    Parameters
    ----------
    manager
        The job manager of the new run (its ``workdir`` is ``NAME``).
    res
        ``NAME.res``.
    loaded
        The jobs loaded from ``res``.
    unreadable
        Saved jobs in ``res`` that could not be loaded; they keep ``res``.
    """
    from plams_cli.core.status import JobStatus

    loaded = list(loaded)
    report = SettleReport()
    done_hashes: set[str] = set()
    for job in manager.jobs:
        if job.status in (JobStatus.SUCCESSFUL, JobStatus.COPIED) and job._hash:
            if job.path and os.path.isfile(os.path.join(job.path, job.name + ".dill")):
                done_hashes.add(job._hash)
    new_jobs = {os.path.normpath(job.path): job for job in manager.jobs if job.path}
    for path in unreadable:
        report.kept.append(f"{path} could not be read")
    # Outermost first, so a MultiJob moves with its children.
    for job in sorted(loaded, key=lambda j: (j.path or "").count(os.sep)):
        if not job.path or not os.path.isdir(job.path):
            continue  # moved already with its parent
        if _covered(job, done_hashes):
            continue
        if _replaced(job, new_jobs, manager.workdir, res, done_hashes):
            report.dropped.append(job.path)
            continue
        target = _target(manager.workdir, res, job.path)
        if os.path.lexists(target):
            report.kept.append(f"{job.path}: {target} is taken")
            continue
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(job.path, target)
        except OSError as exc:
            report.kept.append(f"{job.path}: {exc.strerror or exc}")
            continue
        report.moved.append(target)
        for item in _walk(job):  # keep the objects' paths true after the move
            if item.path:
                item.path = target + item.path[len(job.path):]
    if report.kept:
        return report
    # What is left of the loaded jobs in res was reproduced (its files are in NAME) or replaced.
    reproduced = {os.path.normpath(job.path) for job in loaded
                  if job.path and os.path.normpath(job.path).startswith(os.path.normpath(res) + os.sep)}
    try:
        _keep_other_entries(res, manager.workdir, reproduced, report)
    except OSError as exc:
        report.kept.append(f"{exc.filename or res}: {exc.strerror or exc}")
    if report.kept:
        return report
    remove_tree(res)
    report.removed = True
    return report


def _roots(res: str) -> list[str]:
    """``res`` and the working folders of killed restarts nested in it, oldest first."""
    nested = []
    with os.scandir(res) as entries:
        for entry in entries:
            match = _INTERRUPTED_RE.fullmatch(entry.name)
            if match and entry.is_dir(follow_symlinks=False):
                nested.append((int(match.group(1)[1:]) if match.group(1) else 1, entry.path))
    return [res, *(path for _, path in sorted(nested))]


def _keep_other_entries(res: str, workdir: str, reproduced: set[str], report: SettleReport) -> None:
    """Move every entry of ``res`` that is not a reproduced job folder into ``workdir``.

    * An entry moves to the same name in ``workdir`` when that is free. When it is taken:
      an identical file is dropped; a folder is merged entry by entry; the folder of an
      earlier attempt of a job the new run redid (a failed or crashed job) is dropped;
      anything else moves to ``X.previous`` (an ``X.previous`` to ``X.previous.002``, …:
      the higher the number, the older).
    * The old :data:`MARKER` is dropped (``workdir`` has its own).
    * Last, the logfiles (``logfile.previous``, then ``logfile``, of ``res`` and then of
      each nested killed restart) are appended, oldest first, to
      ``workdir/logfile.previous``, so a chain of restarts keeps the whole history. They
      stay in ``res`` (which so remains a working folder) until it is deleted. The new
      ``logfile.previous`` is written whole, then renamed into place; a nested restart's
      ``logfile.previous`` that already holds the logs before it (a restart killed after
      this step) stands for them, so a history is never appended twice.

    Raises
    ------
    OSError
        Something could not be moved; the rest stays in ``res``.
    """
    roots = _roots(res)
    logs = [os.path.join(root, name) for root in roots for name in (PREVIOUS_LOG, LOGFILE)]
    logs = [log for log in logs if os.path.isfile(log) and not os.path.islink(log)]
    for root in reversed(roots):  # newest first: the newest keeps the plain name
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name == MARKER or entry.path in roots or entry.path in logs:
                continue
            _merge(entry.path, os.path.join(workdir, entry.name), reproduced, report)
    history: list[str] = []
    for log in logs:
        if os.path.basename(log) == PREVIOUS_LOG and history and _holds_exactly(log, history):
            history = []  # written by a killed restart's settle: it already holds them
        history.append(log)
    if history:
        _append_atomically(os.path.join(workdir, PREVIOUS_LOG), history)
    report.logs = len(history)


def _holds_exactly(path: str, parts: list[str]) -> bool:
    """Whether the file ``path`` is the files ``parts`` joined, byte for byte."""
    try:
        if os.path.getsize(path) != sum(os.path.getsize(part) for part in parts):
            return False
        with open(path, "rb") as whole:
            for part in parts:
                with open(part, "rb") as piece:
                    while chunk := piece.read(1 << 20):
                        if whole.read(len(chunk)) != chunk:
                            return False
    except OSError:
        return False
    return True


def _append_atomically(target: str, sources: list[str]) -> None:
    """``target`` (if there) followed by ``sources``, written to a temporary file then renamed to ``target``."""
    from plams_cli.core._files import write_atomic

    parts = []
    for source in ([target] if os.path.isfile(target) else []) + sources:
        with open(source, "rb") as handle:
            parts.append(handle.read())
    write_atomic(target, b"".join(parts))


def _merge(source: str, target: str, reproduced: set[str], report: SettleReport) -> None:
    if os.path.normpath(source) in reproduced:
        return  # the new run holds this job's files
    if not os.path.lexists(target):
        os.rename(source, target)
        report.moved_other.append(target)
        return
    if _is_job_folder(source):
        return  # an earlier attempt of a job the new run redid: it did not finish
    if _is_dir(source) and _is_dir(target):
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            _merge(entry.path, os.path.join(target, entry.name), reproduced, report)
        return
    if (os.path.isfile(source) and os.path.isfile(target) and not os.path.islink(source)
            and filecmp.cmp(source, target, shallow=False)):
        return  # the same file is in the new run (a kept copy of an unchanged script)
    # X -> X.previous; an X.previous[.NNN] of an earlier restart -> the next free X.previous.NNN
    # (entries come sorted by name, so numbers grow with age)
    folder, name = os.path.split(target)
    family = _PREVIOUS_RE.fullmatch(name)
    moved_to = _free_name(folder, family.group(1) if family else name + ".previous")
    os.rename(source, moved_to)
    report.moved_other.append(moved_to)


def _free_name(folder: str, base: str) -> str:
    for number in range(1, 100_000):
        candidate = os.path.join(folder, base if number == 1 else f"{base}.{number:03d}")
        if not os.path.lexists(candidate):
            return candidate
    raise OSError(f"no free name for {base} in {folder}")


def remove_tree(path: str) -> None:
    """Delete ``path`` without ever leaving a half-deleted folder under its name.

    The folder is first renamed to a hidden trash name beside it (atomic),
    ``.plams-trash.<PID>.<name>``, then deleted. Trash a killed process left is deleted
    by :func:`clear_trash`.
    """
    parent, name = os.path.split(path)
    trash = _free_name(parent, f"{_TRASH_PREFIX}{os.getpid()}.{name}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clear_trash(path: str) -> list[str]:
    """Delete the trash folders in ``path`` that a killed :func:`remove_tree` left; return them.

    Only trash whose process has ended is deleted (another run may be deleting its own);
    trash named without a process id (older versions) has no owner left to wait for.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if not entry.name.startswith(_TRASH_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            match = _TRASH_RE.fullmatch(entry.name)
            if match and _alive(int(match.group(1))):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
