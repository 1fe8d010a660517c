"""``plams [OPTIONS] SCRIPT …``: the master script (the default command of ``plams``).

Runs job scripts in order, in one ``__main__`` namespace preloaded with the public names
of plams_cli, inside a fresh working folder; then waits for every job and calls
``finish()``. ``-l`` reuses the jobs of earlier runs, ``-r`` restarts a run in place (see
:mod:`plams_cli.cli._restart`).

Exit status: 0 when the scripts complete, 1 when one raises (its traceback, cut to the
user's frames, goes to stderr and the logfile), ``n`` for ``sys.exit(n)``, 2 for bad
input (nothing is created), 130 after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from plams_cli.cli.console import err, plams_errors

if TYPE_CHECKING:
    from plams_cli.cli._script import Script, ScriptModule
    from plams_cli.core.jobmanager import JobManager

__all__ = ["run_command", "VarAssign", "INTERRUPTED_EXIT"]

#: exit status after Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED_EXIT = 130


class VarAssign(click.ParamType):
    """``VAR=VALUE``: a Python name and a string (``-v``)."""

    name = "VAR=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        """Split ``VAR=VALUE`` at the first ``=``; ``VAR`` must be a Python identifier."""
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        name, sep, text = str(value).partition("=")
        if not sep:
            self.fail(f"{value!r} is not VAR=VALUE: it has no '='", param, ctx)
        if not name.isidentifier() or keyword.iskeyword(name):
            self.fail(f"{name!r} (in {value!r}) is not a valid Python variable name", param, ctx)
        return name, text


def _split_folder(path: str, folder: str) -> tuple[str, str]:
    """``(parent, name)`` of the working folder ``folder`` made in ``path``; checks the parent exists."""
    if not folder.strip() or os.path.basename(os.path.normpath(folder)) in ("", ".", ".."):
        raise click.BadParameter(f"{folder!r} does not name a folder", param_hint="'-f' / '--folder'")
    full = os.path.normpath(os.path.join(path, os.path.expanduser(folder)))
    parent, name = os.path.split(full)
    if not os.path.isdir(parent):
        raise click.BadParameter(
            f"cannot make working folder {full}: its parent folder {parent} does not exist",
            param_hint="'-f' / '--folder'",
        )
    return parent, name


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--path", type=click.Path(exists=True, file_okay=False, resolve_path=True), metavar="PATH",
              help="Where the working folder is made.  [default: current folder]")
@click.option("-f", "--folder", metavar="NAME",
              help="Working folder name; when taken, NAME.002, … is used.  [default: plams.<PID>]")
@click.option("-v", "--var", "variables", type=VarAssign(), multiple=True, metavar="VAR=VALUE",
              help="Set the global VAR to the string VALUE in the scripts (repeatable).")
@click.option("-l", "--load", "load_folders", multiple=True, metavar="FOLDER",
              type=click.Path(exists=True, file_okay=False, resolve_path=True),
              help="Load the jobs saved in FOLDER first, so identical jobs are reused, not rerun (repeatable).")
@click.option("-r", "--restart", is_flag=True,
              help="Restart in place: the folder of -f (default: the most recent one in PATH) is run "
                   "again and its finished jobs are reused.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="Run jobs in parallel, at most N at a time (default runner).  [default: one at a time]")
@click.option("-q", "--quiet", is_flag=True, help="No log lines, progress or summary on the screen (errors still).")
@click.version_option(None, "--version", package_name="plams-cli", prog_name="plams",
                      message="%(prog)s %(version)s")
@click.argument("scripts", nargs=-1, required=True, metavar="SCRIPT...",
                type=click.Path(exists=True, dir_okay=False, readable=True))
@plams_errors
def run_command(path: str | None, folder: str | None, variables: Sequence[tuple[str, str]],
                load_folders: Sequence[str], restart: bool, jobs: int | None, quiet: bool,
                scripts: Sequence[str]) -> None:
    """Run job scripts in a new working folder, in order and in one namespace.

    \b
    plams SCRIPT.plms                   run in ./plams.<PID>
    plams -l plams.123 SCRIPT.plms      reuse the finished jobs of plams.123
    plams -r -f plams.123 SCRIPT.plms   restart plams.123 in place
    plams -r SCRIPT.plms                restart the most recent working folder

    A restart moves NAME to NAME.res, runs the scripts in a fresh NAME reusing the
    finished jobs of NAME.res, moves the jobs it did not reuse into NAME and deletes
    NAME.res. A killed restart loses nothing: the next -r reuses both folders.

    Exit status: 0 done, 1 a script raised, n for sys.exit(n), 2 bad input, 130 Ctrl-C.
    """
    from plams_cli.cli._restart import find_latest, restart_target
    from plams_cli.cli._script import read_script

    # Everything that can be wrong with the input is found before anything is made.
    loaded_scripts = [read_script(script) for script in scripts]
    base = path or os.getcwd()
    parent, name = _split_folder(base, folder if folder is not None else f"plams.{os.getpid()}")
    restart_paths: tuple[str, str] | None = None
    if restart:
        if folder is None:
            latest = find_latest(base)
            if latest is None:
                raise click.BadParameter(
                    f"nothing to restart in {base}: no working folder (a folder with a logfile); name one with -f",
                    param_hint="'-r' / '--restart'",
                )
            name = latest
            err.print(f"Restarting the most recent working folder: {os.path.join(parent, name)}",
                      markup=False, highlight=False)
        restart_paths = restart_target(parent, name)
        if restart_paths is None:
            raise click.BadParameter(
                f"nothing to restart: {os.path.join(parent, name)} does not exist", param_hint="'-r' / '--restart'"
            )
    status = _MasterRun(loaded_scripts, parent, name, variables, load_folders, restart_paths, jobs, quiet).run()
    click.get_current_context().exit(status)


class _MasterRun:
    """One call of the master script, from the working folder to ``finish()``."""

    def __init__(self, scripts: list[Script], parent: str, name: str, variables: Sequence[tuple[str, str]],
                 load_folders: Sequence[str], restart: tuple[str, str] | None, jobs: int | None,
                 quiet: bool) -> None:
        self.scripts = scripts
        self.parent = parent
        self.name = name
        self.variables = variables
        self.load_folders = load_folders
        self.restart = restart
        self.jobs = jobs
        self.quiet = quiet
        self.manager: JobManager | None = None
        self.restart_loaded: list[Any] = []
        self.restart_bad: list[str] = []

    # --- set-up ----------------------------------------------------------------------
    def _configure(self) -> None:
        from plams_cli.core import logger
        from plams_cli.core.runtime import config
        from plams_cli.runners.local import JobRunner

        logger.set_stream("stderr")  # stdout is what the scripts print
        if self.quiet:
            config.log.stdout = 0
        if self.jobs:
            config.default_jobrunner = JobRunner(parallel=True, maxjobs=self.jobs)

    def _start(self) -> JobManager:
        from plams_cli.cli._restart import clear_trash, set_aside
        from plams_cli.core.logger import log
        from plams_cli.core.runtime import init

        moved_to = None
        if self.restart is not None:
            clear_trash(self.parent, self.name)
            moved_to = set_aside(*self.restart)
        manager = init(path=self.parent, folder=self.name, quiet=True)
        self.manager = manager
        log(f"Running in {manager.workdir}", 1)
        if os.path.basename(manager.workdir) != self.name:
            log(f"Folder {os.path.join(self.parent, self.name)} exists: working in {manager.workdir} instead", 0)
        if moved_to is not None:
            log(f"Restart: moved the previous {self.name} to {moved_to}", 1)
        self._keep_scripts(manager.workdir)
        return manager

    def _keep_scripts(self, workdir: str) -> None:
        """Copy each script into the working folder (a record of what ran)."""
        taken: set[str] = set()
        for script in self.scripts:
            stem, ext = os.path.splitext(os.path.basename(script.path))
            candidate, number = stem + ext, 1
            while candidate in taken or os.path.lexists(os.path.join(workdir, candidate)):
                number += 1
                candidate = f"{stem}.{number:03d}{ext}"
            taken.add(candidate)
            shutil.copy2(script.path, os.path.join(workdir, candidate))

    def _load(self, manager: JobManager) -> None:
        from plams_cli.core.logger import log
        from plams_cli.core.pickling import load_tree

        for folder in self.load_folders:
            jobs, bad = load_tree(folder, manager)
            log(f"Loaded {_plural(len(jobs), 'job')} from {folder} ({_plural(len(bad), 'unreadable file')})", 1)
        if self.restart is not None and os.path.isdir(self.restart[1]):
            jobs, bad = load_tree(self.restart[1], manager)
            self.restart_loaded, self.restart_bad = list(jobs.values()), bad
            log(f"Restart: loaded {_plural(len(jobs), 'job')} from {self.restart[1]} "
                f"({_plural(len(bad), 'unreadable file')})", 1)

    # --- the run ---------------------------------------------------------------------
    def run(self) -> int:
        """Do the whole run; return the exit status."""
        from plams_cli.cli._script import ScriptModule
        from plams_cli.cli.progress import Progress
        from plams_cli.core.runtime import finish, run_held

        self._configure()
        # Ctrl-C must reach the main thread as KeyboardInterrupt even when the parent
        # process started us with SIGINT ignored (as shells do for background jobs).
        in_main = threading.current_thread() is threading.main_thread()
        previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main else None
        try:
            manager = self._start()
            module = ScriptModule(self.variables)
            status: int | None = None
            with module.installed(), Progress(err, manager.status_counts, enabled=not self.quiet) as progress:
                try:
                    self._load(manager)
                    with run_held():  # a script's own finish() must not end the run
                        status = self._run_scripts(module)
                except KeyboardInterrupt:
                    status = INTERRUPTED_EXIT
                if status == INTERRUPTED_EXIT:
                    self._cancel()
                if self._wait(manager):
                    status = INTERRUPTED_EXIT
                progress.stop()
                self._settle(manager)
                finish()
            return status
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous_handler)

    def _run_scripts(self, module: ScriptModule) -> int:
        from plams_cli.cli._script import format_user_traceback
        from plams_cli.core.logger import log

        try:
            for script in self.scripts:  # a syntax error anywhere stops the run before any job
                script.compile()
            for script in self.scripts:
                module.run(script)
        except SystemExit as exc:
            return _exit_status(exc)
        except KeyboardInterrupt:
            return INTERRUPTED_EXIT
        except BaseException as exc:  # noqa: BLE001 - any error of the user's script ends the run with 1
            log(format_user_traceback(exc), 0)
            return 1
        return 0

    def _cancel(self) -> None:
        from plams_cli.core.logger import log
        from plams_cli.runners.local import cancel_all

        log("Interrupted: stopping running jobs and cancelling queued ones", 0)
        lines = cancel_all()
        stopped = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", "\n".join(lines))}
        lines += _stop_child_sessions(stopped)
        for line in lines:
            log(line, 0)

    def _wait(self, manager: JobManager) -> bool:
        """Wait for every job; Ctrl-C cancels them (returns True), a second Ctrl-C gives up waiting."""
        from plams_cli.core import logger

        try:
            manager.wait_all()
            return False
        except KeyboardInterrupt:
            self._cancel()
        try:
            manager.wait_all()
        except KeyboardInterrupt:
            logger.log("Interrupted again: not waiting for the jobs to end", 0)
            logger.close_logfile()
            sys.stderr.flush()
            os._exit(INTERRUPTED_EXIT)
        return True

    def _settle(self, manager: JobManager) -> None:
        from plams_cli.cli._restart import settle
        from plams_cli.core.logger import log

        if self.restart is None or not os.path.isdir(self.restart[1]):
            return
        res = self.restart[1]
        report = settle(manager, res, self.restart_loaded, self.restart_bad)
        if report.moved:
            log(f"Restart: moved {_plural(len(report.moved), 'finished job')} the run did not reuse "
                f"into {manager.workdir}", 1)
        if report.removed:
            log(f"Restart: removed {res}; every finished job is in {manager.workdir}", 1)
        else:
            log(f"Restart: kept {res}: {_plural(len(report.kept), 'saved job')} could not be moved into "
                f"{manager.workdir} (first: {report.kept[0]}); the next -r reuses them", 0)


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.print(str(code), markup=False, highlight=False)  # sys.exit("message"), as Python does
    return 1


def _stop_child_sessions(skip: set[int]) -> list[str]:
    """SIGTERM the process groups of runscripts still running as our children.

    ``cancel_all()`` misses a runscript whose ``wait()`` the Ctrl-C itself interrupted (a
    serial runner waits in the main thread); every runscript leads a session of its own,
    so a child that leads its process group is one.
    """
    import psutil

    lines = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if child.pid not in skip and os.getpgid(child.pid) == child.pid:
                cmd = child.cmdline()  # before the kill: a dead process has none
                os.killpg(child.pid, signal.SIGTERM)
                lines.append(f"stopped runscript {cmd[-1] if cmd else '?'} (pid {child.pid})")
    return lines


def _plural(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"

