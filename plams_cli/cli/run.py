"""``plams [OPTIONS] SCRIPT …``: the master script (the default command of ``plams``).

Runs job scripts in order, in one ``__main__`` namespace preloaded with the public names
of plams_cli, inside a fresh working folder; then waits for every job and calls
``finish()``. ``-l`` reuses the jobs of earlier runs, ``-r`` restarts a run in place (see
:mod:`plams_cli.cli._restart`).

Exit status: 0 when the scripts complete (whatever their jobs did, as in PLAMS), 1 when
one raises (its traceback, cut to the user's frames, goes to stderr and the logfile; a
syntax error is found before anything is made), ``n`` for ``sys.exit(n)``, 2 for bad
input (one line ``Error: …``; nothing is created), 130 after Ctrl-C, 143 after SIGTERM
(handled as Ctrl-C).

The run holds a lock on its working folder until it ends (see
:func:`plams_cli.cli._restart.lock_for_restart`), so ``-r`` never takes a folder in use.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import keyword
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from plams_cli.cli._paths import CheckedPath
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
#: seconds the run waits for threads the scripts left before it says so
_THREAD_NOTICE_S = 0.5
#: longest the main thread waits without looking at signals another thread received
_SIGNAL_CHECK_S = 0.1


class VarAssign(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.4 on
    """``VAR=VALUE``: a Python name and a string (``-v``)."""

    name = "VAR=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        """Split ``VAR=VALUE`` at the first ``=``; ``VAR`` must be a Python identifier."""
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep:
            self.fail(f"{value!r} is not VAR=VALUE: it has no '='", param, ctx)
        if not name.isidentifier() or keyword.iskeyword(name):
            self.fail(f"{name!r} (in {value!r}) is not a valid Python variable name", param, ctx)
        return name, text


def _check_writable(parent: str, path: str | None, folder: str | None) -> None:
    """The working folder will be made in ``parent``: it must be writable (checked before anything is made).

    Permissions are checked first; then a folder is made and removed at once, as the
    permissions do not tell everything (root may write anywhere, but not in ``/proc`` nor on a
    read-only file system).
    """
    if os.access(parent, os.W_OK | os.X_OK):
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".plams-probe.", dir=parent))
            return
        except OSError as exc:
            reason = "its file system takes no new folders" if exc.errno == errno.ENOENT else exc.strerror or exc
            message = f"cannot make a working folder in {parent}: {reason}"
    else:
        message = f"cannot make a working folder in {parent}: it is not writable"
    if folder is not None and os.path.dirname(folder):
        raise click.BadParameter(message, param_hint="'-f' / '--folder'")
    if path is not None:
        raise click.BadParameter(message, param_hint="'-p' / '--path'")
    raise click.UsageError(message + " (choose another with -p)")


def _split_folder(path: str, folder: str) -> tuple[str, str]:
    """``(parent, name)`` of the working folder ``folder`` made in ``path``; checks the parent exists."""
    hint = "'-f' / '--folder'"
    if not folder.strip() or os.path.basename(os.path.normpath(folder)) in ("", ".", ".."):
        raise click.BadParameter(f"{folder!r} does not name a folder", param_hint=hint)
    if any(unicodedata.category(char) == "Cc" for char in folder):
        raise click.BadParameter(f"{folder!r} holds a control character (a newline, a tab, …)", param_hint=hint)
    full = os.path.normpath(os.path.join(path, os.path.expanduser(folder)))
    parent, name = os.path.split(full)
    try:
        os.stat(parent)
    except OSError as exc:
        reason = "does not exist" if exc.errno == errno.ENOENT else f"cannot be used: {exc.strerror}"
        raise click.BadParameter(f"cannot make working folder {full}: its parent folder {parent} {reason}",
                                 param_hint=hint) from None
    if not os.path.isdir(parent):
        raise click.BadParameter(f"cannot make working folder {full}: {parent} is not a folder", param_hint=hint)
    try:
        longest = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if len(os.fsencode(name)) + len(".002") > longest:
        raise click.BadParameter(f"the name {name[:20]!r}… is too long for a folder: at most "
                                 f"{longest - len('.002')} bytes", param_hint=hint)
    return parent, name


@click.command("run", cls=OneLineErrorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--path", type=CheckedPath(file_okay=False, resolve_path=True), metavar="PATH",
              help="Where the working folder is made.  [default: current folder]")
@click.option("-f", "--folder", metavar="NAME",
              help="Working folder name; when taken, NAME.002, … is used.  [default: plams.<PID>]")
@click.option("-v", "--var", "variables", type=VarAssign(), multiple=True, metavar="VAR=VALUE",
              help="Set the global VAR to the string VALUE in the scripts (repeatable).")
@click.option("-l", "--load", "load_folders", multiple=True, metavar="FOLDER",
              type=CheckedPath(file_okay=False, resolve_path=True),
              help="Load the jobs saved in FOLDER first, so identical jobs are reused, not rerun (repeatable).")
@click.option("-r", "--restart", is_flag=True,
              help="Restart in place: the folder of -f (default: the most recent one in PATH) is run "
                   "again and its finished jobs are reused.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="Run jobs in parallel, at most N at a time (default runner).  [default: one at a time]")
@click.option("-q", "--quiet", is_flag=True,
              help="No log lines, progress or summary on the screen (errors, and a line if jobs crashed or "
                   "failed, still).")
@click.version_option(None, "--version", package_name="plams-cli", prog_name="plams",
                      message="%(prog)s %(version)s")
@click.argument("scripts", nargs=-1, required=True, metavar="SCRIPT...",
                type=CheckedPath(dir_okay=False, readable=True))
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

    Only folders plams made are restarted, never one a live run uses; files you or the
    script put in NAME are kept, and the old logs are appended to NAME/logfile.previous.

    Exit status: 0 done, 1 a script raised, n for sys.exit(n), 2 bad input, 130 Ctrl-C,
    143 SIGTERM.
    """
    from plams_cli.cli._restart import NotRestartableError, find_latest, lock_for_restart, restart_target
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
    _compile(loaded_scripts)
    locks: list[int] = []
    if restart_paths is not None:
        try:
            locks = lock_for_restart(*restart_paths)
        except NotRestartableError as exc:  # a live run uses the folder
            raise click.UsageError(str(exc)) from exc
        if folder is None:
            err.print(f"Restarting the most recent working folder: {restart_paths[0]}", markup=False,
                      highlight=False)
    master = _MasterRun(loaded_scripts, parent, name, variables, load_folders, restart_paths, jobs, quiet)
    master.locks = locks
    try:
        status = master.run()
    finally:
        for fd in master.locks:
            with contextlib.suppress(OSError):
                os.close(fd)
    click.get_current_context().exit(status)


