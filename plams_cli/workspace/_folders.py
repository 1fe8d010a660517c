"""Creating and moving job folders, crash-safe and safe against concurrent processes.

:class:`JobFolders` is a part of :class:`~plams_cli.workspace.Workspace` (a mixin): a job
folder appears whole (made under a temporary ``.init-`` name, then renamed), and a state
point change moves it through a pending file (see :meth:`JobFolders._move_job_folder`).
Nothing outside :mod:`plams_cli.workspace` imports this module.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write, unique_tag
from plams_cli.errors import WorkspaceError

from ._cache import Pair, Signature, signature
from ._io import FILE_MODE, calc_id
from .errors import DestinationExistsError, JobRemovedError
from .statepoint import MOVE_FILENAME, STATEPOINT_FILENAME

if TYPE_CHECKING:
    from ._cache import StatepointCache

__all__ = ["JobFolders", "read_pair", "INIT_PREFIX", "JOB_ID_LINE_RE"]

_SEP = os.sep
#: Name prefix of a job folder being created (``.init-<id>-<tag>``).
INIT_PREFIX = ".init-"
#: Job ids, one a line, in a joined folder listing.
JOB_ID_LINE_RE = re.compile(r"^[0-9a-f]{32}$", re.MULTILINE)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_STATEPOINT_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_MOVE_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC


def read_pair(path: str) -> tuple[Signature, Any]:
    """Read a JSON file with the signature of the file read; ``None`` if it is not JSON."""
    with open(path, "rb") as file:
        sig = signature(os.fstat(file.fileno()))
        raw = file.read()
    try:
        return sig, json.loads(raw)
    except ValueError:
        return sig, None


def _write_exclusive(path: str, data: bytes) -> None:
    """Create the file ``path``, which must not exist, holding ``data``, fsynced.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    OSError
        If the file exists or cannot be written; a file made is removed again.
    """
    fd = os.open(path, _MOVE_OPEN_FLAGS, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


class JobFolders:
    """The job-folder operations of a workspace (a mixin of :class:`Workspace`)."""

    _workspace: str
    _cache: StatepointCache
    _memory: dict[str, Pair]

    if TYPE_CHECKING:

        def _note_created(self) -> None: ...

    def _finish_move(self, job_id: str) -> Pair | None:
        """Complete a state point move that was interrupted after renaming the folder.

        A move writes the new state point to a pending file (``MOVE_FILENAME`` plus a name
        no other move uses) in the job folder, renames the folder to the new id, then
        replaces the state point file by it. If the folder ``job_id`` holds a pending
        file whose state point hashes to ``job_id``, the last step is done here; pending
        files of other ids (moves that lost a race, see :meth:`_move_job_folder`) are
        ignored.

        Returns
        -------
        tuple or None
            The signature and state point now in the folder, or None if there was
            nothing to finish.
        """
        folder = self._workspace + _SEP + job_id
        try:
            names = os.listdir(folder)
        except OSError:
            return None
        sp_file = folder + _SEP + STATEPOINT_FILENAME
        for name in sorted(names):
            if not name.startswith(MOVE_FILENAME):
                continue
            pending = folder + _SEP + name
            try:
                _, sp = read_pair(pending)
            except OSError:
                continue  # finished or discarded meanwhile
            if type(sp) is not dict or calc_id(sp) != job_id:
                continue
            try:
                os.replace(pending, sp_file)
            except FileNotFoundError:
                pass  # another process finished the same move just now
            except OSError:
                return None  # e.g. a read-only workspace: report the job as it is
            break
        else:
            return None
        try:
            sig, sp = read_pair(sp_file)
        except OSError:
            return None
        return (sig, sp) if type(sp) is dict and calc_id(sp) == job_id else None

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def _create_job_folder(self, job_id: str, blob: str) -> None:
        """Create ``workspace/<id>`` holding the state point file, atomically."""
        target = self._workspace + _SEP + job_id
        tmp = f"{self._workspace}{_SEP}{INIT_PREFIX}{job_id}-{unique_tag()}"
        try:
            os.mkdir(tmp)
        except FileNotFoundError:
            os.makedirs(self._workspace, exist_ok=True)
            os.mkdir(tmp)
        data = blob.encode()
        try:
            fd = os.open(tmp + _SEP + STATEPOINT_FILENAME, _STATEPOINT_OPEN_FLAGS, 0o666)
            try:
                os.write(fd, data)
                sig = signature(os.fstat(fd))
            finally:
                os.close(fd)
            os.rename(tmp, target)
        except OSError as exc:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # The folder exists (another process, or an empty/partial folder): make sure
            # it holds a state point file, leaving a valid one alone.
            sp_file = target + _SEP + STATEPOINT_FILENAME
            if not os.path.exists(sp_file):
                atomic_write(sp_file, data, mode=FILE_MODE)
            return
        self._cache.append(job_id, blob, sig)
        self._note_created()

    def _lost_move(self, old_id: str, new_id: str) -> WorkspaceError:
        """The error for a move whose folder another process moved or removed first."""
        if os.path.exists(self._workspace + _SEP + new_id + _SEP + STATEPOINT_FILENAME):
            return DestinationExistsError(new_id)
        return JobRemovedError(
            old_id,
            f"job {old_id} was moved or removed by another process while this one moved "
            f"it to {new_id}; nothing was changed by this move",
        )

    def _move_job_folder(self, old_id: str, new_id: str, blob: str) -> None:
        """Give the job folder ``old_id`` the state point ``blob`` and the name ``new_id``.

        Crash-safe: (1) the new state point is written to a pending file inside the
        folder, named ``MOVE_FILENAME`` plus a tag no other move uses, (2) the folder is
        renamed, (3) the pending file replaces the state point file. Killed after (1),
        the folder is intact and :meth:`check` deletes the pending file; killed after
        (2), reading the job finishes (3) (:meth:`_finish_move`). At no point does a
        folder hold a state point that is not its own without a pending file that
        repairs it.

        Safe against other processes moving the same job: each move has its own pending
        file, so one cannot overwrite another's, and only a pending file that hashes to
        the folder's name is ever installed. The move whose rename comes second finds
        the folder gone and raises; its pending file travels with the folder, where it
        is ignored and later deleted by :meth:`check`.

        Raises
        ------
        DestinationExistsError
            If a job ``new_id`` exists; nothing is changed.
        JobRemovedError
            If the folder ``old_id`` was moved or removed by another process first.
        OSError
            If the folder cannot be renamed or written; nothing is changed.
        """
        old = self._workspace + _SEP + old_id
        new = self._workspace + _SEP + new_id
        name = f"{MOVE_FILENAME}.{unique_tag()}"
        pending = old + _SEP + name
        data = blob.encode()
        try:
            # complete on disk before the rename makes it the one to use
            _write_exclusive(pending, data)
        except FileNotFoundError:
            raise self._lost_move(old_id, new_id) from None
        try:
            # rename() replaces an empty folder but fails on one holding files, which is
            # how a job created meanwhile by another process is noticed.
            os.rename(old, new)
        except BaseException as exc:
            self._unlink(pending)
            if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise DestinationExistsError(new_id) from exc
            if isinstance(exc, FileNotFoundError):
                raise self._lost_move(old_id, new_id) from exc
            raise
        sp_file = new + _SEP + STATEPOINT_FILENAME
        try:
            os.replace(new + _SEP + name, sp_file)
        except FileNotFoundError:
            # A reader finished the move for us, or the folder was moved on by another
            # process at once: make sure whatever is named new_id holds its own state point.
            try:
                _, current = read_pair(sp_file)
            except OSError:
                current = None
            if type(current) is not dict or calc_id(current) != new_id:
                try:
                    atomic_write(sp_file, data, mode=FILE_MODE)
                except FileNotFoundError:
                    return  # moved on already: the next move carried our pending file

        except OSError:
            os.rename(new, old)  # roll back: the old state point is still in place
            self._unlink(pending)
            raise
        try:
            sig = signature(os.stat(sp_file))
        except FileNotFoundError:
            return  # moved on by another process already; nothing to remember
        self._memory.pop(old_id, None)
        self._memory[new_id] = (sig, json.loads(blob))
        self._cache.append(new_id, blob, sig)
