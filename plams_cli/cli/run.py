"""``plams [OPTIONS] SCRIPT …``: the master script (the default command of ``plams``).

Runs job scripts in order, in one ``__main__`` namespace preloaded with the public names
of plams_cli, inside a fresh working folder; then waits for every job and calls
``finish()``. ``-l`` reuses the jobs of earlier runs, ``-r`` restarts a run in place (see
:mod:`plams_cli.cli._restart`).

Exit status: 0 when the scripts complete, 1 when one raises (its traceback, cut to the
user's frames, goes to stderr and the logfile), ``n`` for ``sys.exit(n)``, 2 for bad
input (one line ``Error: …``; nothing is created), 130 after Ctrl-C, 143 after SIGTERM
(handled as Ctrl-C).
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
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from plams_cli.cli._usage import OneLineErrorCommand
from plams_cli.cli.console import err, plams_errors

if TYPE_CHECKING:
    from plams_cli.cli._script import Script, ScriptModule
    from plams_cli.core.jobmanager import JobManager

__all__ = ["run_command", "VarAssign", "INTERRUPTED_EXIT", "TERMINATED_EXIT"]

#: exit status after Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED_EXIT = 128 + signal.SIGINT
#: exit status after SIGTERM (128 + SIGTERM)
TERMINATED_EXIT = 128 + signal.SIGTERM
#: signals that stop a run as Ctrl-C does: running jobs stopped, queued ones cancelled
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the most verbose log level shown on the screen under the live display
_LIVE_SCREEN_LEVEL = 2


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


def _check_writable(parent: str, path: str | None, folder: str | None) -> None:
    """The working folder will be made in ``parent``: it must be writable (checked before anything is made)."""
    if os.access(parent, os.W_OK | os.X_OK):
        return
    message = f"cannot make a working folder in {parent}: it is not writable"
    if folder is not None and os.path.dirname(folder):
        raise click.BadParameter(message, param_hint="'-f' / '--folder'")
    if path is not None:
        raise click.BadParameter(message, param_hint="'-p' / '--path'")
    raise click.UsageError(message + " (choose another with -p)")


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


@click.command("run", cls=OneLineErrorCommand, context_settings={"help_option_names": ["-h", "--help"]})
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

    Only folders plams made are restarted; files you or the script put in NAME are
    kept, and the old logs are appended to NAME/logfile.previous.

    Exit status: 0 done, 1 a script raised, n for sys.exit(n), 2 bad input, 130 Ctrl-C,
    143 SIGTERM.
    """
    from plams_cli.cli._restart import NotRestartableError, find_latest, restart_target
    from plams_cli.cli._script import read_script

    # Everything that can be wrong with the input is found before anything is made.
    loaded_scripts = [read_script(script) for script in scripts]
    base = path or os.getcwd()
    parent, name = _split_folder(base, folder if folder is not None else f"plams.{os.getpid()}")
    _check_writable(parent, path, folder)
    restart_paths: tuple[str, str] | None = None
    if restart:
        if folder is None:
            latest = find_latest(base)
            if latest is None:
                raise click.BadParameter(
                    f"nothing to restart in {base}: no working folder of an earlier plams run; name one with -f",
                    param_hint="'-r' / '--restart'",
                )
            name = latest
        try:
            restart_paths = restart_target(parent, name)
        except NotRestartableError as exc:
            raise click.BadParameter(str(exc), param_hint="'-r' / '--restart'") from exc
        if folder is None:
            err.print(f"Restarting the most recent working folder: {restart_paths[0]}", markup=False,
                      highlight=False)
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
        #: the exit status when the run is interrupted (SIGTERM makes it 143)
        self.interrupt_status = INTERRUPTED_EXIT

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
        from plams_cli.cli._restart import clear_trash, mark_workdir, set_aside
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
        mark_workdir(manager.workdir, [script.path for script in self.scripts])
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
        # Ctrl-C and SIGTERM must reach the main thread as KeyboardInterrupt, even when the
        # parent process started us with SIGINT ignored (as shells do for background jobs).
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS} if in_main else {}
        try:
            try:
                manager = self._start()
            except KeyboardInterrupt:
                return self.interrupt_status  # nothing started yet
            module = ScriptModule(self.variables)
            status: int | None = None
            with module.installed():
                with Progress(err, manager.status_counts, enabled=not self.quiet) as progress, \
                        _job_lines_off_screen(progress.enabled):
                    try:
                        self._load(manager)
                        with run_held():  # a script's own finish() must not end the run
                            status = self._run_scripts(module)
                    except KeyboardInterrupt:
                        status = None
                    if status is None:
                        status = self.interrupt_status
                        self._cancel()
                    if self._wait(manager):
                        status = self.interrupt_status
                self._settle(manager)
                finish()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        """SIGINT or SIGTERM: stop the run as Ctrl-C does; the exit status will be 128 + ``signum``."""
        self.interrupt_status = 128 + signum
        raise KeyboardInterrupt

    def _run_scripts(self, module: ScriptModule) -> int | None:
        """Run the scripts; return the exit status, ``None`` when interrupted."""
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
            return None  # interrupted
        except BaseException as exc:  # noqa: BLE001 - any error of the user's script ends the run with 1
            log(format_user_traceback(exc), 0)
            return 1
        return 0

    def _cancel(self) -> None:
        from plams_cli.core.logger import log
        from plams_cli.runners.local import cancel_all

        reason = "" if self.interrupt_status == INTERRUPTED_EXIT else f" ({_signal_name(self.interrupt_status - 128)})"
        log(f"Interrupted{reason}: stopping running jobs and cancelling queued ones", 0)
        lines = cancel_all()
        stopped = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", "\n".join(lines))}
        lines += _stop_child_sessions(stopped)
        for line in lines:
            log(line, 0)

    def _wait(self, manager: JobManager) -> bool:
        """Wait for every job; Ctrl-C cancels them (returns True), a second Ctrl-C gives up waiting.

        SIGTERM counts as Ctrl-C.
        """
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
            os._exit(self.interrupt_status)
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
        if report.moved_other:
            log(f"Restart: moved {_plural(len(report.moved_other), 'other file or folder', 'other files and folders')}"
                f" of {res} into {manager.workdir}", 1)
        if report.removed:
            history = f"; its log is in {os.path.join(manager.workdir, 'logfile.previous')}" if report.logs else ""
            log(f"Restart: removed {res}; every finished job is in {manager.workdir}{history}", 1)
        else:
            log(f"Restart: kept {res}: {_plural(len(report.kept), 'entry', 'entries')} could not be moved into "
                f"{manager.workdir} (first: {report.kept[0]}); the next -r reuses them", 0)


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    from plams_cli.core.logger import log

    log(str(code), 0)  # sys.exit("message"): shown as Python does, and kept in the logfile
    return 1


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextlib.contextmanager
def _job_lines_off_screen(live: bool) -> Iterator[None]:
    """While the live display runs, keep job status lines (log level 3 and up) off the screen.

    The display says the same; the lines still go to the logfile. Messages of level 2 or
    less (errors, what the run does) are still shown, above the display. A level the
    script set meanwhile is left as it is.
    """
    from plams_cli.core.runtime import config

    if not live:
        yield
        return
    saved = config.log.get("stdout", 3)
    lowered = min(int(saved), _LIVE_SCREEN_LEVEL)
    config.log.stdout = lowered
    try:
        yield
    finally:
        if config.log.get("stdout") == lowered:
            config.log.stdout = saved


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


def _plural(number: int, word: str, words: str | None = None) -> str:
    return f"{number} {word if number == 1 else (words or word + 's')}"