def _compile(scripts: Sequence[Script]) -> None:
    """Compile every script; a syntax error ends the call with status 1 before anything is made."""
    from plams_cli.cli._script import format_user_traceback

    for script in scripts:
        try:
            script.compile()
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes, before Python 3.12
            click.echo(format_user_traceback(exc), err=True)
            click.get_current_context().exit(1)


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
        #: descriptors holding the locks of the folders this run uses (closed when it ends)
        self.locks: list[int] = []

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
        clear_trash(self.parent)  # what a killed delete left
        if self.restart is not None:
            moved_to = set_aside(*self.restart)
        manager = init(path=self.parent, folder=self.name, quiet=True)
        self.manager = manager
        lock = mark_workdir(manager.workdir, [script.path for script in self.scripts])
        if lock is not None:
            self.locks.append(lock)
        log(f"Running in {manager.workdir}", 1)
        if os.path.basename(manager.workdir) != self.name:
            taken = os.path.join(self.parent, self.name)
            kind = "Folder" if os.path.isdir(taken) else "A file named"
            log(f"{kind} {taken} exists: working in {manager.workdir} instead", 0)
        if moved_to is not None:
            log(f"Restart: moved the previous {self.name} to {moved_to}", 1)
        if self.restart is not None and os.path.isdir(self.restart[1]):
            from plams_cli.cli._grid_leftovers import stop_leftovers

            for level, line in stop_leftovers(self.restart[1]):
                log(line, level)
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
        from plams_cli.core.lifecycle import StatusTally, observing
        from plams_cli.core.runtime import run_held

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
                tally = StatusTally()  # the live count follows the announced status changes
                with observing(tally), Progress(err, tally.counts, enabled=not self.quiet) as progress, \
                        _job_lines_off_screen(progress.enabled):
                    with run_held():  # a script's own finish() (or its threads') must not end the run
                        before = set(threading.enumerate())
                        try:
                            self._load(manager)
                            status = self._run_scripts(module)
                        except KeyboardInterrupt:
                            status = None
                        if status is None:
                            status = self.interrupt_status
                            self._cancel()
                        if self._wait(manager, before):
                            status = self.interrupt_status
                status = self._end(manager, status)
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _wait_for_threads(self, before: set[threading.Thread]) -> None:
        """Wait for the non-daemon threads the scripts started and left running.

        Python waits for them before it exits; they may still run jobs, which must
        belong to this run, so the run waits for them before it ends (the live display
        still shows). Job threads of plams (named ``plams-…``) are waited for as jobs.
        """
        from plams_cli.core.logger import log

        # Not join() nor is_alive(): in Python < 3.12 a KeyboardInterrupt inside them can
        # mark a running thread as ended (gh-90882); a thread leaves enumerate() itself.
        started = time.monotonic()
        said = False
        while True:
            late = [thread for thread in threading.enumerate()
                    if thread not in before and not thread.daemon and thread is not threading.current_thread()
                    and not thread.name.startswith("plams-")]
            if not late:
                return
            if not said and time.monotonic() - started > _THREAD_NOTICE_S:
                said = True
                names = ", ".join(repr(thread.name) for thread in late)
                log(f"The scripts ended; waiting for {_plural(len(late), 'thread')} they started: {names}", 1)
            time.sleep(0.02)  # short: a signal another thread received is seen when it ends

    def _end(self, manager: JobManager, status: int) -> int:
        """Settle a restart and call ``finish()``; Ctrl-C meanwhile gives the interrupt status."""
        from plams_cli.core import logger
        from plams_cli.core.runtime import config, finish

        try:
            self._settle(manager)
            finish()
        except KeyboardInterrupt:
            for sig in _STOP_SIGNALS:  # no second interrupt while saying so
                with contextlib.suppress(ValueError):
                    signal.signal(sig, signal.SIG_IGN)
            reason = self._reason()
            res = self.restart[1] if self.restart is not None else None
            rest = (f"; {res} is kept and the next -r finishes the restart"
                    if res is not None and os.path.isdir(res) else "")
            logger.log(f"Interrupted{reason} while ending the run: the finished jobs are saved{rest}", 0)
            logger.close_logfile()
            config.init = False
            return self.interrupt_status
        self._report_failures(manager)
        return status

    def _report_failures(self, manager: JobManager) -> None:
        """With ``-q``: one line on stderr when jobs crashed or failed (the summary is not shown)."""
        if not self.quiet:
            return
        counts = manager.status_counts()
        crashed, failed = counts.get("crashed", 0), counts.get("failed", 0)
        if crashed or failed:
            click.echo(f"plams: {_plural(crashed, 'job')} crashed, {failed} failed "
                       f"(see {os.path.join(manager.workdir, 'logfile')})", err=True)

    def _reason(self) -> str:
        """``""`` after Ctrl-C, ``" (SIGTERM)"`` after SIGTERM."""
        if self.interrupt_status == INTERRUPTED_EXIT:
            return ""
        return f" ({_signal_name(self.interrupt_status - 128)})"

    def _on_signal(self, signum: int, frame: object) -> None:
        """SIGINT or SIGTERM: stop the run as Ctrl-C does; the exit status will be 128 + ``signum``.

        The KeyboardInterrupt of a SIGTERM says so: a job it stops is "interrupted (SIGTERM)".
        """
        self.interrupt_status = 128 + signum
        raise KeyboardInterrupt() if signum == signal.SIGINT else KeyboardInterrupt(_signal_name(signum))

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
        """Stop running jobs (SIGTERM, SIGKILL after a grace period) and cancel queued ones.

        A second interrupt while runscripts get their grace period kills them at once; one
        at any other moment gives up waiting (see :meth:`_give_up`).
        """
        from plams_cli.core.logger import log
        from plams_cli.runners.local import cancel_all

        log(f"Interrupted{self._reason()}: stopping running jobs and cancelling queued ones", 0)
        try:
            lines = [str(record) for record in cancel_all()]
            stopped = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", "\n".join(lines))}
            lines += _stop_child_sessions(stopped)
        except KeyboardInterrupt:
            self._give_up()
        for line in lines:
            log(line, 0)

    def _give_up(self) -> NoReturn:
        """A second interrupt: stop waiting for the jobs and exit at once."""
        from plams_cli.core import logger

        logger.log("Interrupted again: not waiting for the jobs to end", 0)
        logger.close_logfile()
        sys.stderr.flush()
        os._exit(self.interrupt_status)

    def _wait(self, manager: JobManager, before: set[threading.Thread]) -> bool:
        """Wait for the threads the scripts left (see :meth:`_wait_for_threads`) and every job.

        Ctrl-C cancels the jobs (returns True): jobs the threads start after it are
        refused; a second Ctrl-C gives up waiting. SIGTERM counts as Ctrl-C.
        """
        try:
            self._wait_for_threads(before)
            _wait_all(manager)
            return False
        except KeyboardInterrupt:
            self._cancel()
        try:
            self._wait_for_threads(before)
            _wait_all(manager)
        except KeyboardInterrupt:
            self._give_up()
        return True

    def _settle(self, manager: JobManager) -> None:
        from plams_cli.cli._restart import settle
        from plams_cli.core.logger import log

        if self.restart is None or not os.path.isdir(self.restart[1]):
            return
        res = self.restart[1]
        report = settle(manager, res, self.restart_loaded, self.restart_bad)
        if report.dropped:
            names = ", ".join(os.path.relpath(path, res) for path in report.dropped[:5])
            more = ", …" if len(report.dropped) > 5 else ""
            log(f"Restart: dropped {_plural(len(report.dropped), 'finished job')} of {res} that this run replaced "
                f"with a changed job of the same name ({names}{more})", 1)
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
                f"{manager.workdir} (first: {report.kept[0]}); the next -r loads its finished jobs again", 0)


