"""Shared file-system and process primitives, a leaf every room may use.

``atomic_write`` is the one way plams-cli replaces a file: a temporary file with a name
no other writer can pick (``O_EXCL``), flushed and by default fsynced, moved over the
target with ``os.replace``. A kill at any moment leaves the old file or the new one,
never a truncated one, and concurrent writers never share a temporary file.

Temporary names carry :func:`unique_tag` (host, pid, random bits); :func:`tag_writer`
reads the writer back from such a name, so a clean-up can tell the leftovers of a killed
writer from files a live one is still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import NamedTuple

__all__ = ["atomic_write", "atomic_concatenate", "unique_tag", "tag_writer", "Writer", "pid_alive"]

# "<pid>.<12 hex digits>" at the end of a name, before an optional ".tmp"; the host
# (which may hold dots itself) is what comes before, after a "." or "-".
_TAG_RE = re.compile(r"\.(\d+)\.[0-9a-f]{12}(?:\.tmp)?\Z")


_writer: list[str] = []  # "<host>.<pid>." of this process, made once (again in a forked child)


def unique_tag() -> str:
    """A short tag unique to this writer: ``<host>.<pid>.<12 hex digits>``.

    Returns
    -------
    str
        Host name, process id and 48 random bits; no other call on any host returns it.
    """
    # Every atomic write names a temporary file with one: host and pid are looked up once.
    if not _writer:
        _writer.append(f"{hostname()}.{os.getpid()}.")
    return _writer[0] + os.urandom(6).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_writer.clear)


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it."""
    # os.uname() is what socket.gethostname() reads on POSIX, without the 8 ms import of
    # socket (and secrets, 12 ms) in every process that only writes a file.
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


class Writer(NamedTuple):
    """Who made a temporary file or folder named with :func:`unique_tag`."""

    #: The writer's process id.
    pid: int
    #: Whether the writer ran on this host (only then does :func:`pid_alive` tell about it).
    here: bool


def tag_writer(name: str) -> Writer | None:
    """Return the writer of a name ending in a :func:`unique_tag` (before ``.tmp``), or None.

    Parameters
    ----------
    name
        A file or folder name, e.g. ``.doc.json.node1.4242.0123456789ab.tmp`` (what
        :func:`atomic_write` makes) or ``.init-<id>-node1.4242.0123456789ab``; the tag
        follows a ``.`` or a ``-``.

    Returns
    -------
    Writer or None
        The pid and whether it ran on this host; None when the name holds no tag.
    """
    match = _TAG_RE.search(name)
    if match is None:
        return None
    before = name[: match.start()]
    host = hostname()
    here = before == host or before.endswith(("." + host, "-" + host))
    return Writer(int(match.group(1)), here)


def _temporary_name(path: str) -> str:
    """The temporary file an atomic write of ``path`` makes beside it (:func:`tag_writer` reads its writer)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{unique_tag()}.tmp")


def atomic_write(path: str, data: bytes, *, fsync: bool = True, mode: int = 0o644) -> os.stat_result:
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

    Returns
    -------
    os.stat_result
        The status of the file written (taken before the move, which changes neither its
        inode, its size nor its modification time).

    Raises
    ------
    OSError
        The folder is not writable or the disk is full; the temporary file is removed.
    """
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            written = os.write(fd, data)
            if written < len(data):
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
            status = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return status


def atomic_concatenate(path: str, sources: list[str], *, mode: int = 0o644) -> None:
    """Replace the file ``path`` by the files ``sources`` one after the other, as :func:`atomic_write` does.

    The files are streamed (a long history of logs is never held in memory); ``path``
    may be one of ``sources``. The result is fsynced before it moves into place.

    Raises
    ------
    OSError
        A source cannot be read, the folder is not writable or the disk is full; the
        temporary file is removed and ``path`` is unchanged.
    """
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with open(fd, "wb", closefd=True) as out:
            for source in sources:
                with open(source, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and is not a zombie (on this machine).

    On Windows, where ``os.kill(pid, 0)`` would end the process, it cannot tell: True.
    """
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
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
