"""Working folders of ``plams`` runs: what is one, the marker and its lock, the latest, the trash.

A run writes a marker file :data:`MARKER` into each working folder it makes
(:func:`mark_workdir`) and holds an exclusive ``flock`` on it until it ends; a restart takes
the locks of ``NAME`` and ``NAME.res`` first (:func:`lock_for_restart`), so a folder a live
run uses is never moved. The marker records the folder's name, so a ``NAME.res`` left by a
killed restart is told from a working folder the user called ``calc.res``
(:func:`is_leftover`). :func:`find_latest` picks the most recent working folder of a run.
A folder is deleted by renaming it to a hidden trash name first (:func:`remove_tree`), so
a half-deleted folder never keeps its name; :func:`clear_trash` deletes what a killed
delete left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable

from plams_cli import __version__
from plams_cli._fs import atomic_write, pid_alive
from plams_cli.errors import FolderInUseError

__all__ = ["MARKER", "LOGFILE", "RES_SUFFIX", "clear_trash", "find_latest", "free_name", "is_dir", "is_job_folder",
           "is_leftover", "is_plams_run", "is_workdir", "lock_for_restart", "mark_workdir", "read_marker",
           "remove_tree"]

RES_SUFFIX = ".res"
#: written by ``plams`` into each working folder it makes (JSON: who made it, when)
MARKER = ".plams-run"
LOGFILE = "logfile"
_TRASH_PREFIX = ".plams-trash."
#: ``.plams-trash.<PID>.<name>``: the process that deletes it, and what it was
_TRASH_RE = re.compile(re.escape(_TRASH_PREFIX) + r"(\d+)\.(.+)")
#: files a plams job folder ``D`` holds, named ``D.<suffix>``
_JOB_FILE_SUFFIXES = (".dill", ".job.json", ".run", ".in", ".out", ".err")
#: seconds a new run retries the lock of its fresh marker (another ``-r`` may hold it for a moment)
_LOCK_RETRY_S = 2.0


def is_dir(path: str) -> bool:
    """Whether ``path`` is a folder, not a symbolic link to one."""
    return os.path.isdir(path) and not os.path.islink(path)


def is_workdir(path: str) -> bool:
    """Whether ``path`` is a plams working folder: it has a ``logfile`` or the :data:`MARKER`."""
    return is_dir(path) and (os.path.isfile(os.path.join(path, LOGFILE))
                             or os.path.isfile(os.path.join(path, MARKER)))


def is_job_folder(path: str) -> bool:
    """Whether ``path`` is a job's folder ``D``: it holds files named ``D.dill``, ``D.run``, …."""
    name = os.path.basename(path)
    return is_dir(path) and any(os.path.isfile(os.path.join(path, name + suffix))
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
        return any(is_job_folder(entry.path) for entry in entries)
    return False


def read_marker(folder: str) -> dict[str, object]:
    """The JSON of ``folder``'s :data:`MARKER`; empty when it is missing or unreadable."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mark_workdir(workdir: str, scripts: Iterable[str]) -> int | None:
    """Write the :data:`MARKER` into a working folder a run has just made, and lock it.

    The marker is written whole (a reader never sees half of it), then opened and locked.
    Returns the descriptor that holds the lock: keep it open for the whole run (the lock
    goes when it is closed or the process ends, even by SIGKILL). ``None`` when the lock
    could not be taken (the run goes on, unprotected).

    Raises
    ------
    FileExistsError
        The folder has a marker already (it is not a fresh working folder).
    """
    data = {"made_by": "plams-cli", "version": __version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pid": os.getpid(), "folder": os.path.basename(workdir), "scripts": list(scripts)}
    path = os.path.join(workdir, MARKER)
    if os.path.lexists(path):
        raise FileExistsError(f"{path} exists: {workdir} is not a fresh working folder")
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode(), fsync=False)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    deadline = time.monotonic() + _LOCK_RETRY_S
    while not _try_lock(fd):
        # A -r checking this folder holds the lock for a moment, then lets it go.
        if time.monotonic() > deadline:
            os.close(fd)
            return None
        time.sleep(0.02)
    return fd


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
    """Take the locks of ``NAME`` and ``NAME.res`` (their markers) before a restart touches them.

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
            if not is_dir(folder) or not os.path.isfile(marker):
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
    pid = read_marker(folder).get("pid")
    return pid if isinstance(pid, int) else None


def is_leftover(res: str) -> bool:
    """Whether ``X.res`` is what a restart of ``X`` left, not a working folder the user called ``X.res``.

    Its marker names the folder it was made as: ``X`` for a leftover, ``X.res`` for a run
    made under that name. Without that record (no marker, or one of an older version) the
    name decides: it is a leftover.
    """
    made_as = read_marker(res).get("folder")
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
        if name.endswith(RES_SUFFIX) and is_leftover(entry.path):
            name = name[: -len(RES_SUFFIX)]
        if best is None or mtime > best[0]:
            best = (mtime, name)
    return best[1] if best else None


def free_name(folder: str, base: str) -> str:
    """``folder/base``, or the first free ``folder/base.002``, ``base.003``, …."""
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
    trash = free_name(parent, f"{_TRASH_PREFIX}{os.getpid()}.{name}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


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
            if match and pid_alive(int(match.group(1))):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