def _wait_all(manager: JobManager) -> None:
    """``manager.wait_all()``, during which Ctrl-C and SIGTERM are seen within a fraction of a second.

    The kernel hands a signal to any thread of the process. Python runs the handler in the
    main thread, but only once that thread runs Python code again: a wait without a
    timeout would sleep on until some job ends. So a helper thread waits, and the main
    thread waits for it in short slices.
    """
    done = threading.Event()

    def wait() -> None:
        manager.wait_all()
        done.set()

    from plams_cli.runners.local import signals_to_main_thread

    with signals_to_main_thread():
        threading.Thread(target=wait, name="plams-wait-all", daemon=True).start()
    while not done.wait(_SIGNAL_CHECK_S):
        pass


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
    """Stop the process groups of runscripts still running as our children (SIGTERM, then SIGKILL).

    ``cancel_all()`` misses a runscript whose ``wait()`` the Ctrl-C itself interrupted (a
    serial runner waits in the main thread); every runscript leads a session of its own,
    so a child that leads its process group is one. Groups still alive
    :data:`~plams_cli.runners.local.STOP_GRACE_S` after SIGTERM get SIGKILL.
    """
    import psutil

    from plams_cli.runners.local import stop_process_groups

    groups: dict[int, Callable[[], bool]] = {}
    names: dict[int, str] = {}
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if child.pid not in skip and os.getpgid(child.pid) == child.pid:
                cmd = child.cmdline()  # before the kill: a dead process has none
                names[child.pid] = cmd[-1] if cmd else "?"
                groups[child.pid] = functools.partial(_child_running, child)
    done = stop_process_groups(groups) if groups else {}
    return [f"stopped runscript {names[pid]} (pid {pid}): {how}" for pid, how in done.items()]


def _child_running(child: Any) -> bool:
    """Whether the child process ``child`` (a psutil.Process) runs.

    Never reaps it: a job thread may be waiting for it, and would then read exit code 0.
    """
    import psutil

    try:
        return bool(child.is_running() and child.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _plural(number: int, word: str, words: str | None = None) -> str:
    return f"{number} {word if number == 1 else (words or word + 's')}"

