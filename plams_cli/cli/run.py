"""``plams [OPTIONS] SCRIPT …``: the master script (the default command of ``plams``).

Runs job scripts in order, in one ``__main__`` namespace preloaded with the public names
of plams_cli, inside a fresh working folder; then waits for every job and calls
``finish()``. ``-l`` reuses the jobs of earlier runs, ``-r`` restarts a run in place. The
run itself is a :class:`~plams_cli.core.session.Session` (working folder, loading,
restart, waiting, cancelling, ``finish()``); this module keeps the options, the signal
wiring and what is shown.

Exit status: 0 when the scripts complete (whatever their jobs did, as in PLAMS), 1 when
one raises (its traceback, cut to the user's frames, goes to stderr and the logfile; a
syntax error is found before anything is made), ``n`` for ``sys.exit(n)``, 2 for bad
input (one line ``Error: …``; nothing is created), 130 after Ctrl-C, 143 after SIGTERM
(handled as Ctrl-C).

The run holds a lock on its working folder until it ends (see
:func:`plams_cli.core.workdir.lock_for_restart`), so ``-r`` never takes a folder in use.
"""

from __future__ import annotations

import contextlib
import errno
import keyword
import os
import signal
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from plams_cli.cli import console
from plams_cli.cli._paths import CheckedPath
from plams_cli.cli._usage import OneLineErrorCommand
from plams_cli.cli.console import plams_errors

if TYPE_CHECKING:
    from plams_cli.cli._script import Script, ScriptModule
    from plams_cli.core.session import Session

__all__ = ["run_command", "VarAssign", "INTERRUPTED_EXIT", "TERMINATED_EXIT"]

