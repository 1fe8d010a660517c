"""The root ``plams`` command.

``plams SCRIPT …`` runs job scripts (the ``run`` command, which is the default), while
``plams GROUP …`` reaches a subcommand group. Subcommands are imported only when used, so
``plams --help`` and ``plams script.plms`` stay fast.
"""

from __future__ import annotations

import gc
import importlib
import io
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from plams_cli import __version__
from plams_cli.cli._usage import OneLineUsageError
from plams_cli.errors import PlamsError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

#: subcommand name -> "module:attribute"; imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "run": "plams_cli.cli.run:run_command",
    "grid": "plams_cli.cli.grid:grid_group",
    "workspace": "plams_cli.cli.workspace:workspace_group",
    "jobs": "plams_cli.cli.jobs:jobs_group",
}

DEFAULT_COMMAND = "run"


class PlamsGroup(click.Group):
    """A group whose subcommands load lazily and whose default command is ``run``.

    ``plams a.plms`` is read as ``plams run a.plms``: when the first word is neither a
    subcommand nor a root option, ``run`` is put in front of the arguments.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List the subcommands, lazy ones included."""
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the subcommand ``cmd_name``, importing it on first use."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        self.add_command(command, cmd_name)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Route ``plams [RUN-OPTIONS] SCRIPT …`` to the default ``run`` command.

        A first word that is neither a command, an option nor an existing file is taken for
        a mistyped command when it is close to a command name (``plams gird detect``) or
        looks like no file name (no ``.``, no ``/``: ``plams jbos``); a word like
        ``missing.plms`` is left to ``run``, which says the script does not exist. A file
        named like a command is run as ``plams ./grid``.
        """
        if args and not self._is_root_word(ctx, args[0]):
            word = args[0]
            if word and not word.startswith("-") and not os.path.lexists(word) and not ctx.resilient_parsing:
                import difflib

                commands = self.list_commands(ctx)
                close = difflib.get_close_matches(word, commands)
                if close:
                    raise OneLineUsageError(f"No such command or script {word!r}. Did you mean {close[0]!r}?", ctx)
                if "." not in word and os.sep not in word and "/" not in word:
                    raise OneLineUsageError(
                        f"No such command or script {word!r}: no file of that name, and the commands are "
                        f"{', '.join(commands)}.", ctx)
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Both forms: ``plams [OPTIONS] SCRIPT...`` and ``plams COMMAND [ARGS]...``."""
        formatter.write_usage(ctx.command_path, "[OPTIONS] SCRIPT [SCRIPT...]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Show the options of the default ``run`` command, then the root options and commands."""
        run = self.get_command(ctx, DEFAULT_COMMAND)
        if run is not None:
            run_ctx = click.Context(run, info_name=DEFAULT_COMMAND, parent=ctx)
            help_option = run.get_help_option(run_ctx)
            records = [
                rv for param in run.get_params(run_ctx)
                if isinstance(param, click.Option) and param is not help_option and param.name != "version"
                and (rv := param.get_help_record(run_ctx)) is not None
            ]
            if records:
                with formatter.section("Options of plams SCRIPT (see 'plams run --help')"):
                    formatter.write_dl(records)
        super().format_options(ctx, formatter)

    def _is_root_word(self, ctx: click.Context, word: str) -> bool:
        if word in LAZY_COMMANDS or word in self.commands:
            return True
        return word in ("--help", "-h", "--version")

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve the subcommand, suggesting close names for a typo."""
        name = click.utils.make_str(args[0])
        command = self.get_command(ctx, name)
        if command is None and not ctx.resilient_parsing:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx))
            message = f"No such command {name!r}."
            if close:
                message += f" Did you mean {close[0]!r}?"
            raise OneLineUsageError(message, ctx)
        return name, command, args[1:]

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete the first word: a command or, as ``plams SCRIPT`` runs it, a file; an option of either.

        The file item comes first: bash's completion script resets its list on a file item,
        then adds the commands, and falls back to file names only when no command matches.
        """
        from click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            return [CompletionItem(incomplete, type="file"), *items]
        run = self.get_command(ctx, DEFAULT_COMMAND)
        if run is not None:
            run_ctx = click.Context(run, info_name=DEFAULT_COMMAND, parent=ctx, resilient_parsing=True)
            seen = {item.value for item in items}
            items += [item for item in run.shell_complete(run_ctx, incomplete) if item.value not in seen]
        return items


@click.group(
    cls=PlamsGroup,
    invoke_without_command=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="plams", message="%(prog)s %(version)s")
def cli() -> None:
    """Run, restart and submit computational job scripts.

    \b
    plams SCRIPT.plms [MORE.plms]        run job scripts in a new working folder
    plams -l plams.123 SCRIPT.plms       reuse finished jobs of an earlier run
    plams -r -f plams.123 SCRIPT.plms    restart that run in place
    plams grid detect                    which queueing system is here
    plams workspace find '{"a": 1}'      search a state-point workspace

    Without a command, plams runs SCRIPTs: plams [OPTIONS] SCRIPT [SCRIPT...].
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``plams`` console script.

    A :class:`~plams_cli.errors.PlamsError` that escapes a command becomes one line
    ``Error: …`` on stderr and the error's exit status.
    """
    try:
        return cli.main(args=argv, prog_name="plams", standalone_mode=True)
    except PlamsError as exc:  # pragma: no cover - commands convert these themselves
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)


def program() -> Any:
    """The ``plams`` program: :func:`main`, then an exit that skips the interpreter's last garbage collection.

    After a run of tens of thousands of jobs, that collection walks and frees every job
    (their results and settings point back at them) just before the process ends: 0.3 s
    of a 3 s restart. ``gc.freeze()`` leaves them to the operating system. The rest of a
    normal exit still happens (``atexit`` handlers, which close HDF5 files, and the
    freeing of what no cycle holds); the files a script left open, which that collection
    would have flushed, are flushed first (:func:`_flush_left_open`). Only ``__del__`` of
    objects in reference cycles is not called, which Python never promises at exit.
    :func:`main` itself does not do this: tests and other callers go on in the process.
    """
    try:
        return main()
    finally:
        _flush_left_open()
        gc.freeze()


def _flush_left_open() -> None:
    """Flush every file open for writing that the garbage collector sees (a script's, never closed)."""
    writers = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)  # (a text file first: it flushes its buffer)
    for obj in gc.get_objects():
        if isinstance(obj, writers):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # noqa: BLE001 - a detached or broken file: as its own finalizer would, go on
                continue


if __name__ == "__main__":  # pragma: no cover
    program()
