"""Checking and repairing a workspace: :meth:`Workspace.check` and :meth:`Workspace.repair`.

:class:`Tidying` is a part of :class:`~plams_cli.workspace.Workspace` (a mixin). It
deletes the leftovers of killed writers (temporary files, ``.init-`` folders, pending
moves), recognised by the writer tag in their names (:func:`._io.writer_of`).
Nothing outside :mod:`plams_cli.workspace` imports this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from plams_cli._fs import atomic_write, pid_alive
from plams_cli.errors import JobsCorruptedError

from ._cache import Pair
from ._folders import INIT_PREFIX, JOB_ID_LINE_RE, read_pair
from ._io import FILE_MODE, calc_id, encode, writer_of
from .statepoint import MOVE_FILENAME, STATEPOINT_FILENAME

if TYPE_CHECKING:
    from ._cache import StatepointCache

__all__ = ["Tidying", "LEFTOVER_AGE_S"]

_SEP = os.sep
#: Temporary files and folders older than this are leftovers of killed writers ...
LEFTOVER_AGE_S = 60.0
#: ... and so are those older than this whose writer's pid no longer runs on this machine
#: (not at once: on a shared file system the writer may be alive on another host).
_DEAD_WRITER_AGE_S = 5.0


class Tidying:
    """Check and repair (a mixin of :class:`Workspace`)."""

    _root: str
    _workspace: str
    _cache: StatepointCache
    _memory: dict[str, Pair]

    if TYPE_CHECKING:

        def _read_statepoint(self, job_id: str) -> Pair: ...

        def _job_ids(self) -> list[str]: ...

    def check(self) -> list[str]:
        """Read every state point file, compare it with its folder's id and tidy up.

        A state point move that was interrupted is finished. Leftovers of writers that
        were killed are deleted: ``workspace/.init-*`` folders of job creations, pending
        state points of moves (``.signac_statepoint.json.moving.*``) that are not the
        folder's own, and the ``*.tmp`` files of atomic writes (documents, state points,
        caches). A leftover is one older than a minute, or older than five seconds
        whose writer's process id no longer runs on this machine; younger ones may
        belong to a writer at work.

        Returns
        -------
        list of str
            The paths deleted, sorted.

        Raises
        ------
        JobsCorruptedError
            Naming every job whose file is missing, unreadable or does not match; the
            leftovers are deleted first, and the error's ``removed`` attribute lists them.
        """
        import time

        now = time.time()
        removed: list[str] = []
        try:
            names = os.listdir(self._workspace)
        except FileNotFoundError:
            names = []
        for name in names:
            path = self._workspace + _SEP + name
            if name.startswith(INIT_PREFIX) and _is_leftover(path, name, now):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        bad = []
        for job_id in sorted(JOB_ID_LINE_RE.findall("\n".join(names))):
            try:
                self._read_statepoint(job_id)
            except JobsCorruptedError:
                bad.append(job_id)
                continue
            except FileNotFoundError:
                continue  # removed meanwhile
            removed.extend(self._tidy_job_folder(job_id, now))
        config_dir = self._root + _SEP + ".signac"
        try:
            config_names = os.listdir(config_dir)
        except OSError:
            config_names = []
        for name in config_names:
            path = config_dir + _SEP + name
            if (
                name.endswith(".tmp")
                and writer_of(name) is not None
                and _is_leftover(path, name, now)
                and _unlinked(path)
            ):
                removed.append(path)
        removed.sort()
        if bad:
            error = JobsCorruptedError(bad)
            error.removed = removed  # type: ignore[attr-defined]
            raise error
        return removed

    def repair(self, job_ids: Iterable[str] | None = None) -> None:
        """Rewrite lost or corrupted state point files from the caches, as signac's ``repair``.

        A job whose file is missing or unreadable gets the state point the caches (ours
        and signac's ``statepoint_cache.json.gz``) remember for its id; a folder whose
        file holds a valid state point of another id is renamed to that id. Interrupted
        moves are finished first, as :meth:`check` does.

        Parameters
        ----------
        job_ids
            The jobs to repair; every job by default.

        Raises
        ------
        JobsCorruptedError
            Naming the jobs that could not be repaired (no state point remembered, or the
            right id is taken by another folder).
        """
        remembered = self._cache.remembered()
        remembered.update((job_id, sp) for job_id, (_, sp) in self._memory.items())
        failed = []
        for job_id in self._job_ids() if job_ids is None else [str(i) for i in job_ids]:
            try:
                self._read_statepoint(job_id)
                continue
            except JobsCorruptedError:
                pass
            except FileNotFoundError:
                failed.append(job_id)
                continue
            folder = self._workspace + _SEP + job_id
            sp = remembered.get(job_id)
            if sp is None or calc_id(sp) != job_id:
                try:
                    _, sp = read_pair(folder + _SEP + STATEPOINT_FILENAME)
                except OSError:
                    sp = None
                if type(sp) is dict and calc_id(sp) != job_id:
                    try:
                        os.rename(folder, self._workspace + _SEP + calc_id(sp))
                    except OSError:
                        failed.append(job_id)
                    continue
                failed.append(job_id)
                continue
            try:
                atomic_write(folder + _SEP + STATEPOINT_FILENAME, encode(sp).encode(), mode=FILE_MODE)
            except OSError:
                failed.append(job_id)
                continue
            self._memory.pop(job_id, None)
        if failed:
            raise JobsCorruptedError(sorted(failed))

    def _tidy_job_folder(self, job_id: str, now: float) -> list[str]:
        """Delete leftover pending moves and temporary files of a job with a valid state point."""
        folder = self._workspace + _SEP + job_id
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        removed = []
        for name in names:
            path = folder + _SEP + name
            if name.startswith(MOVE_FILENAME):
                try:
                    _, sp = read_pair(path)
                except OSError:
                    continue
                # One hashing to this folder is redundant now that the state point is
                # right (its mover falls back to checking the file); any other is a
                # leftover once old enough.
                own = type(sp) is dict and calc_id(sp) == job_id
                if (own or _is_leftover(path, name, now)) and _unlinked(path):
                    removed.append(path)
            elif name.endswith(".tmp") and writer_of(name) is not None:
                if _is_leftover(path, name, now) and _unlinked(path):
                    removed.append(path)
        return removed


def _is_leftover(path: str, name: str, now: float) -> bool:
    """Whether a temporary file or folder is old enough, or its writer dead, to delete it.

    A writer is known dead only when it ran on this host (its tag names the host) and
    its pid no longer runs; one on another host of a shared file system may be at work.
    """
    try:
        age = now - os.lstat(path).st_mtime
    except OSError:
        return False
    if age >= LEFTOVER_AGE_S:
        return True
    writer = writer_of(name)
    return (
        writer is not None
        and writer.here
        and age >= _DEAD_WRITER_AGE_S
        and not pid_alive(writer.pid)
    )


def _unlinked(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
