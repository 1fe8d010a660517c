"""Small file helpers of the core: linking or copying a job's files.

Atomic writes are :func:`plams_cli._fs.atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable

__all__ = ["link_or_copy_tree"]


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
