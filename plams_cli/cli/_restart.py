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
   it. Anything that cannot be moved keeps ``NAME.res`` in place.

At every moment each finished job, and each file, is complete in ``NAME`` or in
``NAME.res``; a half-deleted folder is never called ``NAME.res``.

Only plams working folders are restarted (:func:`restart_target`): a folder with a
``logfile``. The ``plams`` command also writes a marker file :data:`MARKER` into each
working folder it makes; ``-r`` without ``-f`` picks the most recent folder with the
marker (or, for folders made before the marker existed, a ``logfile`` and a job folder).
"""

from __future__ import annotations

import contextlib
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
    from plams_cli.core.jobs import Job
    from plams_cli.core.jobmanager import JobManager

__all__ = ["MARKER", "RES_SUFFIX", "NotRestartableError", "find_latest", "is_plams_run", "is_workdir",
           "mark_workdir", "restart_target", "set_aside", "settle", "SettleReport"]

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
#: files a plams job folder ``D`` holds, named ``D.<suffix>``
_JOB_FILE_SUFFIXES = (".dill", ".job.json", ".run", ".in", ".out", ".err")


class NotRestartableError(ValueError):
    """``-r`` was given a folder that cannot be restarted; the message says why."""


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


def mark_workdir(workdir: str, scripts: Iterable[str]) -> None:
    """Write the :data:`MARKER` into a working folder ``plams`` has just made."""
    from plams_cli.cli.main import _version

    data = {"made_by": "plams-cli", "version": _version(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pid": os.getpid(), "scripts": list(scripts)}
    with open(os.path.join(workdir, MARKER), "x", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def find_latest(path: str) -> str | None:
    """The name of the most recently used working folder of a ``plams`` run in ``path``.

    Only folders :func:`is_plams_run` accepts count; the most recent is the one whose
    ``logfile`` changed last. A ``NAME.res`` left by a killed restart stands for ``NAME``.
    ``None`` when there is none.
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
        name = entry.name[: -len(RES_SUFFIX)] if entry.name.endswith(RES_SUFFIX) else entry.name
        if best is None or mtime > best[0]:
            best = (mtime, name)
    return best[1] if best else None


def restart_target(path: str, folder: str) -> tuple[str, str]:
    """``(NAME, NAME.res)`` as absolute paths, when ``NAME`` in ``path`` can be restarted.

    ``NAME`` must be a plams working folder (:func:`is_workdir`), or ``NAME.res`` must be
    one (a killed restart; ``NAME``, if there, is then a folder too).

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


def _target(workdir: str, res: str, path: str) -> str:
    """Where ``path`` (inside ``res``) belongs in the new working folder."""
    parts = os.path.relpath(path, res).split(os.sep)
    while len(parts) > 1 and _INTERRUPTED_RE.fullmatch(parts[0]):
        parts = parts[1:]
    return os.path.join(workdir, *parts)


def settle(manager: JobManager, res: str, loaded: Iterable[Job], unreadable: Iterable[str]) -> SettleReport:
    """Step 3: move what the new run did not reproduce into its folder, then delete ``res``.

    First each loaded job the new run did not reproduce moves into ``NAME``; then every
    other entry of ``res`` (see :func:`_keep_other_entries`). ``res`` is deleted only when
    nothing is left in it but the folders of jobs the new run reproduced.

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
    for path in unreadable:
        report.kept.append(f"{path} could not be read")
    # Outermost first, so a MultiJob moves with its children.
    for job in sorted(loaded, key=lambda j: (j.path or "").count(os.sep)):
        if not job.path or not os.path.isdir(job.path):
            continue  # moved already with its parent
        if _covered(job, done_hashes):
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
    # What is left of the loaded jobs in res was reproduced: its files are in NAME.
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
      stay in ``res`` (which so remains a working folder) until it is deleted.

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
    if logs:
        with open(os.path.join(workdir, PREVIOUS_LOG), "ab") as target:
            for log in logs:
                with open(log, "rb") as source:
                    shutil.copyfileobj(source, target)
            target.flush()
            os.fsync(target.fileno())
    report.logs = len(logs)


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

    The folder is first renamed to a hidden trash name beside it (atomic), then deleted.
    """
    parent, name = os.path.split(path)
    trash = _free_name(parent, _TRASH_PREFIX + name)
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clear_trash(path: str, folder: str) -> None:
    """Delete trash left by a killed :func:`remove_tree` of ``folder``'s ``.res``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if entry.name.startswith(_TRASH_PREFIX + folder + RES_SUFFIX) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
