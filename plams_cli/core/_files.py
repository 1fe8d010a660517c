"""Small file helpers of the core: atomic writes and linking or copying a job's files."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable

__all__ = ["write_atomic", "link_or_copy_tree"]


def write_atomic(path: str, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a partial file.

    The bytes go to a temporary file in the same folder, are flushed to disk (``fsync``)
    when ``sync`` is set, and the file is moved over ``path`` with ``os.replace``. A kill
    at any moment leaves either the old file or the new one, never a truncated one.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def link_or_copy_tree(
    source: str, target: str, rename: Callable[[str], str | None], link: bool = True
) -> None:
    """Fill folder ``target`` with the files of ``source`` (which may already exist).

    ``rename(relative_name)`` gives each file's name in ``target``, or ``None`` to skip
    it. Files are hard-linked when ``link`` is set and copied where a link is impossible
    (another file system, a file system without hard links) or not wanted.
    """
    os.makedirs(target, exist_ok=True)
    for folder, _dirs, files in os.walk(source):
        relative_folder = os.path.relpath(folder, source)
        for name in files:
            relative = name if relative_folder == "." else os.path.join(relative_folder, name)
            new_relative = rename(relative)
            if new_relative is None:
                continue
            src = os.path.join(source, relative)
            dst = os.path.join(target, new_relative)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst)
            if link:
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    pass
            shutil.copy2(src, dst)
