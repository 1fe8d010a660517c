"""A grid's settings branch: where it comes from, and what :class:`GridConfig` makes of it.

Settings branch of a grid (``gridrunner.<name>`` in the YAML defaults)
-------------------------------------------------------------------------
``workdir``, ``output``, ``error``, ``jobname``
    Submit flags for the working folder, the scheduler's own stdout/stderr file and the job
    name (``null``: not passed).
``commands.submit``, ``commands.check``, ``commands.cancel``
    Argument lists (a string is split as a shell would). In ``check`` and ``cancel`` an
    element ``"{ids}"`` becomes one argument per job id and ``"{ids,}"`` one argument
    with the ids joined by commas.
``commands.getid``, ``commands.running``, ``commands.accounting``
    Parsers: a back-end name (``slurm`` means the ``getid`` of
    :mod:`plams_cli.runners.grid.slurm`, also reachable as ``plams_cli.runners.slurm``,
    and so on), ``"package.module:function"``, or, from Python, a callable.
``special``
    Run flags with their own spelling: ``queue: "-p "`` makes ``queue='short'`` into
    ``-p short``; ``memory: "--mem="`` makes ``memory=4G`` into ``--mem=4G``.
``exitcode_grace_s``, ``query_timeout_s``, ``submit_timeout_s``
    How long a job that left the queue may take to show its exit-code file (shared
    file systems cache directory listings), and the time limits of the commands.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plams_cli.defaults import load_defaults
from plams_cli.errors import GridError, UnknownGridError

__all__ = ["GridConfig", "grid_definitions", "grid_settings", "resolve_parser", "flags_from_runflags",
           "expand_ids", "takes_one_argument"]


def grid_definitions() -> dict[str, dict[str, Any]]:
    """All grids known from the YAML defaults (packaged and the user's), by name."""
    grids = load_defaults().get("gridrunner") or {}
    if not isinstance(grids, dict):
        raise GridError("the 'gridrunner' section of the defaults must be a mapping")
    return {str(k): v for k, v in grids.items() if isinstance(v, dict)}


def grid_settings(name: str) -> dict[str, Any]:
    """The settings branch of grid ``name``.

    Raises
    ------
    UnknownGridError
        No grid of that name; the message lists the valid ones.
    """
    grids = grid_definitions()
    if name not in grids:
        close = difflib.get_close_matches(name, list(grids))
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownGridError(
            f"no grid named {name!r}; valid names: {', '.join(sorted(grids)) or 'none'}, "
            f"or 'auto'.{hint}"
        )
    return grids[name]


def plain(value: Any) -> Any:
    """A deep copy of nested mappings as plain dicts (callables kept as they are)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _argv(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str | int) for v in value):
        return [str(v) for v in value]
    raise GridError(f"grid setting commands.{what} must be a list of arguments or a string")


def resolve_parser(spec: Any, role: str) -> Callable[..., Any]:
    """Turn a parser named in the settings into the function.

    Parameters
    ----------
    spec
        A callable; a back-end name such as ``"slurm"`` (the function ``role`` of
        :mod:`plams_cli.runners.grid.slurm`); or ``"package.module:function"``.
    role
        ``getid``, ``running`` or ``accounting``.

    Raises
    ------
    GridError
        The name leads to no function.
    """
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    if not isinstance(spec, str) or not spec:
        raise GridError(f"grid setting commands.{role} must name a parser")
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        module_name, attribute = f"plams_cli.runners.grid.{spec}", role
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise GridError(f"commands.{role}: cannot find parser {spec!r} ({exc})") from exc
    if not callable(function):
        raise GridError(f"commands.{role}: {spec!r} is not a function")
    return function  # type: ignore[no-any-return]


def takes_one_argument(function: Callable[..., Any]) -> bool:
    """PLAMS's own parsers take the command output only; ours take more."""
    try:
        params = [
            p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


def _split_prefix(prefix: str, value: str) -> list[str]:
    """``"-p "`` + ``short`` -> ``["-p", "short"]``; ``"-l mem="`` + ``4gb`` -> ``["-l", "mem=4gb"]``."""
    tokens = prefix.split()
    if not tokens:
        return [value]
    if prefix[-1].isspace():
        return [*tokens, value]
    return [*tokens[:-1], tokens[-1] + value]


def flags_from_runflags(runflags: Mapping[str, Any], special: Mapping[str, str]) -> list[str]:
    """Submit flags from run flags, as PLAMS builds them, but as an argument list.

    Keys sorted; a key in ``special`` is spelled by its prefix (glued to the value unless
    the prefix ends with a space); any other key becomes ``-key value``; ``True`` gives a
    bare ``-key``; ``None``, ``False`` and nested mappings are left out.
    """
    args: list[str] = []
    for key in sorted(runflags, key=str):
        value = runflags[key]
        if value is None or value is False or isinstance(value, Mapping) or callable(value):
            continue
        if key in special and special[key] is not None:
            prefix = str(special[key])
            if value is True:
                args.extend(prefix.split())
            else:
                args.extend(_split_prefix(prefix, str(value)))
        elif value is True:
            args.append(f"-{key}")
        else:
            args.extend([f"-{key}", str(value)])
    return args


def expand_ids(template: Sequence[str], ids: Sequence[str]) -> list[str]:
    """``template`` with ``{ids}`` (one argument per id), ``{ids,}`` (comma-joined) or ``{id}`` filled in."""
    argv: list[str] = []
    for arg in template:
        if arg == "{ids}":
            argv.extend(ids)
        elif "{ids,}" in arg:
            argv.append(arg.replace("{ids,}", ",".join(ids)))
        elif "{id}" in arg:
            argv.append(arg.replace("{id}", ids[0]))
        else:
            argv.append(arg)
    return argv


@dataclass(frozen=True)
class GridConfig:
    """A grid's settings branch, checked and resolved: argument lists, parsers, time limits.

    Build it with :meth:`from_settings`; ``settings`` keeps the plain branch.
    """

    name: str
    settings: dict[str, Any]
    submit_argv: list[str]
    check_argv: list[str]
    #: PLAMS's grids have no cancel command: without one, jobs cannot be cancelled
    cancel_argv: list[str] | None
    getid: Callable[..., Any]
    running: Callable[..., Any]
    accounting: Callable[..., Any] | None
    query_timeout_s: float
    submit_timeout_s: float
    grace_s: float

    @classmethod
    def from_settings(cls, name: str, branch: Mapping[str, Any]) -> GridConfig:
        """Check and resolve the settings branch ``branch`` of grid ``name``.

        Raises
        ------
        GridError
            A command is missing or malformed, or a parser cannot be found.
        """
        settings: dict[str, Any] = plain(branch)
        commands = settings.get("commands") or {}
        for key in ("submit", "check", "getid", "running"):
            if not commands.get(key):
                raise GridError(
                    f"grid {name!r} has no commands.{key}; see 'plams grid show slurm' for a complete grid"
                )
        accounting = commands.get("accounting")
        return cls(
            name=name,
            settings=settings,
            submit_argv=_argv(commands["submit"], "submit"),
            check_argv=_argv(commands["check"], "check"),
            cancel_argv=_argv(commands["cancel"], "cancel") if commands.get("cancel") else None,
            getid=resolve_parser(commands["getid"], "getid"),
            running=resolve_parser(commands["running"], "running"),
            accounting=resolve_parser(accounting, "accounting") if accounting else None,
            query_timeout_s=float(settings.get("query_timeout_s", 30)),
            submit_timeout_s=float(settings.get("submit_timeout_s", 120)),
            grace_s=float(settings.get("exitcode_grace_s", 10)),
        )

    def submit_command(
        self, script: str, workdir: str, log: str | None, runflags: Mapping[str, Any], jobname: str
    ) -> list[str]:
        """The argument list that submits ``script`` (a file name in ``workdir``)."""
        s = self.settings
        argv = list(self.submit_argv)
        if s.get("workdir"):
            argv += [*str(s["workdir"]).split(), workdir]
        if s.get("jobname"):
            argv += [*str(s["jobname"]).split(), jobname]
        if log and s.get("output"):
            argv += [*str(s["output"]).split(), log]
        if log and s.get("error"):
            argv += [*str(s["error"]).split(), log]
        argv += flags_from_runflags(runflags or {}, s.get("special") or {})
        argv.append(script)
        return argv

    def cancel_command(self, ids: Sequence[str]) -> list[str] | None:
        """The argument list that cancels the jobs ``ids`` (``scancel 12 13``); ``None`` when the grid has none."""
        return expand_ids(self.cancel_argv, list(ids)) if self.cancel_argv is not None else None

    def parse_id(self, stdout: str, stderr: str) -> str | None:
        """The job id the submit command printed (PLAMS's one-argument parsers get stdout only)."""
        job_id = self.getid(stdout) if takes_one_argument(self.getid) else self.getid(stdout, stderr)
        return str(job_id).strip() if job_id else None
