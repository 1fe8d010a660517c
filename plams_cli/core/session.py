"""``Session``: one run of jobs in a working folder, from making the folder to ``finish()``.

The ``plams`` command runs its scripts inside a session; Python code may do the same::

    with Session(path=".", folder="calc", restart=True):
        ShellJob(name="a", runscript="echo a").run()

Entering a session makes the working folder (``init()``), writes and locks its marker
(:mod:`plams_cli.core.workdir`), and loads the jobs of earlier runs (``load``) so identical
jobs are reused, not rerun. With ``restart=True`` the folder is restarted in place (see
:mod:`plams_cli.core.restart`): it is set aside as ``NAME.res``, its finished jobs are loaded,
and at the end what the new run did not reproduce moves back. Leaving the session waits for
every job (and the threads started inside it), settles the restart and calls ``finish()``;
Ctrl-C inside it cancels the jobs first. ``finish()`` called inside a session only waits.

The steps are public too (:meth:`Session.start`, :meth:`~Session.load`, :meth:`~Session.cancel`,
:meth:`~Session.wait`, :meth:`~Session.end`, :meth:`~Session.close`), for callers such as the
``plams`` command that put their own work (a live display, the scripts) between them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Container, Iterable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from plams_cli.core import logger
from plams_cli.core import restart as _restart
from plams_cli.core.cache_recorder import hurry_recording
from plams_cli.core.logger import log
from plams_cli.core.workdir import clear_trash, find_latest, lock_for_restart, mark_workdir
from plams_cli.errors import NotRestartableError, SessionError

if TYPE_CHECKING:
    from plams_cli.core.jobindex import SavedJob
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job
    from plams_cli.core.restart import SettleReport

__all__ = ["Session", "Leftovers"]

#: the garbage collector's first two thresholds during a session at least: new objects between
#: collections of the young, and those collections between two of the objects that outlived one
GC_THRESHOLD = (10_000, 100)
#: what a restart does about work the killed run left running: ``NAME.res`` and the folders of
#: its finished jobs -> log lines ``(level, text)``
Leftovers = Callable[[str, Container[str]], Iterable[tuple[int, str]]]
#: seconds the run waits for threads started inside it before it says so
_THREAD_NOTICE_S = 0.5
#: longest the main thread waits without looking at signals another thread received
_SIGNAL_CHECK_S = 0.1


class Session:
    """One run of jobs in a fresh working folder; a context manager.

    Parameters
    ----------
    path
        Where the working folder is made (default: the current folder).
    folder
        Its name (default ``plams_workdir``); when taken, ``folder.002``, … is used. With
        ``restart``, the folder to restart (default: the most recent one in ``path``).
    load
        Folders of earlier runs whose saved jobs are loaded first, so identical jobs are
        reused, not rerun.
    restart
        Restart ``folder`` in place: run in a fresh folder of the same name, reusing the
        finished jobs of the old one, and keep every finished job and file in it.
    jobs
        Run jobs in parallel, at most ``jobs`` at a time, with a runner of the session's
        own (the default runner is put back at the end); ``None``: the default runner.
    scripts
        Files copied into the working folder as a record of what ran (and named in its marker).
    leftovers
        Called with ``NAME.res`` when a restart begins (its jobs loaded), to deal with work
        the killed run left running (e.g. grid jobs still queued), and with the folders of
        the finished jobs loaded from it, which hold none; returns log lines ``(level, text)``.

    Raises
    ------
    NotRestartableError
        ``restart`` and there is nothing to restart, or not a plams working folder
        (nothing was changed).
    """

    def __init__(self, path: str | None = None, folder: str | None = None, *, load: Iterable[str] = (),
                 restart: bool = False, jobs: int | None = None, scripts: Iterable[str] = (),
                 leftovers: Leftovers | None = None) -> None:
        self.path = os.path.abspath(os.path.expanduser(path)) if path else os.getcwd()
        if restart and folder is None:
            folder = find_latest(self.path)
            if folder is None:
                raise NotRestartableError(f"nothing to restart in {self.path}: no working folder of an earlier "
                                          "plams run")
        self.folder = folder if folder is not None else "plams_workdir"
        self.load_folders = tuple(load)
        self.jobs = jobs
        self.scripts = tuple(os.path.abspath(script) for script in scripts)
        self.leftovers = leftovers
        #: ``(NAME, NAME.res)`` of a restart, absolute; ``None`` when not restarting
        self.target: tuple[str, str] | None = _restart.restart_target(self.path, self.folder) if restart else None
        #: the run's job manager, once started
        self.manager: JobManager | None = None
        #: the signal that interrupted the run (see :meth:`on_signal`), if any
        self.signal: int | None = None
        #: what settling the restart did (after :meth:`end`)
        self.settled: SettleReport | None = None
        self._restart_loaded: list[Job | SavedJob] = []
        self._restart_unreadable: list[str] = []
        self._locks: list[int] = []
        self._locked = False
        self._hold: contextlib.AbstractContextManager[None] | None = None
        self._runner: tuple[Any, Any] | None = None  # (the session's runner, the one it replaced)
        self._threads: set[threading.Thread] = set()
        self._shielded = False
        self._frozen = False  # whether load() froze the garbage collector's view (gc.freeze)
        self._gc_threshold: tuple[int, int, int] | None = None  # the collector's thresholds before start()

    def __repr__(self) -> str:
        where = self.manager.workdir if self.manager is not None else os.path.join(self.path, self.folder)
        return f"{type(self).__name__}({where!r}{', restart' if self.target else ''})"

    # --- entering ----------------------------------------------------------------------
    def lock(self) -> None:
        """Take the locks of the folders a restart will move (done by :meth:`start` if not before).

        Raises
        ------
        FolderInUseError
            A live run uses the folder (nothing was changed).
        """
        if self.target is not None and not self._locked:
            self._locks += lock_for_restart(*self.target)
        self._locked = True

    def start(self) -> JobManager:
        """Make the working folder (setting a restarted one aside first), mark it, and start the run.

        Raises
        ------
        SessionError
            The session has started already, or another run is going on in this process.
        FolderInUseError
            A live run uses the folder to restart.
        """
        from plams_cli.core.runtime import config, init, run_held

        if self.manager is not None:
            raise SessionError(f"{self!r} has started already")
        if config.get("init"):
            raise SessionError(f"a run is going on in {config.default_jobmanager.workdir}: finish() it first")
        self.lock()
        # Tens of thousands of jobs live as long as the run: Python's default, a collection every
        # 700 new objects and of the survivors every 10 of those, would walk them over and over
        # (a tenth of a -r over 20,000 jobs). Each object is looked at once young, the run's
        # jobs then again only after a million more (as gc.freeze() does for the loaded jobs).
        self._gc_threshold = before = gc.get_threshold()
        gc.set_threshold(max(before[0], GC_THRESHOLD[0]), max(before[1], GC_THRESHOLD[1]), *before[2:])
        clear_trash(self.path)  # what a killed delete left
        moved_to = _restart.set_aside(*self.target) if self.target is not None else None
        if self.jobs is not None:
            from plams_cli.runners.local import JobRunner

            runner = JobRunner(parallel=True, maxjobs=self.jobs)
            self._runner = (runner, config.default_jobrunner)
            config.default_jobrunner = runner
        manager = init(path=self.path, folder=self.folder, quiet=True)
        self.manager = manager
        self._hold = run_held()  # a script's own finish() (or its threads') must not end the run
        self._hold.__enter__()
        lock = mark_workdir(manager.workdir, self.scripts)
        if lock is not None:
            self._locks.append(lock)
        self._say_where(manager, moved_to)
        self._keep_scripts(manager.workdir)
        self._threads = set(threading.enumerate())
        return manager

    def _say_where(self, manager: JobManager, moved_to: str | None) -> None:
        log(f"Running in {manager.workdir}", 1)
        name = os.path.basename(os.path.normpath(self.folder))
        if os.path.basename(manager.workdir) != name:
            taken = os.path.join(manager.path, name)
            kind = "Folder" if os.path.isdir(taken) else "A file named"
            log(f"{kind} {taken} exists: working in {manager.workdir} instead", 0)
        if moved_to is not None:
            log(f"Restart: moved the previous {name} to {moved_to}", 1)

    def _keep_scripts(self, workdir: str) -> None:
        """Copy each script into the working folder (a record of what ran)."""
        taken: set[str] = set()
        for script in self.scripts:
            stem, ext = os.path.splitext(os.path.basename(script))
            candidate, number = stem + ext, 1
            while candidate in taken or os.path.lexists(os.path.join(workdir, candidate)):
                number += 1
                candidate = f"{stem}.{number:03d}{ext}"
            taken.add(candidate)
            shutil.copy2(script, os.path.join(workdir, candidate))

    def load(self) -> None:
        """Load the saved jobs of the ``load`` folders, then those of the folder being restarted.

        Through the folders' indexes (:func:`~plams_cli.core.jobindex.load_saved`): a job
        is unpickled only when its index entry and summary cannot vouch for it, or when
        something needs the object.
        """
        from plams_cli.core.jobindex import SavedJob, load_saved

        manager = self._started()
        for folder in self.load_folders:
            jobs, bad = load_saved(folder, manager)
            log(f"Loaded {_plural(len(jobs), 'job')} from {folder} ({_plural(len(bad), 'unreadable file')})", 1)
        if self.target is not None and os.path.isdir(self.target[1]):
            res = self.target[1]
            manager.restart_source = (manager.workdir, res)
            jobs, bad = load_saved(res, manager)
            self._restart_loaded, self._restart_unreadable = list(jobs.values()), bad
            log(f"Restart: loaded {_plural(len(jobs), 'job')} from {res} ({_plural(len(bad), 'unreadable file')})", 1)
            if self.leftovers is not None:
                # before any job runs: a leftover's job is run again, in the folder it may still write to
                finished = {job.path for job in jobs.values() if type(job) is SavedJob and job.path}
                for level, line in self.leftovers(os.path.abspath(res), finished):
                    log(line, level)
        if (self.load_folders or self.target is not None) and not self._frozen:
            # What is loaded lives as long as the run: out of the garbage collector's sight
            # (moved to its permanent generation), so that its collections, which the run's
            # jobs trigger by the thousand, do not walk tens of thousands of saved jobs each time.
            gc.freeze()
            self._frozen = True

    def __enter__(self) -> Session:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        try:
            self.load()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    # --- signals and cancelling ------------------------------------------------------
    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler: SIGINT or SIGTERM stops the run as Ctrl-C does.

        Install it with ``signal.signal(signal.SIGTERM, session.on_signal)``. It records
        the signal (:attr:`signal`) and raises KeyboardInterrupt, which says the signal's
        name for any signal but SIGINT (a job it stops is "interrupted (SIGTERM)"). While
        the session says it was interrupted while ending, further signals are ignored.
        """
        if self._shielded:
            return
        self.signal = signum
        raise KeyboardInterrupt() if signum == signal.SIGINT else KeyboardInterrupt(signal_name(signum))

    @property
    def reason(self) -> str:
        """``""`` after Ctrl-C (or no signal), ``" (SIGTERM)"`` after SIGTERM."""
        if self.signal is None or self.signal == signal.SIGINT:
            return ""
        return f" ({signal_name(self.signal)})"

    def cancel(self) -> list[str]:
        """Stop running jobs (SIGTERM, SIGKILL after a grace period) and cancel queued ones; log and return a line each.

        A KeyboardInterrupt meanwhile (a second Ctrl-C) kills the runscripts in their grace
        period at once, or else is raised.
        """
        from plams_cli.runners.local import cancel_all

        log(f"Interrupted{self.reason}: stopping running jobs and cancelling queued ones", 0)
        lines = [str(record) for record in cancel_all()]  # each a Stopped record, formatted
        for line in lines:
            log(line, 0)
        return lines

    # --- waiting and ending ----------------------------------------------------------
    def wait(self) -> None:
        """Wait for the threads started inside the session, then for every job.

        Ctrl-C and SIGTERM are seen within a fraction of a second meanwhile.
        """
        manager = self._started()
        self._wait_for_threads()
        _wait_all(manager)

    def _wait_for_threads(self) -> None:
        """Wait for the non-daemon threads started inside the session and left running.

        Python waits for them before it exits; they may still run jobs, which must belong
        to this run. Job threads of plams (named ``plams-…``) are waited for as jobs.
        """
        # Not join() nor is_alive(): in Python < 3.12 a KeyboardInterrupt inside them can
        # mark a running thread as ended (gh-90882); a thread leaves enumerate() itself.
        started = time.monotonic()
        said = False
        while True:
            late = [thread for thread in threading.enumerate()
                    if thread not in self._threads and not thread.daemon
                    and thread is not threading.current_thread() and not thread.name.startswith("plams-")]
            if not late:
                return
            if not said and time.monotonic() - started > _THREAD_NOTICE_S:
                said = True
                names = ", ".join(repr(thread.name) for thread in late)
                log(f"The scripts ended; waiting for {_plural(len(late), 'thread')} they started: {names}", 1)
            time.sleep(0.02)  # short: a signal another thread received is seen when it ends

    def end(self) -> None:
        """Settle the restart and call ``finish()`` (clean, summary, close the logfile).

        Raises
        ------
        KeyboardInterrupt
            Interrupted meanwhile: the log says so (the finished jobs are saved; a kept
            ``NAME.res`` is finished by the next restart), the logfile is closed and the
            run is over; further signals through :meth:`on_signal` are ignored.
        """
        from plams_cli.core.runtime import config, finish

        manager = self._started()
        self._release_hold()
        try:
            hurry_recording()  # the job cache is written while the restart settles
            self.settled = self._settle(manager)
            finish()
        except KeyboardInterrupt:
            self._shielded = True  # no second interrupt while saying so
            res = self.target[1] if self.target is not None else None
            rest = (f"; {res} is kept and the next -r finishes the restart"
                    if res is not None and os.path.isdir(res) else "")
            log(f"Interrupted{self.reason} while ending the run: the finished jobs are saved{rest}", 0)
            logger.close_logfile()
            config.init = False
            raise

    def counts(self) -> dict[str, int]:
        """The number of jobs of the run by status (``{"successful": 3, "crashed": 1}``)."""
        return self._started().status_counts()

    def close(self) -> None:
        """Let the folders' locks go and put the default runner back (also after a failed start)."""
        self._release_hold()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        for fd in self._locks:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._locks = []
        if self._runner is not None:
            from plams_cli.core.runtime import config

            mine, previous = self._runner
            if config.get("default_jobrunner") is mine:
                config.default_jobrunner = previous
            self._runner = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                self.cancel()
            try:
                self.wait()
            except KeyboardInterrupt:
                self.cancel()
                self.wait()
            self.end()
        finally:
            self.close()

    # --- helpers -----------------------------------------------------------------------
    def _started(self) -> JobManager:
        if self.manager is None:
            raise SessionError(f"{self!r} has not started")
        return self.manager

    def _release_hold(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.__exit__(None, None, None)

    def _settle(self, manager: JobManager) -> SettleReport | None:
        """Step 3 of a restart (:func:`plams_cli.core.restart.settle`), said in the log."""
        if self.target is None or not os.path.isdir(self.target[1]):
            return None
        res = self.target[1]
        report = _restart.settle(manager, res, self._restart_loaded, self._restart_unreadable)
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
        return report


def _wait_all(manager: JobManager) -> None:
    """``manager.wait_all()``, during which Ctrl-C and SIGTERM are seen within a fraction of a second.

    The kernel hands a signal to any thread of the process. Python runs the handler in the
    main thread, but only once that thread runs Python code again: a wait without a
    timeout would sleep on until some job ends. So a helper thread waits, and the main
    thread waits for it in short slices.
    """
    from plams_cli.runners.local import signals_to_main_thread

    done = threading.Event()

    def wait() -> None:
        manager.wait_all()
        done.set()

    with signals_to_main_thread():
        threading.Thread(target=wait, name="plams-wait-all", daemon=True).start()
    while not done.wait(_SIGNAL_CHECK_S):
        pass


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15; ``"signal 99"`` for a number that names no signal."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _plural(number: int, word: str, words: str | None = None) -> str:
    return f"{number} {word if number == 1 else (words or word + 's')}"
