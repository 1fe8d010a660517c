"""Shared file-system and process primitives, a leaf every room may use.

``atomic_write`` is the one way plams-cli replaces a file: a temporary file with a name
no other writer can pick (``O_EXCL``), flushed and by default fsynced, moved over the
target with ``os.replace``. A kill at any moment leaves the old file or the new one,
never a truncated one, and concurrent writers never share a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket

__all__ = ["atomic_write", "unique_tag", "pid_alive"]


def unique_tag() -> str:
    """A short tag unique to this writer: host, process and 48 random bits."""
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(6)}"


def atomic_write(path: str, data: bytes, *, fsync: bool = True, mode: int = 0o644) -> None:
    """Replace the file ``path`` by ``data`` so that readers see the old or the new file.

    Parameters
    ----------
    path
        The file to write.
    data
        Its new content.
    fsync
        Whether to fsync the temporary file before the move (``False`` where a crash of
        the machine may lose the file but a killed process must not truncate it).
    mode
        Permissions of a new file (before the umask).

    Raises
    ------
    OSError
        The folder is not writable or the disk is full; the temporary file is removed.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{unique_tag()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and is not a zombie (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True  # no /proc here: kill(0) said it exists
