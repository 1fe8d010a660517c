"""The restart model: run again in place, reusing every finished job.

A restart of ``NAME`` (``plams -r -f NAME``, or :class:`~plams_cli.core.session.Session`
with ``restart=True``) works in three steps, each safe against a kill:

1. :func:`set_aside` moves ``NAME`` to ``NAME.res`` with one ``os.rename``. If
   ``NAME.res`` is already there (an earlier restart was killed), ``NAME`` moves *into*
   it as ``NAME.res/_interrupted_restart`` instead, so the finished jobs of both are loaded.
2. The jobs run in a fresh ``NAME``; the jobs saved in ``NAME.res`` are loaded first
   (from its index, :mod:`plams_cli.core.jobindex`; unpickled only when needed), so
   identical jobs are not rerun: one the new run makes in the same place (same name,
   same folder) gets its old folder with one ``os.rename`` (:func:`move_job_folder`),
   any other one hard links of its files.
3. :func:`settle` moves each loaded job that the new run did not reproduce into ``NAME``
   (one ``os.rename`` per job folder), then everything else ``NAME.res`` holds (files the
   script or the user put there; the old ``logfile`` is appended to
   ``NAME/logfile.previous``), renames ``NAME.res`` to a hidden trash name and deletes
   it. A loaded job the new run *replaced* (it made a job of the same name, as the
   script now defines it) is obsolete and dropped with ``NAME.res``. Anything that cannot
   be moved keeps ``NAME.res`` in place.

At every moment each finished job, and each file, is complete in ``NAME`` or in
``NAME.res``; a half-deleted folder is never called ``NAME.res``.

Only plams working folders are restarted (:func:`restart_target`); which folders those
are, the marker, its lock and the trash are in :mod:`plams_cli.core.workdir`.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from plams_cli._fs import atomic_concatenate, atomic_write
from plams_cli.core._files import normal_path
from plams_cli.core.jobindex import INDEX, SavedJob, carry
from plams_cli.core.status import JobStatus
from plams_cli.core.workdir import (
    LOGFILE,
    MARKER,
    RES_SUFFIX,
    free_name,
    is_dir,
    is_job_folder,
    is_leftover,
    is_workdir,
    remove_tree,
)
from plams_cli.errors import NotRestartableError

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job

__all__ = ["PREVIOUS_LOG", "SettleReport", "move_job_folder", "restart_target", "set_aside", "settle"]

#: the logs of earlier runs of a restarted folder, oldest first
PREVIOUS_LOG = "logfile.previous"
_INTERRUPTED = "_interrupted_restart"
_INTERRUPTED_RE = re.compile(re.escape(_INTERRUPTED) + r"(\.\d+)?")
_PREVIOUS_RE = re.compile(r"(.*\.previous)(\.\d{3,})?")
#: the size of ``NAME.res/logfile.previous`` before a settle appends the last log to it (see _move_history)
_APPENDING = ".logfile.previous.size"


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
        if not is_dir(res):
            raise NotRestartableError(f"cannot restart {workdir}: {res} is in the way (it is not a folder)")
        if not is_workdir(res):
            raise NotRestartableError(
                f"cannot restart {workdir}: {res} is in the way (it is not a plams working folder: "
                f"it has no {LOGFILE}); move it away"
            )
        if not is_leftover(res):
            raise NotRestartableError(
                f"cannot restart {workdir}: {res} is in the way (it is a working folder of its own, "
                "not what a restart left); move it away"
            )
        if os.path.lexists(workdir) and not is_dir(workdir):
            raise NotRestartableError(f"cannot restart {workdir}: it is not a folder")
        return workdir, res
    if not os.path.lexists(workdir):
        raise NotRestartableError(f"nothing to restart: {workdir} does not exist")
    if not is_dir(workdir):
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
    target = free_name(res, _INTERRUPTED)
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
    """``job`` and every job in it, depth first (a MultiJob's children may be a list or a dict)."""
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
    return all(item.registered_hash in done_hashes for item in leaves)


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
    if not job.path:
        return False
    new = new_jobs.get(normal_path(_target(workdir, res, job.path)))
    if new is None:
        return False
    if new.status in (JobStatus.SUCCESSFUL, JobStatus.COPIED, JobStatus.FAILED):
        return True
    old_hash, new_hash = job.registered_hash, new.registered_hash
    if old_hash and new_hash and old_hash != new_hash:
        return True
    children = _children(job)
    return bool(children) and all(_covered(child, done_hashes) or _replaced(child, new_jobs, workdir, res, done_hashes)
                                  for child in children)


def _target(workdir: str, res: str, path: str) -> str:
    """Where ``path`` (inside ``res``) belongs in the new working folder."""
    if path.startswith(res + os.sep) and not path.startswith(_INTERRUPTED, len(res) + 1):
        return workdir + path[len(res):]  # the common case, without relpath's cost
    parts = os.path.relpath(path, res).split(os.sep)
    while len(parts) > 1 and _INTERRUPTED_RE.fullmatch(parts[0]):
        parts = parts[1:]
    return os.path.join(workdir, *parts)


def move_job_folder(source: str, target: str, workdir: str, res: str, *, normal: bool = False) -> bool:
    """Move the job folder ``source`` (inside ``res``) to ``target``, its place in ``workdir``, with one rename.

    Step 2 for a job the new run reproduces where it was: ``target`` is the (empty)
    folder the new job was given. Hidden files in the moved folder (temporary files of a
    killed write, a batch job's records) are the caller's to delete, as a copy leaves them
    out: the job does it as it lists its files (``results.collect(drop_hidden=True)``).
    Returns whether it moved; ``False`` (nothing changed) when ``target`` is not where
    ``source`` belongs or the rename fails (``target`` is not empty, another file system).
    With ``normal``, the four paths are normal already (as ``os.path.normpath`` makes them).
    """
    if not normal:
        source, target, workdir, res = normal_path(source), normal_path(target), normal_path(workdir), normal_path(res)
    if not source.startswith(res + os.sep):
        return False
    if _target(workdir, res, source) != target:
        return False
    try:
        os.rename(source, target)
    except OSError:
        return False
    return True


def settle(manager: JobManager, res: str, loaded: Iterable[Job | SavedJob], unreadable: Iterable[str]) -> SettleReport:
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
    # A SavedJob answers all settle asks (name, path, hash, status, no children) as a Job does.
    report = SettleReport()
    for path in unreadable:
        report.kept.append(f"{path} could not be read")
    inside = normal_path(res) + os.sep
    # What the run reused moved out of res already (see move_job_folder): only the rest is looked at.
    left = cast("list[Job]", [job for job in loaded if job.path and job.path.startswith(inside)])
    done_hashes: set[str] = set()
    new_jobs: dict[str, Job] = {}
    if left:
        for job in manager.jobs:
            if job.status in (JobStatus.SUCCESSFUL, JobStatus.COPIED) and job.registered_hash:
                if job.path and os.path.isfile(os.path.join(job.path, job.name + ".dill")):
                    done_hashes.add(job.registered_hash)
        new_jobs = {normal_path(job.path): job for job in manager.jobs if job.path}
    carried: list[SavedJob] = []
    # Outermost first, so a MultiJob moves with its children.
    for job in sorted(left, key=lambda j: (j.path or "").count(os.sep)):
        if not job.path or not job.path.startswith(inside) or not os.path.isdir(job.path):
            continue  # moved already: with its parent
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
        if isinstance(job, SavedJob):
            carried.append(job)
    carry(manager.workdir, carried)  # the next restart finds them in the index
    if report.kept:
        return report
    # What is left of the loaded jobs in res was reproduced (its files are in NAME) or replaced.
    reproduced = {normal_path(job.path) for job in left if job.path and normal_path(job.path).startswith(inside)}
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
    * The old :data:`MARKER` and index (:data:`~plams_cli.core.jobindex.INDEX`) are dropped
      (``workdir`` has its own).
    * Last, the logfiles (``logfile.previous``, then ``logfile``, of ``res`` and then of
      each nested killed restart) are appended, oldest first, to
      ``workdir/logfile.previous``, so a chain of restarts keeps the whole history. They
      stay in ``res`` (which so remains a working folder) until it is deleted. The new
      ``logfile.previous`` is written whole, then renamed into place; a nested restart's
      ``logfile.previous`` that already holds the logs before it (a restart killed after
      this step) stands for them, so a history is never appended twice. In the common
      case (``res`` holds a history and one log, no nested restart) the log is appended to
      the history in place, which then moves into ``workdir`` (:func:`_move_history`): a
      restart costs its last log, not the whole history again.

    Raises
    ------
    OSError
        Something could not be moved; the rest stays in ``res``.
    """
    roots = _roots(res)
    for root in roots:
        _undo_cut_append(root)
    logs = [os.path.join(root, name) for root in roots for name in (PREVIOUS_LOG, LOGFILE)]
    logs = [log for log in logs if os.path.isfile(log) and not os.path.islink(log)]
    for root in reversed(roots):  # newest first: the newest keeps the plain name
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name in (MARKER, INDEX) or entry.path in roots or entry.path in logs:
                continue
            _merge(entry.path, os.path.join(workdir, entry.name), reproduced, report)
    history: list[str] = []
    for log in logs:
        if os.path.basename(log) == PREVIOUS_LOG and history and _holds_exactly(log, history):
            history = []  # written by a killed restart's settle: it already holds them
        history.append(log)
    in_place = [os.path.join(res, PREVIOUS_LOG), os.path.join(res, LOGFILE)]
    if history and not (history == in_place and _move_history(res, workdir)):
        _append_atomically(os.path.join(workdir, PREVIOUS_LOG), history)
    report.logs = len(history)


def _move_history(res: str, workdir: str) -> bool:
    """Append ``res/logfile`` to ``res/logfile.previous`` in place, then move that into ``workdir``; False: not done.

    Safe against a kill at any point: the history's size goes into :data:`_APPENDING`
    first, and the log is deleted only once it is in the history (fsynced), so an append
    cut short is undone by the next settle (:func:`_undo_cut_append`) and done again.
    Only for a ``res`` that stays a working folder without its logfile (it has the
    :data:`MARKER`) and a ``workdir`` without a ``logfile.previous`` of its own.
    """
    previous, log = os.path.join(res, PREVIOUS_LOG), os.path.join(res, LOGFILE)
    target = os.path.join(workdir, PREVIOUS_LOG)
    if os.path.lexists(target) or not os.path.isfile(os.path.join(res, MARKER)):
        return False
    note = os.path.join(res, _APPENDING)
    atomic_write(note, str(os.path.getsize(previous)).encode("ascii"))
    with open(previous, "ab") as out, open(log, "rb") as source:
        shutil.copyfileobj(source, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.unlink(log)
    os.unlink(note)
    os.rename(previous, target)
    return True


def _undo_cut_append(root: str) -> None:
    """Cut ``root/logfile.previous`` back to its size before an append a kill cut short (see :func:`_move_history`)."""
    note = os.path.join(root, _APPENDING)
    try:
        with open(note, "rb") as handle:
            size = int(handle.read())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        size = -1  # not ours to read: the history is left as it is
    previous = os.path.join(root, PREVIOUS_LOG)
    # With the log still there the append may be cut short; without, it was whole.
    if size >= 0 and os.path.isfile(os.path.join(root, LOGFILE)) and os.path.getsize(previous) > size:
        os.truncate(previous, size)
    os.unlink(note)


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
    atomic_concatenate(target, ([target] if os.path.isfile(target) else []) + sources)


def _merge(source: str, target: str, reproduced: set[str], report: SettleReport) -> None:
    if normal_path(source) in reproduced:
        return  # the new run holds this job's files
    if not os.path.lexists(target):
        os.rename(source, target)
        report.moved_other.append(target)
        return
    if is_job_folder(source):
        return  # an earlier attempt of a job the new run redid: it did not finish
    if is_dir(source) and is_dir(target):
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
    moved_to = free_name(folder, family.group(1) if family else name + ".previous")
    os.rename(source, moved_to)
    report.moved_other.append(moved_to)
