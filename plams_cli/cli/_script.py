"""Running job scripts as the ``__main__`` module, and cutting their tracebacks.

The scripts of one ``plams`` call share one module object, installed as
``sys.modules["__main__"]`` while they run (as :mod:`runpy` does), so classes and
functions they define have ``__module__ == "__main__"`` and pickle by value (see
:mod:`plams_cli.core.pickling`), and ``if __name__ == "__main__":`` blocks run.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tokenize
import traceback
import types
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import click

__all__ = ["Script", "ScriptModule", "read_script", "format_user_traceback"]



def _library_dirs() -> tuple[str, ...]:
    """Folders whose frames a user's traceback leaves out: plams_cli, the standard library, site-packages."""
    import sysconfig

    folders = {os.path.dirname(os.path.abspath(sys.modules["plams_cli"].__file__ or ""))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            folders.add(os.path.abspath(sysconfig.get_paths()[key]))
    folders.add(os.path.dirname(os.path.abspath(click.__file__ or "")))
    return tuple(sorted(folder.rstrip(os.sep) + os.sep for folder in folders if folder))


_HIDDEN_DIRS = _library_dirs()


class Script:
    """One job script: its absolute path and compiled code.

    Parameters
    ----------
    path
        The script file; made absolute.
    source
        Its bytes (Python reads any ``# -*- coding`` line itself).
    """

    def __init__(self, path: str, source: bytes) -> None:
        self.path = os.path.abspath(path)
        self.source = source
        self.code: types.CodeType | None = None

    def compile(self) -> types.CodeType:
        """Compile the script (once), with its real file name for tracebacks.

        Raises
        ------
        SyntaxError
            The script is not valid Python.
        """
        if self.code is None:
            self.code = compile(self.text(), self.path, "exec", dont_inherit=True)
        return self.code

    def text(self) -> str:
        """The source decoded as Python decodes a file (PEP 263: a coding line, else UTF-8).

        ``compile()`` of bytes would let undecodable bytes in comments pass, which
        ``python script.py`` refuses.

        Raises
        ------
        SyntaxError
            The coding line names an unknown encoding, or the bytes are not in the encoding.
        """
        encoding, _ = tokenize.detect_encoding(io.BytesIO(self.source).readline)
        try:
            return self.source.decode(encoding)
        except UnicodeDecodeError as exc:
            line = self.source.count(b"\n", 0, exc.start) + 1
            declared = "" if encoding.startswith("utf-8") else f" (declared encoding {encoding})"
            error = SyntaxError(
                f"Non-{encoding.upper()} code starting with '\\x{self.source[exc.start]:02x}' in file "
                f"{self.path} on line {line}{declared or ', but no encoding declared'}; "
                "see https://peps.python.org/pep-0263/ for details"
            )
            error.filename, error.lineno = self.path, line
            raise error from None


def read_script(path: str) -> Script:
    """Read the script at ``path``.

    Raises
    ------
    click.BadParameter
        It cannot be read (the message names the file and the reason).
    """
    from plams_cli.cli._paths import file_kind

    try:
        # O_NONBLOCK: a FIFO swapped in after the argument was checked must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read script {path!r}: {exc.strerror or exc}", param_hint="'SCRIPT...'"
        ) from exc
    with open(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise click.BadParameter(f"script {path!r} is {file_kind(mode)}, not a regular file",
                                     param_hint="'SCRIPT...'")
        try:
            return Script(path, handle.read())
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read script {path!r}: {exc.strerror or exc}", param_hint="'SCRIPT...'"
            ) from exc


class ScriptModule:
    """The ``__main__`` module the scripts run in, preloaded with the public names of plams_cli.

    Parameters
    ----------
    variables
        ``-v VAR=VALUE`` globals (strings), set after the preloaded names.
    """

    def __init__(self, variables: Iterable[tuple[str, str]] = ()) -> None:
        import plams_cli

        self.module = types.ModuleType("__main__")
        namespace = self.module.__dict__
        namespace["__builtins__"] = __builtins__
        for name in plams_cli.__all__:
            namespace[name] = getattr(plams_cli, name)
        for name, value in variables:
            namespace[name] = value

    @property
    def namespace(self) -> dict[str, object]:
        """The module's globals."""
        return self.module.__dict__

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Make this module ``sys.modules["__main__"]`` (and keep ``sys.argv``, ``sys.path``) for a while."""
        saved_main = sys.modules.get("__main__")
        saved_argv = sys.argv
        saved_path = sys.path[:]
        sys.modules["__main__"] = self.module
        try:
            yield
        finally:
            if saved_main is not None:
                sys.modules["__main__"] = saved_main
            sys.argv = saved_argv
            sys.path[:] = saved_path

    def put_folders_on_path(self, scripts: Sequence[Script]) -> None:
        """Put the scripts' folders at the front of ``sys.path`` (inside :meth:`installed`).

        Done before ``-l`` and ``-r`` load saved jobs: their classes may live in modules
        beside the scripts, as PLAMS's launcher allows.
        """
        for script in reversed(scripts):
            folder = os.path.dirname(script.path)
            if folder not in sys.path:
                sys.path.insert(0, folder)

    def run(self, script: Script) -> None:
        """Execute ``script`` in the module: ``__file__`` is its path, its folder leads ``sys.path``."""
        code = script.compile()
        folder = os.path.dirname(script.path)
        if not sys.path or sys.path[0] != folder:
            sys.path.insert(0, folder)
        sys.argv = [script.path]
        self.namespace.update(__file__=script.path, __name__="__main__", __spec__=None,
                              __package__=None, __cached__=None, __loader__=None)
        exec(code, self.namespace)  # noqa: S102 - running the user's script is the point


def _is_user_frame(frame: traceback.FrameSummary) -> bool:
    filename = os.path.abspath(frame.filename) if not frame.filename.startswith("<") else frame.filename
    return not filename.startswith(_HIDDEN_DIRS)


def _cut(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if _is_user_frame(f)])
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _cut(chained, seen)


def format_user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` cut to the user's own frames.

    Frames of plams_cli, click, the standard library and installed packages are left out;
    what is left are the script files (real names and lines) and the user's own modules,
    then the exception itself. Chained exceptions are cut
    the same way.
    """
    te = traceback.TracebackException.from_exception(exc, capture_locals=False)
    _cut(te, set())
    lines = list(te.format())
    # A SyntaxError has no frames of the user's; keep Python's header only with frames.
    text = "".join(lines)
    if not te.stack and text.startswith("Traceback (most recent call last):\n"):
        text = text[len("Traceback (most recent call last):\n"):]
    return text.rstrip("\n")
