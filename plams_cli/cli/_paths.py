"""Path parameters that say exactly what is wrong with the path given.

click's :class:`click.Path` calls a symlink loop or an over-long name "does not exist",
and takes a FIFO or a device for a folder when files are refused (and for a file when
folders are). These types refuse anything but a regular file or a real folder, before
anything is opened, and name the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import click

__all__ = ["CheckedPath", "file_kind"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a directory"``, … for the ``st_mode`` ``mode``."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


class CheckedPath(click.Path):
    """A :class:`click.Path` (``exists=True``) that is a regular file or a folder, as asked.

    The path must be a regular file when ``dir_okay`` is false and a folder when
    ``file_okay`` is false; a FIFO, socket or device is refused by its kind, and an error
    of the path itself (a symlink loop, a name too long) by the system's reason.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(exists=True, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Check the kind of the path first, then as :class:`click.Path` does."""
        what = "Directory" if not self.file_okay else "File" if not self.dir_okay else "Path"
        shown = click.format_filename(os.fsdecode(value))
        if not os.fspath(value):  # click would take "" for the current folder
            self.fail("an empty name is not a path.", param, ctx)
        try:
            mode = os.stat(value).st_mode
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.fail(f"{what} {shown!r} cannot be used: {exc.strerror}.", param, ctx)
        else:
            if not self.dir_okay and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                self.fail(f"{what} {shown!r} is {file_kind(mode)}, not a regular file.", param, ctx)
            if not self.file_okay and not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
                self.fail(f"{what} {shown!r} is {file_kind(mode)}, not a directory.", param, ctx)
        return super().convert(value, param, ctx)
