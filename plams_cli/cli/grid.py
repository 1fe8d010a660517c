"""``plams grid``: which queueing system is here, and the grid definitions GridRunner uses.

The Python side is :class:`plams_cli.runners.grid.GridRunner` (``grid='auto'`` runs the
same detection as ``plams grid detect``).
"""

from __future__ import annotations

from typing import Any

import click

from plams_cli.cli._usage import OneLineErrorGroup
from plams_cli.cli.console import err, out, plams_errors, print_json
from plams_cli.errors import SchedulerNotFoundError

__all__ = ["grid_group"]


@click.group("grid", cls=OneLineErrorGroup)
def grid_group() -> None:
    """Queueing systems: detect the one here, list and show grid definitions."""


@grid_group.command("detect")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@plams_errors
def detect_command(as_json: bool) -> None:
    """Say which queueing system GridRunner(grid='auto') would use, and why.

    Exit status 1 when none is found. PLAMS_GRID=NAME overrides detection.
    """
    from rich.table import Table

    from plams_cli.runners.detect import detect

    found = detect()
    dask = _dask_extra()
    if as_json:
        print_json({**found.as_dict(), "dask": dask})
    else:
        if found.grid:
            version = f" {found.version}" if found.version else ""
            out.print(f"{found.grid}{version}")
        table = Table(title="candidates", title_justify="left")
        for column in ("grid", "chosen", "version", "commands", "reason"):
            table.add_column(column)
        for cand in found.candidates:
            commands = ", ".join(f"{n}={p}" for n, p in cand.commands.items() if p) or "-"
            table.add_row(
                cand.name, "yes" if cand.chosen else "no", cand.version or "-", commands, cand.reason
            )
        err.print(table)
        versions = ", ".join(f"{name} {version}" for name, version in dask["versions"].items() if version)
        err.print(f"DaskRunner: {'installed' if dask['installed'] else 'not installed'} "
                  f"({versions or 'pip install ' + repr(dask['extra'])})")
    if found.grid is None:
        reasons = "; ".join(f"{cand.name}: {cand.reason}" for cand in found.candidates) or "no candidates"
        raise SchedulerNotFoundError(f"no queueing system found ({reasons})")


def _dask_extra() -> dict[str, Any]:
    """Whether the extra ``plams-cli[dask]`` (DaskRunner) is installed, without importing Dask."""
    from plams_cli.runners.dask import dask_installed

    versions = dask_installed()
    return {"installed": all(versions.values()), "extra": "plams-cli[dask]", "versions": versions}


def _sources() -> dict[str, str]:
    """Grid name -> ``builtin``, ``user`` or ``builtin, changed by user``."""
    import yaml

    from plams_cli.defaults import package_defaults_path, user_defaults_path
    from plams_cli.runners.grid import grid_definitions

    with open(package_defaults_path(), encoding="utf-8") as handle:
        packaged = (yaml.safe_load(handle) or {}).get("gridrunner") or {}
    user: dict[str, Any] = {}
    user_path = user_defaults_path()
    if user_path is not None:
        with open(user_path, encoding="utf-8") as handle:
            user = (yaml.safe_load(handle) or {}).get("gridrunner") or {}
    sources = {}
    for name in grid_definitions():
        if name in packaged:
            sources[name] = "builtin, changed by user" if name in user else "builtin"
        else:
            sources[name] = "user"
    return sources


@grid_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the grids as JSON on stdout.")
@plams_errors
def list_command(as_json: bool) -> None:
    """List the grid definitions: built-in ones and those of your defaults file."""
    from rich.table import Table

    from plams_cli.runners.grid import grid_definitions

    grids = grid_definitions()
    sources = _sources()
    rows = []
    for name in sorted(grids):
        submit = (grids[name].get("commands") or {}).get("submit")
        submit_text = " ".join(map(str, submit)) if isinstance(submit, list) else str(submit or "")
        rows.append({"name": name, "source": sources.get(name, "user"), "submit": submit_text})
    if as_json:
        print_json(rows)
        return
    table = Table(box=None)
    for column in ("name", "source", "submit"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["source"], row["submit"])
    out.print(table)


@grid_group.command("show")
@click.argument("name")
@plams_errors
def show_command(name: str) -> None:
    """Print the settings of grid NAME as YAML (a start for your own defaults file)."""
    import yaml

    from plams_cli.runners.grid import grid_settings

    settings = grid_settings(name)

    class _Dumper(yaml.SafeDumper):
        """Argument lists on one line, mappings as blocks."""

    def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    _Dumper.add_representer(list, _list)
    text = yaml.dump(
        {"gridrunner": {name: settings}}, Dumper=_Dumper, sort_keys=False, default_flow_style=False
    )
    click.echo(text, nl=False)
