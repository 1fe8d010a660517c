"""Small file helpers of the core: the folder jobs are loaded from; linking or copying a job's files.

Atomic writes are :func:`plams_cli._fs.atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable

from plams_cli.errors import FileError

__all__ = ["folder_to_load", "link_listed", "link_or_copy_tree", "normal_path"]


def normal_path(path: str) -> str:
    """``os.path.normpath(path)``, at the cost of a few string tests when ``path`` is normal already.

    The folders of jobs are absolute paths joined from normal parts, and a restart compares
    several of them per job: most need no rebuilding.
    """
    if os.sep == "/" and path.startswith("/") and "//" not in path and "/." not in path and not path.endswith("/"):
        return path
    return os.path.normpath(path)


def folder_to_load(path: str) -> str:
    """``path`` as an absolute path, when it is a folder saved jobs can be loaded from.

    Raises
    ------
    FileError
        ``path`` does not exist or is not a folder.
    """
    root = os.path.abspath(path)
    if not os.path.exists(root):
        raise FileError(f"cannot load jobs from {root}: it does not exist")
    if not os.path.isdir(root):
        raise FileError(f"cannot load jobs from {root}: it is not a folder")
    return root


def link_listed(source: str, target: str, names: list[str]) -> bool:
    """Hard-link the files ``names`` of folder ``source`` into folder ``target`` (which exists), under the same names.

    For a folder whose files are known (an index entry's list): one ``link`` per file, no
    listing. Returns False when a name is not a plain file name of ``source`` or a link
    cannot be made (another file system, a file gone): then nothing is left half-linked
    that :func:`link_or_copy_tree` does not replace, and the caller is to use that instead.
    """
    for name in names:
        if os.sep in name or name in ("", ".", ".."):
            return False
        dst = target + os.sep + name
        try:
            os.link(source + os.sep + name, dst)
        except FileExistsError:
            try:
                os.unlink(dst)
                os.link(source + os.sep + name, dst)
            except OSError:
                return False
        except OSError:
            return False
    return True


def link_or_copy_tree(
    source: str, target: str, rename: Callable[[str], str | None], link: bool = True
) -> None:
    """Fill folder ``target`` with the files of ``source`` (which may already exist).

    ``rename(relative_name)`` gives each file's name in ``target``, or ``None`` to skip
    it. Files are hard-linked when ``link`` is set and copied where a link is impossible
    (another file system, a file system without hard links) or not wanted. Symbolic
    links to folders are not followed (as :func:`os.walk` does not).
    """
    if not os.path.isdir(target):  # (a job's folder is there already: makedirs would raise and catch)
        os.makedirs(target, exist_ok=True)
    _fill(source, "", target, rename, link, {""})


def _fill(folder: str, prefix: str, target: str, rename: Callable[[str], str | None], link: bool,
          made: set[str]) -> None:
    # One scandir per folder and one link per file: this is the copy path of every reused job.
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # as os.walk: a folder that cannot be listed is passed over
    for entry in entries:
        if entry.is_dir():
            if not entry.is_symlink():
                _fill(entry.path, prefix + entry.name + os.sep, target, rename, link, made)
            continue
        new_relative = rename(prefix + entry.name)
        if new_relative is None:
            continue
        dst = target + os.sep + new_relative
        parent = os.path.dirname(new_relative) if os.sep in new_relative else ""
        if parent not in made:
            os.makedirs(os.path.join(target, parent), exist_ok=True)
            made.add(parent)
        if link:
            try:
                os.link(entry.path, dst)
                continue
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
                try:
                    os.link(entry.path, dst)
                    continue
                except OSError:
                    pass
            except OSError:
                pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dst)
        shutil.copy2(entry.path, dst)
