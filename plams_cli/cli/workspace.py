"""``plams workspace``: create and search state-point workspaces (signac 2 compatible)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from plams_cli.cli._usage import OneLineErrorGroup
from plams_cli.cli.console import plams_errors, print_json

F = TypeVar("F", bound=Callable[..., Any])

#: The exit status of a command whose reader went away (``| head``): 128 + SIGPIPE, as a
#: program killed by the signal reports it.
BROKEN_PIPE_EXIT = 141


def _quiet_broken_pipe(func: F) -> F:
    """End a command quietly when its stdout is a pipe closed by the reader (``| head``).

    As the Python documentation recommends (``signal`` module, "Note on SIGPIPE"), the
    rest of the output goes to ``/dev/null``, so the interpreter's final flush does not
    fail either; the status is :data:`BROKEN_PIPE_EXIT` and nothing is printed.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):
                pass  # not a real file (e.g. click's test runner): nothing to flush
            raise click.exceptions.Exit(BROKEN_PIPE_EXIT) from None

    return wrapper  # type: ignore[return-value]


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None, which JSON (RFC 8259) can express."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


_JSON_NOTE = "NaN and infinite numbers are printed as null, so the output is valid JSON."


@click.group("workspace", cls=OneLineErrorGroup)
def workspace_group() -> None:
    """Create, search and check state-point workspaces (compatible with signac 2)."""


@workspace_group.command("init")
@click.argument("root", default=".", type=click.Path(file_okay=False))
@plams_errors
def init_command(root: str) -> None:
    """Create a workspace in ROOT (default: the current folder)."""
    from plams_cli.workspace import init_workspace

    ws = init_workspace(root)
    click.echo(f"Initialised workspace {ws.root}", err=True)


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", ctx, param) from exc
    except RecursionError:
        raise click.BadParameter("nested too deeply to be a filter", ctx, param) from None
    if not isinstance(data, dict):
        raise click.BadParameter("the filter must be a JSON object", ctx, param)
    return data


@workspace_group.command("find", short_help="Print the ids of the jobs matching a filter.")
@click.argument("filter_json", required=False, callback=_parse_filter, metavar="[FILTER_JSON]")
@click.option("-w", "--workspace", "--root", "root", default=".", show_default=True, metavar="FOLDER",
              help="The workspace folder.")
@click.option(
    "--json", "as_json", is_flag=True, help=f"Print ids and state points as JSON. {_JSON_NOTE}"
)
@plams_errors
@_quiet_broken_pipe
def find_command(filter_json: Any, root: str, as_json: bool) -> None:
    """Print the ids of the jobs matching FILTER_JSON, e.g. '{"a": {"$gt": 1}}'.

    Without FILTER_JSON every job is listed.
    """
    from plams_cli.workspace import FilterError, Workspace

    ws = Workspace(root)
    try:
        jobs = ws.find_jobs(filter_json)
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="FILTER_JSON") from exc
    except RecursionError:
        raise click.BadParameter("nested too deeply to be a filter", param_hint="FILTER_JSON") from None
    if as_json:
        print_json([{"id": job.id, "statepoint": _finite(job.statepoint())} for job in jobs])
        return
    if jobs:
        click.echo("\n".join(job.id for job in jobs))


@workspace_group.command("show")
@click.argument("job_id", metavar="ID")
@click.option("-w", "--workspace", "--root", "root", default=".", show_default=True, metavar="FOLDER",
              help="The workspace folder.")
@click.option("--json", "as_json", is_flag=True, help=f"Print as JSON. {_JSON_NOTE}")
@plams_errors
@_quiet_broken_pipe
def show_command(job_id: str, root: str, as_json: bool) -> None:
    """Show the state point and document of the job ID (a unique prefix is enough)."""
    from plams_cli.workspace import Workspace

    ws = Workspace(root)
    job = ws.open_job(id=job_id)
    statepoint = job.statepoint()
    # The library's reader: a corrupt document is a WorkspaceError, one line of error.
    document = job.doc() if job.isfile("signac_job_document.json") else {}
    if as_json:
        print_json(
            {
                "id": job.id,
                "path": job.path,
                "statepoint": _finite(statepoint),
                "document": _finite(document),
            }
        )
        return
    # Data, printed verbatim: values may hold "[bold]" or ":smile:", which rich would
    # take for markup and emoji codes.
    click.echo(f"id:         {job.id}")
    click.echo(f"path:       {job.path}")
    click.echo(f"statepoint: {json.dumps(statepoint, sort_keys=True, ensure_ascii=False)}")
    click.echo(f"document:   {json.dumps(document, sort_keys=True, ensure_ascii=False)}")


@workspace_group.command("check")
@click.option("-w", "--workspace", "--root", "root", default=".", show_default=True, metavar="FOLDER",
              help="The workspace folder.")
@plams_errors
def check_command(root: str) -> None:
    """Check every job's state point, finish interrupted moves and delete leftovers.

    Leftovers are the temporary files and folders of writers that were killed: those
    older than a minute, or older than five seconds whose process is gone. Each one
    deleted is named on stderr. Exits 1, naming the jobs, if some state point file is
    missing, unreadable or not the job's own.
    """
    from plams_cli.errors import JobsCorruptedError
    from plams_cli.workspace import Workspace

    ws = Workspace(root)
    try:
        removed = ws.check()
    except JobsCorruptedError as exc:
        for path in getattr(exc, "removed", []):
            click.echo(f"removed {path}", err=True)
        raise
    for path in removed:
        click.echo(f"removed {path}", err=True)
    checked = len(ws)
    click.echo(f"{checked} {'job' if checked == 1 else 'jobs'} checked", err=True)


@workspace_group.command("schema")
@click.option("-w", "--workspace", "--root", "root", default=".", show_default=True, metavar="FOLDER",
              help="The workspace folder.")
@click.option("-x", "--exclude-const", is_flag=True, help="Leave out keys every job has with the same value.")
@click.option("-t", "--depth", type=click.IntRange(min=0), default=0, help="Nest dotted keys up to this depth.")
@click.option("-p", "--precision", type=click.IntRange(min=0), default=None, help="Round numbers to so many digits.")
@click.option(
    "--max-num-range", type=click.IntRange(min=2), default=5, show_default=True,
    help="Values shown per type; the middle ones are elided.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print {key: {type: sorted values}} as JSON.")
@plams_errors
@_quiet_broken_pipe
def schema_command(
    root: str, exclude_const: bool, depth: int, precision: int | None, max_num_range: int, as_json: bool
) -> None:
    """Print the state point schema: each key with the values it takes, by type.

    The text is what 'signac schema' prints for the same jobs.
    """
    from plams_cli.workspace import Workspace

    schema = Workspace(root).detect_schema(exclude_const=exclude_const)
    if as_json:
        print_json(_finite(schema.to_json()))
        return
    click.echo(schema.format(depth=depth, precision=precision, max_num_range=max_num_range))
