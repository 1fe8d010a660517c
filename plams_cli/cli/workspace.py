"""``plams workspace``: create and search state-point workspaces (signac 2 compatible)."""

from __future__ import annotations

import json
from typing import Any

import click

from plams_cli.cli._usage import OneLineErrorGroup
from plams_cli.cli.console import plams_errors, print_json


@click.group("workspace", cls=OneLineErrorGroup)
def workspace_group() -> None:
    """Create and search state-point workspaces (compatible with signac 2)."""


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
    if not isinstance(data, dict):
        raise click.BadParameter("the filter must be a JSON object", ctx, param)
    return data


@workspace_group.command("find")
@click.argument("filter_json", required=False, callback=_parse_filter, metavar="[FILTER_JSON]")
@click.option("-r", "--root", default=".", show_default=True, help="The workspace folder.")
@click.option("--json", "as_json", is_flag=True, help="Print ids and state points as JSON.")
@plams_errors
def find_command(filter_json: Any, root: str, as_json: bool) -> None:
    """Print the ids of the jobs matching FILTER_JSON, e.g. '{"a": {"$gt": 1}}'."""
    from plams_cli.workspace import FilterError, Workspace

    ws = Workspace(root)
    try:
        jobs = ws.find_jobs(filter_json)
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="FILTER_JSON") from exc
    if as_json:
        print_json([{"id": job.id, "statepoint": job.statepoint()} for job in jobs])
        return
    for job in jobs:
        click.echo(job.id)


@workspace_group.command("show")
@click.argument("job_id", metavar="ID")
@click.option("-r", "--root", default=".", show_default=True, help="The workspace folder.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@plams_errors
def show_command(job_id: str, root: str, as_json: bool) -> None:
    """Show the state point and document of the job ID (a unique prefix is enough)."""
    from plams_cli.workspace import Workspace

    ws = Workspace(root)
    job = ws.open_job(id=job_id)
    statepoint = job.statepoint()
    # The library's reader: a corrupt document is a WorkspaceError, one line of error.
    document = job.doc() if job.isfile("signac_job_document.json") else {}
    if as_json:
        print_json({"id": job.id, "path": job.path, "statepoint": statepoint, "document": document})
        return
    # Data, printed verbatim: values may hold "[bold]" or ":smile:", which rich would
    # take for markup and emoji codes.
    click.echo(f"id:         {job.id}")
    click.echo(f"path:       {job.path}")
    click.echo(f"statepoint: {json.dumps(statepoint, sort_keys=True)}")
    click.echo(f"document:   {json.dumps(document, sort_keys=True)}")
