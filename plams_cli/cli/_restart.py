"""The restart model of ``plams -r``: run again in place, reusing every finished job.

``plams -r -f NAME script.plms`` works in three steps, each safe against a kill:

1. :func:`set_aside` moves ``NAME`` to ``NAME.res`` with one ``os.rename``. If
   ``NAME.res`` is already there (an earlier restart was killed), ``NAME`` moves *into*
   it as ``NAME.res/_interrupted_restart`` instead, so the finished jobs of both are loaded.
2. The script runs in a fresh ``NAME``; the jobs saved in ``NAME.res`` are loaded first,
   so identical jobs are copied (hard-linked) rather than rerun.
3. :func:`settle` moves each loaded job that the new run did not reproduce into ``NAME``
   (one ``os.rename`` per job folder), renames ``NAME.res`` to a hidden trash name and
   deletes it. Anything that cannot be moved keeps ``NAME.res`` in place.

At every moment each finished job is complete in ``NAME`` or in ``NAME.res``; a
half-deleted folder is never called ``NAME.res``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plams_cli.core.jobs import Job
    from plams_cli.core.jobmanager import JobManager

__all__ = ["RES_SUFFIX", "find_latest", "restart_target", "set_aside", "settle", "SettleReport"]

RES_SUFFIX = ".res"
_INTERRUPTED = "_interrupted_restart"
_TRASH_PREFIX = ".plams-trash."


def _is_workdir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "logfile"))


def find_latest(path: str) -> str | None:
    """The name of the most recently used working folder in ``path`` (one with a ``logfile``).

    A ``NAME.res`` left by a killed restart stands for ``NAME``. ``None`` when there is none.
    """
    best: tuple[float, str] | None = None
    try:
        entries = list(os.scandir(path))
    except OSError:
        return None
    for entry in entries:
        if entry.name.startswith(_TRASH_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        logfile = os.path.join(entry.path, "logfile")
        try:
            mtime = os.stat(logfile).st_mtime
        except OSError:
            continue
        name = entry.name[: -len(RES_SUFFIX)] if entry.name.endswith(RES_SUFFIX) else entry.name
        if best is None or mtime > best[0]:
            best = (mtime, name)
    return best[1] if best else None


def restart_target(path: str, folder: str) -> tuple[str, str] | None:
    """``(NAME, NAME.res)`` as absolute paths when there is something to restart, else ``None``."""
    workdir = os.path.abspath(os.path.join(path, folder))
    res = workdir + RES_SUFFIX
    if os.path.isdir(workdir) or os.path.isdir(res):
        return workdir, res
    return None


def _free_name(folder: str, base: str) -> str:
    for number in range(1, 100_000):
        candidate = os.path.join(folder, base if number == 1 else f"{base}.{number:03d}")
        if not os.path.lexists(candidate):
            return candidate
    raise OSError(f"no free name for {base} in {folder}")


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
    """What :func:`settle` did: folders moved into the new run, what kept ``NAME.res``."""

    moved: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: bool = False


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
    """Where the job folder ``path`` (inside ``res``) belongs in the new working folder."""
    parts = os.path.relpath(path, res).split(os.sep)
    while len(parts) > 1 and re.fullmatch(re.escape(_INTERRUPTED) + r"(\.\d+)?", parts[0]):
        parts = parts[1:]
    return os.path.join(workdir, *parts)


def settle(manager: JobManager, res: str, loaded: Iterable[Job], unreadable: Iterable[str]) -> SettleReport:
    """Step 3: move the loaded jobs the new run did not reproduce into its folder, then delete ``res``.

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
    remove_tree(res)
    report.removed = True
    return report


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
