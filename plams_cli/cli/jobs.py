"""``plams jobs``: list, edit, update, merge and import the job cache; inspect saved jobs.

The Python side is :mod:`plams_cli.jobcache` (``JobCache``, ``JobServer``, ``Job``).
``plams jobs list`` is kept cheap to start: rich, psutil and the core are imported only
when needed (a terminal, a status check, ``show --unsafe``).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plams_cli.cli._usage import OneLineErrorGroup
from plams_cli.errors import PlamsError, UserError
from plams_cli.jobcache.job import SPEC_FIELDS
from plams_cli.jobcache.paths import local_hostname, resolve_cache_path
from plams_cli.jobcache.status import JobStatus

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from plams_cli.jobcache import JobCache
    from plams_cli.jobcache.update import UpdateReport

__all__ = ["jobs_group"]

F = TypeVar("F", bound=Callable[..., Any])

_UNSAFE_HELP = ("Load the job with dill and show the live job (settings, results files). Unsafe: "
                "unpickling runs code stored in the file, so a .dill from someone else could do anything; "
                "use it only on files you trust.")
_STATUS_STYLE = {"unknown": "dim", "held": "yellow", "queueing": "cyan", "running": "blue bold",
                 "finished": "green", "analysed": "green bold", "failed": "red bold"}


def _errors(func: F) -> F:
    """:func:`plams_cli.cli.console.plams_errors`, importing it (and rich) only when an error
    is shown, and quiet on a closed pipe (``plams jobs list | head``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PlamsError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                from plams_cli.cli.workspace import _quiet_broken_pipe as convert
            else:
                from plams_cli.cli.console import plams_errors as convert

            def again(error: BaseException = exc) -> None:
                raise error

            convert(again)()
            raise  # pragma: no cover - convert always raises

    return wrapper  # type: ignore[return-value]


# --- parameters -------------------------------------------------------------------------
class KeyValue(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.4 on
    """``KEY=VALUE`` with KEY a job field; ``KEY=`` (empty) clears the field."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        """Split and check one ``KEY=VALUE``."""
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        key = key.strip()
        if key not in SPEC_FIELDS:
            close = difflib.get_close_matches(key, SPEC_FIELDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" The keys are {', '.join(SPEC_FIELDS)}."
            self.fail(f"unknown key {key!r}.{hint}", param, ctx)
        if key == "status" and text and text not in JobStatus.__members__:
            self.fail(f"unknown status {text!r}; use one of {', '.join(JobStatus.__members__)}", param, ctx)
        return key, text

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """Complete the keys (``status=`` also its values)."""
        from click.shell_completion import CompletionItem

        if incomplete.startswith("status="):
            values = [f"status={s}" for s in JobStatus.__members__]
            return [CompletionItem(v) for v in values if v.startswith(incomplete)]
        return [CompletionItem(f"{k}=", type="nospace") for k in SPEC_FIELDS if k.startswith(incomplete)]


def _cache_path(ctx: click.Context) -> str | None:
    option = ctx.params.get("cache")
    return resolve_cache_path(option)


def _complete_hosts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    try:
        path = _cache_path(ctx)
        if path is None:
            return []
        from plams_cli.jobcache.store import Store

        names = Store(path).hostnames()
    except PlamsError:
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _cache_option(func: F) -> F:
    return click.option(
        "--cache", metavar="PATH", is_eager=True,
        help="The job cache file (default: $PLAMS_JOBCACHE, else jobcache.sqlite in the user data folder; "
             "'off': none).",
    )(func)


def _host_option(help_text: str) -> Callable[[F], F]:
    return click.option("--host", "hosts", multiple=True, metavar="HOST", shell_complete=_complete_hosts,
                        help=help_text)


def _select_options(func: F) -> F:
    func = click.option("-p", "--pattern", metavar="REGEX", help="The jobs in which some field matches REGEX.")(func)
    func = click.option("-i", "--index", "indices", type=click.IntRange(min=0), multiple=True, metavar="INDEX",
                        help="The job at INDEX on the host (as 'plams jobs list' shows it); repeatable.")(func)
    return func


def _open(cache: str | None) -> JobCache | None:
    """The cache, or ``None`` (and a message) when it is off."""
    path = resolve_cache_path(cache)
    if path is None:
        click.echo("The job cache is off (--cache off or PLAMS_JOBCACHE=off): nothing to do.", err=True)
        return None
    from plams_cli.jobcache import JobCache

    return JobCache(path)


def _spec(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for key, value in pairs:
        if key == "path" and value:
            value = os.path.abspath(os.path.expanduser(value))
        spec[key] = value
    return spec


def _need_selection(indices: Sequence[int], pattern: str | None) -> None:
    if not indices and not pattern:
        raise click.UsageError("choose the jobs with -i INDEX or --pattern REGEX")


def _default_hosts(hosts: Sequence[str]) -> list[str]:
    return list(hosts) or [local_hostname()]


def _warn(report: UpdateReport) -> None:
    for line in report.failures:
        click.echo(f"Warning: queue query failed: {line}", err=True)


# --- the group ------------------------------------------------------------------------------
@click.group("jobs", cls=OneLineErrorGroup)
def jobs_group() -> None:
    """The job cache: every job of every run, by host; and safe inspection of saved jobs.

    \b
    plams jobs list --pattern water       jobs whose fields match a regex
    plams jobs list --status running --update
    plams jobs show plams.123/job1        a saved job, without unpickling it
    plams jobs import plams.123           record the jobs of an older run
    plams jobs merge other.sqlite cluster another machine's cache

    Runs record their jobs in the cache as they go (PLAMS_JOBCACHE=off turns it off).
    """


@jobs_group.command("list")
@click.option("-p", "--pattern", metavar="REGEX", help="Only jobs in which some field matches REGEX (re.search).")
@_host_option("Only jobs on HOST; repeatable (default: every host).")
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in JobStatus]),
              help="Only jobs with this status; repeatable.")
@click.option("--short", is_flag=True, help="Only host, index, job_id and status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects (every field) on stdout.")
@click.option("--update", is_flag=True, help="Check this machine's jobs first (processes and queues).")
@_cache_option
@_errors
def list_command(pattern: str | None, hosts: tuple[str, ...], statuses: tuple[str, ...], short: bool,
                 as_json: bool, update: bool, cache: str | None) -> None:
    """List the recorded jobs, oldest change first.

    Columns that are empty for every job shown are left out; paths are shown relative
    to the current folder when that is shorter. The index is the job's position among
    its host's jobs, for -i in modify and delete.
    """
    from plams_cli.jobcache.job import compile_pattern
    from plams_cli.jobcache.table import is_literal, records_from_rows, required_text

    regex = compile_pattern(pattern)  # a bad one is an error before anything is read
    jc = _open(cache)
    if jc is None:
        return
    if update:
        _update(jc)
    exact = bool(pattern) and is_literal(pattern or "")
    # SQL keeps the rows holding the text every match holds; the regex checks those only
    literal = pattern if exact else (required_text(regex) if regex is not None else None)
    rows = jc.store.rows(hosts or None, statuses or None, literal, order="mtime")
    records = records_from_rows(rows, None if exact else regex)
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2, sort_keys=True) + "\n")
        return
    if not records:
        click.echo("No jobs." if jc.store.exists() else f"No jobs recorded yet ({jc.cache}).", err=True)
        return
    _print_table(records, short)


def _print_table(records: list[dict[str, Any]], short: bool) -> None:
    from plams_cli.jobcache.table import cell, plain_table, short_path, shown_columns

    cwd = os.getcwd()
    for record in records:
        for key in ("path", "submit"):
            if record[key]:
                record[key] = short_path(record[key], cwd)
    columns = shown_columns(records, short)
    if not sys.stdout.isatty():
        sys.stdout.write(plain_table(records, columns))
        return
    from rich.table import Table
    from rich.text import Text

    from plams_cli.cli.console import out

    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name == "index" else "left", overflow="fold")
    for record in records:
        table.add_row(*(Text(cell(record, n), style=_STATUS_STYLE.get(record["status"], "") if n == "status" else "")
                        for n in columns))
    out.print(table)


def _update(jc: JobCache) -> UpdateReport:
    jc.load()
    report = jc.update()
    jc.dump()
    _warn(report)
    return report


@jobs_group.command("add")
@click.argument("pairs", nargs=-1, required=True, type=KeyValue())
@click.option("--host", default=None, metavar="HOST", shell_complete=_complete_hosts,
              help="The host the job runs on (default: this machine).")
@_cache_option
@_errors
def add_command(pairs: tuple[tuple[str, str], ...], host: str | None, cache: str | None) -> None:
    """Add a job: KEY=VALUE... with keys job_id, program, path (required), input_fname,
    output_fname, status, submit, comment, kind, grid, pid_start.

    A job already recorded in the same folder on the same host is updated instead.
    """
    from plams_cli.jobcache import JobServer

    spec = _spec(pairs)
    if not spec.get("path"):
        raise UserError("a job needs path=FOLDER")
    jc = _open(cache)
    if jc is None:
        return
    hostname = host or local_hostname()
    job = JobServer(hostname).add(spec)
    row = {k: v for k, v in job.job_spec().items() if v is not None}
    if "status" not in spec:
        row.pop("status")  # an update of a recorded job keeps its status
    row["mtime"] = job.timestamp()
    jc.record(hostname, [row])
    click.echo(f"Recorded {job.path} on {hostname}", err=True)


@jobs_group.command("modify")
@_select_options
@click.argument("pairs", nargs=-1, required=True, type=KeyValue())
@_host_option("The host of the jobs; repeatable (default: this machine).")
@_cache_option
@_errors
def modify_command(indices: tuple[int, ...], pattern: str | None, pairs: tuple[tuple[str, str], ...],
                   hosts: tuple[str, ...], cache: str | None) -> None:
    """Change KEY=VALUE... of the chosen jobs; KEY= (empty) clears a field."""
    from plams_cli.jobcache.job import compile_pattern

    _need_selection(indices, pattern)
    compile_pattern(pattern)
    spec = _spec(pairs)
    jc = _open(cache)
    if jc is None:
        return
    jc.load()
    chosen = [job for host in _default_hosts(hosts) for job in jc.server(host).modify(spec, indices, pattern)]
    jc.dump()
    click.echo(f"Modified {len(chosen)} job(s)", err=True)


@jobs_group.command("delete")
@_select_options
@_host_option("The host of the jobs; repeatable (default: this machine).")
@click.option("--yes", is_flag=True, help="Do not ask (needed when stdin is not a terminal).")
@_cache_option
@_errors
def delete_command(indices: tuple[int, ...], pattern: str | None, hosts: tuple[str, ...], yes: bool,
                   cache: str | None) -> None:
    """Delete the chosen jobs from the cache (their folders are left alone)."""
    from plams_cli.jobcache.job import compile_pattern

    _need_selection(indices, pattern)
    compile_pattern(pattern)
    jc = _open(cache)
    if jc is None:
        return
    jc.load()
    servers = [jc.server(host) for host in _default_hosts(hosts)]
    count = sum(len(server.chosen(indices, pattern)) for server in servers)
    if count == 0:
        click.echo("No job matches: nothing deleted.", err=True)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {count} job(s) without --yes (stdin is not a terminal)")
        click.confirm(f"Delete {count} job(s) from the cache?", abort=True, err=True)
    for server in servers:
        server.delete(indices, pattern)
    jc.dump()
    click.echo(f"Deleted {count} job(s)", err=True)


@jobs_group.command("update")
@_cache_option
@_errors
def update_command(cache: str | None) -> None:
    """Check this machine's unknown, held, queueing and running jobs and save their statuses.

    A local job is its process (PID and start time); grid jobs are asked about in one
    queue query per grid. A query that fails leaves those statuses as they were.
    """
    jc = _open(cache)
    if jc is None:
        return
    report = _update(jc)
    skipped = f"; not checked: jobs on {', '.join(report.skipped_hosts)}" if report.skipped_hosts else ""
    click.echo(f"Checked {report.checked} job(s), {report.changed} changed{skipped}", err=True)


@jobs_group.command("merge")
@click.argument("other", type=click.Path(exists=True, dir_okay=False))
@click.argument("hostname")
@_cache_option
@_errors
def merge_command(other: str, hostname: str, cache: str | None) -> None:
    """Merge OTHER, another machine's cache file, calling that machine HOSTNAME.

    Jobs in the same folder (or, for grid jobs, with the same job id) are merged, the
    newer change winning.
    """
    from plams_cli.jobcache import JobCache

    theirs = JobCache(other, load=True)
    jc = _open(cache)
    if jc is None:
        return
    if os.path.realpath(theirs.cache) == os.path.realpath(jc.cache):
        raise UserError(f"{other} is the cache itself")
    jc.load()
    before = sum(len(s.jobs) for s in jc.job_servers.values())
    jc.merge(theirs, hostname)
    jc.dump()
    after = sum(len(s.jobs) for s in jc.job_servers.values())
    click.echo(f"Merged {other}: {after - before} new job(s)", err=True)


@jobs_group.command("import")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@_cache_option
@_errors
def import_command(folders: tuple[str, ...], cache: str | None) -> None:
    """Record the jobs of existing working folders (e.g. runs from before the cache) from their .job.json files."""
    from plams_cli.jobcache.importing import rows_from_folder

    rows: list[dict[str, Any]] = []
    for folder in folders:
        found, bad = rows_from_folder(folder)
        for path in bad:
            click.echo(f"Warning: skipped {path}: not a readable job summary", err=True)
        if not found:
            raise UserError(f"{os.path.abspath(folder)} holds no saved jobs (.job.json files)")
        rows += found
    jc = _open(cache)
    if jc is None:
        return
    jc.record(local_hostname(), rows)
    click.echo(f"Imported {len(rows)} job(s)", err=True)


@jobs_group.command("show")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@click.option("--unsafe", is_flag=True, help=_UNSAFE_HELP)
@_errors
def show_command(path: str, as_json: bool, unsafe: bool) -> None:
    """Show a saved job: PATH is a .dill file, a job folder or a working folder (a tree of its jobs).

    Reads the plain-data .job.json beside each .dill; never unpickles unless --unsafe.
    A .dill without its .job.json is described from its bytes (the classes and
    functions it refers to, its strings) without running anything.
    """
    from plams_cli.jobcache.inspect import describe_path

    described = _show_unsafe(path) if unsafe else describe_path(path)
    if as_json:
        sys.stdout.write(json.dumps(described, indent=2, sort_keys=True, default=repr) + "\n")
        return
    _print_described(described)


def _show_unsafe(path: str) -> dict[str, Any]:
    """Unpickle the job at ``path`` (a .dill or a job folder) and describe the live job."""
    from plams_cli.jobcache.inspect import job_files

    full = os.path.abspath(path)
    pickled = job_files(full)[1] if os.path.isdir(full) else full
    if pickled is None or not pickled.endswith(".dill") or not os.path.isfile(pickled):
        raise UserError(f"--unsafe loads one saved job: give its .dill file or job folder, not {full}")
    from plams_cli.core.pickling import read_job

    job = read_job(pickled)
    cls = type(job)
    settings = job.settings.as_dict() if hasattr(job.settings, "as_dict") else dict(job.settings)
    return {"kind": "live", "path": job.path, "pickle": pickled, "name": job.name,
            "class": f"{cls.__module__}.{cls.__qualname__}", "status": str(job.status),
            "settings": settings, "files": list(job.results.files),
            "children": [child.name for child in getattr(job, "children", None) or []]}


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _tree_lines(nodes: list[dict[str, Any]], prefix: str = "") -> list[str]:
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        cls = (node["class"] or "?").rsplit(".", 1)[-1]
        status = node["status"] or ("no summary" if node["pickle"] else "?")
        digest = (node["hash"] or "")[:8] or "-"
        lines.append(f"{prefix}{'└── ' if last else '├── '}{node['name']}  {cls}  {status}  "
                     f"{_fmt_duration(node['duration_s'])}  {digest}")
        lines += _tree_lines(node["children"], prefix + ("    " if last else "│   "))
    return lines


def _print_described(described: dict[str, Any]) -> None:
    # Data from a file, printed verbatim: rich would read "[bold]" in a value as markup.
    kind = described["kind"]
    echo = click.echo
    if kind == "tree":
        echo(described["path"])
        for line in _tree_lines(described["jobs"]):
            echo(line)
        return
    if kind == "pickle":
        echo(f"{described['path']}: a pickle without its .job.json, read without unpickling")
        echo("refers to (unpickling would import, and may call, these):")
        for name in described["globals"]:
            echo(f"  {name}")
        echo("strings:")
        for text in described["strings"]:
            echo(f"  {text!r}")
        if described["error"]:
            echo(f"damaged: {described['error']}")
        return
    data = described["summary"] if kind == "job" else described
    from plams_cli.jobcache.inspect import duration_s

    for key in ("name", "class", "status", "hash", "path", "error", "exit_code"):
        if data.get(key) not in (None, ""):
            echo(f"{key + ':':11}{data[key]}")
    if kind == "job":
        echo(f"{'duration:':11}{_fmt_duration(duration_s(data))}")
        echo(f"{'pickle:':11}{described['pickle'] or '-'}")
    if data.get("files"):
        echo(f"{'files:':11}{', '.join(map(str, data['files']))}")
    echo(f"{'settings:':11}{json.dumps(data.get('settings', {}), sort_keys=True, default=repr)}")
    if kind == "job" and described["children"]:
        echo("children:")
        for line in _tree_lines(described["children"]):
            echo(line)