#: exit status after Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED_EXIT = 128 + signal.SIGINT
#: exit status after SIGTERM (128 + SIGTERM)
TERMINATED_EXIT = 128 + signal.SIGTERM
#: signals that stop a run as Ctrl-C does: running jobs stopped, queued ones cancelled
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the most verbose log level shown on the screen under the live display
_LIVE_SCREEN_LEVEL = 2


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
    from plams_cli.cli._grid_leftovers import stop_leftovers
    from plams_cli.cli._script import read_script
    from plams_cli.core.session import Session
    from plams_cli.core.workdir import find_latest
    from plams_cli.errors import FolderInUseError, NotRestartableError

    # Everything that can be wrong with the input is found before anything is made.
    loaded_scripts = [read_script(script) for script in scripts]
    base = path or os.getcwd()
    parent, name = _split_folder(base, folder if folder is not None else f"plams.{os.getpid()}")
    _check_writable(parent, path, folder)
    if restart and folder is None:
        latest = find_latest(base)
        if latest is None:
            raise click.BadParameter(
                f"nothing to restart in {base}: no working folder of an earlier plams run; name one with -f",
                param_hint="'-r' / '--restart'",
            )
        name = latest
    try:
        session = Session(parent, name, load=load_folders, restart=restart, jobs=jobs,
                          scripts=[script.path for script in loaded_scripts], leftovers=stop_leftovers)
    except NotRestartableError as exc:
        raise click.BadParameter(str(exc), param_hint="'-r' / '--restart'") from exc
    _compile(loaded_scripts)
    try:
        session.lock()
    except FolderInUseError as exc:  # a live run uses the folder
        raise click.UsageError(str(exc)) from exc
    if session.target is not None and folder is None:
        console.err.print(f"Restarting the most recent working folder: {session.target[0]}", markup=False,
                          highlight=False)
    try:
        status = _MasterRun(session, loaded_scripts, variables, quiet).run()
    finally:
        session.close()
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
    """One call of the master script: the scripts run inside ``session``, with what is shown on the way.

    The session does the run (folder, loading, restart, waiting, cancelling, ``finish()``);
    this adds the scripts' namespace, the live display, the signal wiring and the exit status.
    """

    def __init__(self, session: Session, scripts: list[Script], variables: Sequence[tuple[str, str]],
                 quiet: bool) -> None:
        self.session = session
        self.scripts = scripts
        self.variables = variables
        self.quiet = quiet

    @property
    def interrupt_status(self) -> int:
        """The exit status when the run is interrupted: 128 + the signal (SIGTERM makes it 143)."""
        return 128 + (self.session.signal or signal.SIGINT)

    def run(self) -> int:
        """Do the whole run; return the exit status."""
        from plams_cli.cli._script import ScriptModule
        from plams_cli.cli.progress import Progress
        from plams_cli.core import logger
        from plams_cli.core.lifecycle import StatusTally, observing
        from plams_cli.core.runtime import config

        logger.set_stream("stderr")  # stdout is what the scripts print
        if self.quiet:
            config.log.stdout = 0
        session = self.session
        # Ctrl-C and SIGTERM must reach the main thread as KeyboardInterrupt, even when the
        # parent process started us with SIGINT ignored (as shells do for background jobs).
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, session.on_signal) for sig in _STOP_SIGNALS} if in_main else {}
        try:
            try:
                session.start()
            except KeyboardInterrupt:
                return self.interrupt_status  # nothing started yet
            module = ScriptModule(self.variables)
            status: int | None = None
            with module.installed():
                tally = StatusTally()  # the live count follows the announced status changes …
                shown = not (self.quiet or console.surely_no_terminal(sys.stderr))  # (else rich is not imported)
                progress = Progress(console.err if shown else None, tally.counts, enabled=shown)
                # … when it is drawn: off a terminal nobody reads it, and it costs every job change
                with observing(tally) if progress.enabled else contextlib.nullcontext(), progress, \
                        _job_lines_off_screen(progress.enabled):
                    try:
                        module.put_folders_on_path(self.scripts)  # saved jobs' classes may live there
                        session.load()
                        status = self._run_scripts(module)
                    except KeyboardInterrupt:
                        status = None
                    if status is None:
                        status = self.interrupt_status
                        self._cancel()
                    if self._wait():
                        status = self.interrupt_status
                try:
                    session.end()
                except KeyboardInterrupt:
                    return self.interrupt_status
            self._report_failures()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _report_failures(self) -> None:
        """With ``-q``: one line on stderr when jobs crashed or failed (the summary is not shown)."""
        if not self.quiet:
            return
        counts = self.session.counts()
        crashed, failed = counts.get("crashed", 0), counts.get("failed", 0)
        if crashed or failed:
            workdir = self.session.manager.workdir if self.session.manager is not None else "?"
            click.echo(f"plams: {_plural(crashed, 'job')} crashed, {failed} failed "
                       f"(see {os.path.join(workdir, 'logfile')})", err=True)

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
        try:
            self.session.cancel()
        except KeyboardInterrupt:
            self._give_up()

    def _give_up(self) -> NoReturn:
        """A second interrupt: stop waiting for the jobs and exit at once."""
        from plams_cli.core import logger

        logger.log("Interrupted again: not waiting for the jobs to end", 0)
        logger.close_logfile()
        sys.stderr.flush()
        os._exit(self.interrupt_status)

    def _wait(self) -> bool:
        """Wait for the threads the scripts left and every job (:meth:`Session.wait`).

        Ctrl-C cancels the jobs (returns True): jobs the threads start after it are
        refused; a second Ctrl-C gives up waiting. SIGTERM counts as Ctrl-C.
        """
        try:
            self.session.wait()
            return False
        except KeyboardInterrupt:
            self._cancel()
        try:
            self.session.wait()
        except KeyboardInterrupt:
            self._give_up()
        return True


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    from plams_cli.core.logger import log

    log(str(code), 0)  # sys.exit("message"): shown as Python does, and kept in the logfile
    return 1


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


def _plural(number: int, word: str, words: str | None = None) -> str:
    return f"{number} {word if number == 1 else (words or word + 's')}"

