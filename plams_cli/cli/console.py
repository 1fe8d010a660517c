"""Shared output plumbing of the command line.

Data goes to stdout (``out``), messages, tables for eyes and progress to stderr (``err``).
``stderr=True`` rather than ``file=sys.stderr`` lets rich look the stream up at write
time, so click's CliRunner captures it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from plams_cli.errors import PlamsError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
