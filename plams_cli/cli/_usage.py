"""One-line usage errors: ``Error: <message>`` on stderr, exit status 2, nothing else.

Kept apart from :mod:`plams_cli.cli.console` so that the root command does not import
rich (``plams --help`` stays fast).
"""

from __future__ import annotations

from typing import IO, Any

import click

__all__ = ["OneLineUsageError", "OneLineErrorCommand", "OneLineErrorGroup", "one_line"]


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line, ``Error: <message>``, without click's usage lines."""

    def show(self, file: IO[Any] | None = None) -> None:
        """Write ``Error: <message>`` to ``file`` (default stderr)."""
        click.ClickException.show(self, file)


def one_line(exc: click.UsageError) -> click.UsageError:
    """``exc`` as a :class:`OneLineUsageError` (the message click would show, its context kept).

    A bare group's "no arguments: show the help" passes as it is.
    """
    if isinstance(exc, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc  # a group called bare shows its help, as bare ``plams`` does
    return OneLineUsageError(exc.format_message(), exc.ctx)


class _OneLineErrors:
    """Mixin: usage errors met while parsing (:meth:`make_context`) or raised by the
    callback (:meth:`invoke`) become one line ``Error: …``."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        """Parse ``args``; a usage error becomes one line."""
        try:
            return super().make_context(info_name, args, parent, **extra)  # type: ignore[misc,no-any-return]
        except click.UsageError as exc:
            raise one_line(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        """Run the callback (or find and run a group's subcommand); a usage error becomes one line."""
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except click.UsageError as exc:
            raise one_line(exc) from exc


class OneLineErrorCommand(_OneLineErrors, click.Command):
    """A command whose usage errors are one line ``Error: …`` on stderr (exit status 2).

    click shows a usage error in four lines (usage, a hint, a blank line, the error); the
    ``plams`` master script promises one.
    """


class OneLineErrorGroup(_OneLineErrors, click.Group):
    """A command group whose own usage errors and its subcommands' are one line ``Error: …``."""

    command_class = OneLineErrorCommand
