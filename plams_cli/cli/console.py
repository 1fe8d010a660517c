"""Shared output plumbing of the command line.

Data goes to stdout (``out``), messages, tables for eyes and progress to stderr (``err``).
``stderr=True`` rather than ``file=sys.stderr`` lets rich look the stream up at write
time, so click's CliRunner captures it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plams_cli.errors import PlamsError

if TYPE_CHECKING:
    from rich.console import Console

    #: the stdout console (data)
    out: Console
    #: the stderr console (messages, tables for eyes, progress)
    err: Console

_CONSOLE_OPTIONS: dict[str, dict[str, Any]] = {
    "out": {"highlight": False, "soft_wrap": True},
    "err": {"stderr": True, "highlight": False, "soft_wrap": True},
}


def __getattr__(name: str) -> Any:
    # out and err are made on first use (PEP 562): importing rich costs a start of plams
    # tens of milliseconds, and a run off a terminal may never print through them.
    options = _CONSOLE_OPTIONS.get(name)
    if options is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    console = globals()[name] = Console(**options)
    return console


def surely_no_terminal(stream: Any) -> bool:
    """Whether a rich ``Console`` on ``stream`` would surely say it is no terminal (when in doubt: ``False``).

    Rich calls a stream a terminal only when ``TTY_COMPATIBLE=1``, ``FORCE_COLOR`` is set
    and not empty, or ``stream.isatty()`` says so; this asks the same without importing rich.
    """
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return True
    try:
        return not isatty()
    except Exception:  # noqa: BLE001 - a closed or odd stream: let rich decide
        return False

F = TypeVar("F", bound=Callable[..., Any])


class PlamsClickError(click.ClickException):
    """A :class:`PlamsError` carried across the click boundary with its exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a ClassVar; ours varies per error


def plams_errors(func: F) -> F:
    """Turn :class:`PlamsError` and ``OSError`` raised in a command into one ``Error:`` line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PlamsError as exc:
            raise PlamsClickError(str(exc), exc.exit_code) from exc
        except OSError as exc:
            raise PlamsClickError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1) from exc

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout: no colour, stable key order, one trailing newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
