"""Jobs: ``Job`` (the life cycle), ``SingleJob`` (one runscript), ``MultiJob`` (children).

The life cycle, driven by a runner (:mod:`plams_cli.runners.local`):

1. ``run()`` — refuses a second call, merges run flags, hands the job to the runner;
2. ``_prepare()`` — waits for ``depend``, registers (name, folder), ``prerun()``, merges
   defaults, and asks the job manager whether an identical successful job exists; if so,
   its files are reused and the job ends ``copied``;
3. ``_execute()`` — runs the runscript (SingleJob) or the children (MultiJob);
4. ``_finalize()`` — collects files, ``check()``, ``postrun()``, status, pickle.

Any exception on the way marks the job ``crashed`` with the exception as its error
message; waiters are always released.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from plams_cli.core import runtime as _config_module
from plams_cli.core._files import link_or_copy_tree
from plams_cli.core.lifecycle import announce_launch, announce_status
from plams_cli.core.logger import log
from plams_cli.core.logger import threshold as logger_threshold
from plams_cli.core.results import Results
from plams_cli.core.settings import Settings
from plams_cli.core.status import JobStatus
from plams_cli.errors import JobError, NotStartedError, PlamsError
from plams_cli.runners.launch import Launch

__all__ = ["Job", "SingleJob", "MultiJob", "ShellJob"]

_UNPICKLED_SET = frozenset(("jobmanager", "jobrunner", "parent", "default_settings", "_lock", "_input_text",
                            "_runscript_text", "_runner", "_notified", "_made_folder"))


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise JobError(f"a job name must be a non-empty string, not {name!r}")
    if "/" in name or os.sep in name or name in (".", ".."):
        raise JobError(f"job name {name!r} is not allowed: it names a folder, so it must not contain '/' "
                       "nor be '.' or '..'")
    return name


def _write_file(path: str, text: str, mode: int) -> None:
    """Write ``text`` (UTF-8) to a new or truncated file ``path``, created with ``mode``."""
    data = memoryview(text.encode())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


class Job:
    """Base of every job: a name, settings, a status and results.

    Parameters
    ----------
    name
        The job's name; its folder and files are named after it. Must not contain ``/``.
        A clash with an earlier job of the same run is renamed ``name.002``, ….
    settings
        A :class:`Settings` (copied) or another job, whose settings are copied.
    depend
        Jobs that must end before this one starts.
    """

    _result_type: type[Results] = Results
    #: in preview mode, whether the job still executes (a MultiJob runs its children, which preview)
    _runs_in_preview = False

    def __init__(self, name: str = "plamsjob", settings: Settings | Job | None = None,
                 depend: list[Job] | None = None) -> None:
        self.name = _validate_name(name)
        self.path: str | None = None
        self.jobmanager: Any = None
        self.jobrunner: Any = None
        self.parent: MultiJob | None = None
        self.settings = Settings()
        if isinstance(settings, Settings):
            self.settings = settings.copy()
        elif isinstance(settings, Job):
            self.settings = settings.settings.copy()
        elif isinstance(settings, Mapping):
            self.settings = Settings(settings).copy()
        elif settings is not None:
            raise JobError(f"settings of job {name} must be a Settings, a dict or a Job, not {type(settings).__name__}")
        self.default_settings: list[Settings] = [_config_module.config.job]
        self.depend: list[Job] = list(depend or [])
        self._dont_pickle: list[str] = []
        self._error_msg: str | None = None
        self._hash: str | None = None
        self._lock = threading.RLock()
        self.timestamps: dict[str, float] = {}
        self._requested_name: str = self.name  # the name before a clash renamed it
        self._made_folder = False  # whether registering made the job's folder (removed if it never starts)
        self._status = JobStatus.CREATED
        self.results = self._result_type(self)

    # --- status ----------------------------------------------------------------------
    @property
    def status(self) -> JobStatus:
        """The job's :class:`JobStatus`; setting it records the time and announces the change.

        Announced through :mod:`plams_cli.core.lifecycle`, whose subscribers log it,
        count it and record it in the job cache.
        """
        return self._status

    @status.setter
    def status(self, value: JobStatus | str) -> None:
        status = value if type(value) is JobStatus else JobStatus(value)
        old, self._status = self._status, status
        now = self.timestamps[status.value] = time.time()
        announce_status(self, old, status, now)  # the log line, the live count, the job cache …

    @property
    def _daemon_thread(self) -> bool:
        """Whether a parallel runner runs this job in a daemon thread (``config.daemon_threads``).

        With ``False`` the interpreter waits for the job at exit even when the script
        does not.
        """
        return bool(_config_module.config.get("daemon_threads", True))

    def _full_name(self) -> str:
        return f"{self.parent._full_name()}/{self.name}" if self.parent is not None else self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._status.value}>"

    # --- the public life-cycle API ---------------------------------------------------
    def run(self, jobrunner: Any = None, jobmanager: Any = None, **kwargs: Any) -> Results:
        """Run the job and return its :class:`Results`.

        Parameters
        ----------
        jobrunner
            Where to run (default ``config.default_jobrunner``). A parallel runner
            returns at once; reading the results then waits for the job.
        jobmanager
            Which working folder (default ``config.default_jobmanager``; ``init()`` is
            called when there is none yet).
        **kwargs
            Run flags, merged into ``settings.run`` (a grid runner turns them into
            submit options).

        Raises
        ------
        JobError
            The job was run before.
        """
        with self._lock:
            if self._status != JobStatus.CREATED:
                raise JobError(
                    f"job {self.name} was already run (status {self._status.value}); "
                    "create a new job to run it again"
                )
            self.status = JobStatus.STARTED
        if kwargs:
            self.settings.run.soft_update(Settings(kwargs))
        jobrunner = jobrunner or _config_module.config.default_jobrunner
        if jobmanager is None:
            jobmanager = _config_module.config.default_jobmanager
            if jobmanager is None or not _config_module.config.get("init"):
                jobmanager = _config_module.init()
        self.jobrunner = jobrunner
        self.jobmanager = jobmanager
        jobmanager._started(self)
        jobrunner._run_job(self, jobmanager)
        return self.results

    def ok(self, strict: bool = True) -> bool:
        """Wait for the job, then say whether it ended well (successful or copied).

        With ``strict=False`` a finished job whose ``check()`` failed counts as well.
        """
        if self._status == JobStatus.CREATED:
            log(f"WARNING: ok() of job {self.name}, which was never run: False", 3)
            return False
        self.results.wait()
        good = {JobStatus.SUCCESSFUL, JobStatus.COPIED}
        if not strict:
            good |= {JobStatus.FAILED, JobStatus.FINISHED}
        return self._status in good

    def check(self) -> bool:
        """Whether the job's results are correct; override to check outputs. Default: True."""
        return True

    def get_errormsg(self) -> str | None:
        """Why the job crashed or failed (exit code, exception, …), or ``None`` if it did not."""
        if self._error_msg:
            return self._error_msg
        if self._status == JobStatus.FAILED:
            return f"job {self.name} failed: its check() returned False"
        return None

    def prerun(self) -> None:
        """Hook run before the job's input is written (after registration). Default: nothing."""

    def postrun(self) -> None:
        """Hook run after a successful ``check()``, before the job is saved. Default: nothing."""

    def hash(self) -> str | None:
        """The job's rerun-prevention hash, or ``None`` when it is not hashed."""
        return None

    registered_hash = property(lambda self: getattr(self, "_hash", None), doc="The hash recorded when the job "
                               "was registered (``hash()`` then), or ``None``: not registered yet, or not hashed.")

    # --- pickling --------------------------------------------------------------------
    def pickle(self, filename: str | None = None) -> None:
        """Save the job as ``<path>/<name>.dill`` (atomically), with a JSON summary beside it."""
        from plams_cli.core.pickling import save_job

        save_job(self, filename)

    def __getstate__(self) -> dict[str, Any]:
        remove = _UNPICKLED_SET.union(self._dont_pickle) if self._dont_pickle else _UNPICKLED_SET
        return {k: v for k, v in self.__dict__.items() if k not in remove}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.jobmanager = None
        self.jobrunner = None
        self.parent = None
        self.default_settings = [_config_module.config.job]
        self._lock = threading.RLock()
        if getattr(self, "results", None) is not None:
            self.results.job = self

    # --- life-cycle internals, driven by the runner ---------------------------------
    def _lifecycle(self, jobrunner: Any, jobmanager: Any) -> None:
        try:
            if self._prepare(jobmanager):
                if _config_module.config.preview and not self._runs_in_preview:
                    self._finalize()
                else:
                    self._execute(jobrunner)
                    self._after_execute()
        except BaseException as exc:
            self._crash(exc)
            if not isinstance(exc, Exception):
                raise

    def _after_execute(self) -> None:
        self._finalize()

    def _prepare(self, jobmanager: Any) -> bool:
        if not _config_module.config.preview:
            for dependency in self.depend:
                dependency.results.wait()
        if getattr(self.jobrunner, "_cancelled", False):  # no folder for a job that will not run
            raise NotStartedError()
        jobmanager._register(self)
        # As in PLAMS: registered (name, folder) before prerun(), so prerun() and the
        # get_input() the hash calls see the status, folder and merged defaults PLAMS gives them.
        self.status = JobStatus.REGISTERED
        if logger_threshold() >= 5:
            log(f"Starting {self.name}.prerun()", 5)
        self.prerun()
        for defaults in reversed(self.default_settings):
            self.settings.soft_update(defaults)
        prev = jobmanager._check_hash(self)
        if prev is not None:
            try:
                self._copy_from(prev)
            except OSError as exc:
                log(f"Reusing the files of {prev.name} for {self.name} failed ({exc}); running it", 1)
                jobmanager._forget_hash(self)
            else:
                return False
        self._get_ready()
        return True

    def _get_ready(self) -> None:
        """Write what the job needs before it executes (input, runscript …)."""

    def _execute(self, jobrunner: Any) -> None:
        raise NotImplementedError

    def _copy_from(self, prev: Job) -> None:
        old, new = prev.name, self.name
        skip = {f"{old}.dill", f"{old}.job.json"}

        def rename(relative: str) -> str | None:
            if relative in skip or os.path.basename(relative).startswith("."):
                return None
            if relative.startswith(old + ".") and os.sep not in relative:
                return new + relative[len(old):]
            return relative

        assert self.path is not None and prev.path is not None
        # A job loaded from this very folder (a restart in place) already has its files here.
        if os.path.realpath(prev.path) != os.path.realpath(self.path):
            link_or_copy_tree(prev.path, self.path, rename, link=bool(self.settings.get("link_files", True)))
        self._copied_from = prev.path
        self._exit_code = getattr(prev, "_exit_code", 0)
        self.results.collect()
        self.status = JobStatus.COPIED
        self.results._mark_collected()
        if self.settings.get("pickle", True):
            self.pickle()
        self._release()

    def _finalize(self) -> None:
        if _config_module.config.preview:
            self.status = JobStatus.PREVIEW
            self.results._mark_collected()
            self._release()
            return
        self.results.collect()
        self.results._mark_collected()
        if self._status != JobStatus.CRASHED:
            self.status = JobStatus.FINISHED
            if self.check():
                self.results._clean(self.settings.get("keep", "all"))
                if logger_threshold() >= 5:
                    log(f"Starting {self.name}.postrun()", 5)
                self.postrun()
                self.status = JobStatus.SUCCESSFUL
                if self.settings.get("pickle", True):
                    self.pickle()
            else:
                self.status = JobStatus.FAILED
                self._write_summary()
        else:
            self._log_error()
            self._write_summary()
        self._release()

    def _log_error(self) -> None:
        log(f"Error message for job {self._full_name()} was:\n{self.get_errormsg()}", 1)

    def _write_summary(self) -> None:
        from plams_cli.core.pickling import write_summary

        try:
            write_summary(self)
        except Exception as exc:  # noqa: BLE001 - a summary is a convenience; never fail a job for it
            log(f"Could not write the summary of {self.name}: {type(exc).__name__}: {exc}", 1)

    def _crash(self, exc: BaseException) -> None:
        if isinstance(exc, NotStartedError):
            self._withdraw(str(exc))
            return
        if isinstance(exc, PlamsError):
            message = str(exc)
        elif isinstance(exc, KeyboardInterrupt):  # the plams command names the signal: KeyboardInterrupt("SIGTERM")
            message = f"interrupted ({str(exc) or 'Ctrl-C'})"
        else:
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" (at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
            message = f"{type(exc).__name__}: {exc}{where}"
        if self._error_msg is None:
            self._error_msg = message
        if self._status.is_final and self.results.done.is_set():
            return
        try:
            self.status = JobStatus.CRASHED
            self._log_error()
            if self.path and os.path.isdir(self.path):
                try:
                    self.results.collect()
                except OSError:
                    pass
                self._write_summary()
        finally:  # whatever happens, nobody may be left waiting for this job
            self.results._mark_collected()
            self._release()

    def _withdraw(self, message: str) -> None:
        """The job was refused before its runscript started: ``crashed`` and counted as not started, no folder.

        The status is PLAMS's ``crashed`` (the job did not run; ``ok()`` is False); summaries
        count it as ``not started`` (see :attr:`not_started`). A folder the job made for
        itself is removed (it holds only its input, runscript and what ``prerun()`` wrote);
        no summary file is written, so a restart simply runs the job.
        """
        self._error_msg = self._error_msg or message
        self._never_started = True
        try:
            self.status = JobStatus.CRASHED
            self._log_error()
            if self.jobmanager is not None:
                self.jobmanager._withdraw(self)
        finally:
            self.results._mark_collected()
            self._release()

    @property
    def not_started(self) -> bool:
        """Whether the job was cancelled before its runscript started (it is ``crashed``, with no folder)."""
        return bool(getattr(self, "_never_started", False))

    def _release(self) -> None:
        """Wake everyone waiting for this job, then tell the parent."""
        self.results.done.set()
        if self.jobmanager is not None:
            self.jobmanager._ended(self)
        parent = self.parent
        if parent is not None and not getattr(self, "_notified", False):
            self._notified = True
            parent._notify()


class SingleJob(Job):
    """A job with one runscript, run in its own folder.

    Subclasses define :meth:`get_input` and :meth:`get_runscript`. The folder holds
    ``<name>.in`` (the input), ``<name>.run`` (the runscript, with the shebang and
    ``settings.runscript.pre``/``post`` around it), ``<name>.out`` and ``<name>.err``.

    Parameters
    ----------
    molecule
        Kept as ``self.molecule`` for scripts written for PLAMS.
    **kwargs
        ``name``, ``settings``, ``depend``: see :class:`Job`.
    """

    def __init__(self, molecule: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.molecule = molecule
        self._exit_code: int | None = None

    def get_input(self) -> str:
        """The text of the input file ``<name>.in``. Override it."""
        return ""

    def get_runscript(self) -> str:
        """The body of the runscript. Override it."""
        raise NotImplementedError(f"{type(self).__name__} must define get_runscript()")

    def full_runscript(self) -> str:
        """The runscript as written: shebang, ``runscript.pre``, :meth:`get_runscript`, ``runscript.post``.

        Byte for byte PLAMS's text: ``shebang + "\\n\\n"``, then ``pre + "\\n\\n"`` when
        ``pre`` is set, the body as :meth:`get_runscript` returns it, then ``post + "\\n\\n"``
        when ``post`` is set. One difference: a body that does not end with a newline gets
        one before ``post``, where PLAMS glues the two into one command line.
        """
        runscript = self.settings.runscript
        text = str(runscript.get("shebang", "#!/bin/sh")) + "\n\n"
        if "pre" in runscript:
            text += str(runscript.pre) + "\n\n"
        body = self.get_runscript()
        text += body
        if "post" in runscript:
            if body and not body.endswith("\n"):
                text += "\n"
            text += str(runscript.post) + "\n\n"
        return text

    def _input(self) -> str:
        text = getattr(self, "_input_text", None)
        if text is None:
            text = self._input_text = self.get_input()
        return text

    def _runscript(self) -> str:
        text = getattr(self, "_runscript_text", None)
        if text is None:
            text = self._runscript_text = self.full_runscript()
        return text

    def hash_input(self) -> str:
        """SHA256 of the input text."""
        return hashlib.sha256(self._input().encode()).hexdigest()

    def _runscript_without_name(self) -> str:
        # Runscripts name their own files (``ams < calc.002.in``): a job renamed because
        # of a clash must hash as the job it duplicates, so its runscript is rebuilt as a
        # twin under the name it was given. Jobs the user named differently keep
        # different runscripts (``echo {name}`` really differs).
        requested = getattr(self, "_requested_name", self.name)
        if requested == self.name:
            return self._runscript()
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.name = requested
        twin._runscript_text = None  # type: ignore[assignment]
        return twin.full_runscript()

    def hash_runscript(self) -> str:
        """SHA256 of the full runscript as the job would write it under the name it was given.

        A duplicate renamed because of a name clash (``calc`` run twice: ``calc`` and
        ``calc.002``) hashes as the job it duplicates.
        """
        return hashlib.sha256(self._runscript_without_name().encode()).hexdigest()

    def hash(self) -> str | None:
        """The rerun-prevention hash per ``jobmanager.hashing``, or ``None`` when disabled.

        The mode is part of the hash, so jobs hashed under another mode never match.
        """
        settings = self.jobmanager.settings if self.jobmanager is not None else _config_module.config.jobmanager
        mode = settings.get("hashing", "input+runscript")
        if not mode:
            return None
        if mode == "input":
            payload = self._input()
        elif mode == "runscript":
            payload = self._runscript_without_name()
        elif mode == "input+runscript":
            payload = self._input() + "\0" + self._runscript_without_name()
        else:
            raise PlamsError(f"jobmanager.hashing must be input, runscript, input+runscript or null, not {mode!r}")
        return hashlib.sha256(f"{mode}\0{payload}".encode()).hexdigest()

    #: the job's files by kind, as in PLAMS (``$JN`` is the job's name); subclasses may change them
    _filenames = {"inp": "$JN.in", "run": "$JN.run", "out": "$JN.out", "err": "$JN.err"}

    def _filename(self, kind: str) -> str:
        """The name of the job's ``inp``, ``run``, ``out`` or ``err`` file (PLAMS's ``_filename``)."""
        return self._filenames[kind].replace("$JN", self.name)

    def _get_ready(self) -> None:
        assert self.path is not None
        folder = self.path
        _write_file(os.path.join(folder, self._filename("inp")), self._input(), 0o644)
        _write_file(os.path.join(folder, self._filename("run")), self._runscript(), 0o755)
        self._input_text = self._runscript_text = None  # type: ignore[assignment]

    def _execute(self, jobrunner: Any) -> None:
        redirect = bool(self.settings.runscript.get("stdout_redirect", False))
        arguments = {
            "runscript": self._filename("run"),
            "workdir": self.path,
            "out": None if redirect else self._filename("out"),
            "err": self._filename("err"),
            "runflags": self.settings.run,
        }
        try:
            limited = getattr(jobrunner, "_limited_call", None)
            if limited is not None:  # RUNNING once the runner's maxjobs lets it start
                code = limited(started=self._set_running, launched=self._launched, **arguments)
            else:  # a runner of PLAMS's kind, with call() only
                self._set_running()
                code = jobrunner.call(**arguments)
        except NotStartedError:
            raise  # the run was cancelled while the job waited for its turn: see Job._withdraw
        except PlamsError as exc:
            self._error_msg = str(exc)
            self.status = JobStatus.CRASHED
            return
        self._exit_code = code
        if code != 0:
            self._error_msg = self._describe_exit(code)
            self.status = JobStatus.CRASHED

    def _set_running(self) -> None:
        self.status = JobStatus.RUNNING

    def _launched(self, launch: Launch) -> None:
        announce_launch(self, launch)

    def _describe_exit(self, code: int) -> str:
        if code < 0:
            import signal

            try:
                reason = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                reason = f"was killed by signal {-code}"
        else:
            reason = f"exited with code {code}"
        message = f"runscript {self._filename('run')} {reason}"
        tail = self._tail(self._filename("err"))
        if tail:
            message += f"; last lines of {self.name}.err:\n{tail}"
        return message

    def _tail(self, filename: str, lines: int = 5) -> str:
        assert self.path is not None
        try:
            with open(os.path.join(self.path, filename), "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 2048))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    # --- PLAMS's loaders ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str, jobmanager: Any = None, strict: bool = True) -> Job:
        """Load a saved job from its ``.dill`` file, or from the folder holding one.

        With a job manager (``jobmanager``, else the current run's) the job joins it, so
        it is not rerun; without, it is only read.

        Parameters
        ----------
        path
            A ``.dill`` file, or a job folder (its ``<folder name>.dill`` is preferred).
        jobmanager
            The job manager to register the job with.
        strict
            Require the saved job to be of exactly this class.

        Raises
        ------
        FileError
            ``path`` does not exist, or the folder holds no ``.dill`` file.
        CorruptedJobFileError
            The file is not a readable saved job.
        JobClassMismatchError
            ``strict`` and the job is of another class (a ``ValueError``, as in PLAMS).
        """
        from plams_cli.core.pickling import read_job
        from plams_cli.errors import FileError, JobClassMismatchError

        filename = os.path.abspath(path)
        if not os.path.exists(filename):
            raise FileError(f"cannot load a job from {filename}: it does not exist")
        if os.path.isdir(filename):
            own = os.path.join(filename, os.path.basename(filename) + ".dill")
            saved = sorted(f for f in os.listdir(filename) if f.endswith(".dill"))
            if os.path.isfile(own):
                filename = own
            elif saved:
                filename = os.path.join(filename, saved[0])
            else:
                raise FileError(f"no .dill file in {filename}; load_external() adopts a folder without one")
        config = _config_module.config
        manager = jobmanager or (config.get("default_jobmanager") if config.get("init") else None)
        job = manager.load_job(filename) if manager is not None else read_job(filename)
        if strict and type(job) is not cls:
            raise JobClassMismatchError(
                f"the job saved in {filename} is a {type(job).__name__}, not a {cls.__name__}; "
                "pass strict=False to accept it"
            )
        return job

    @classmethod
    def load_external(cls, path: str, settings: Settings | None = None, molecule: Any = None,
                      finalize: bool = False, jobname: str | None = None) -> SingleJob:
        """Adopt a folder computed outside plams (no ``.dill``): its files become the results.

        The folder's name is the job's name (or ``jobname``); files named as the class's
        ``_filenames`` (``<name>.in``, ``.out`` …) are the job's input, output and so on.
        The job is ``copied``; with ``finalize`` it goes through ``check()``, cleaning,
        ``postrun()`` and saving, and ends ``successful`` or ``failed``.

        Parameters
        ----------
        path
            The job folder.
        settings
            The job's settings (default: ``results.recreate_settings()``, else a copy of
            ``config.job``).
        molecule
            Kept as ``job.molecule`` (default: ``results.recreate_molecule()``).
        finalize
            Run the end of the life cycle on it.
        jobname
            The job's name when it differs from the folder's.

        Raises
        ------
        FileError
            ``path`` is not a folder.
        """
        from plams_cli.errors import FileError

        folder = os.path.abspath(path)
        if not os.path.isdir(folder):
            raise FileError(f"cannot load an external job from {folder}: it is not a folder")
        job = cls(name=os.path.basename(folder) if jobname is None else str(jobname))
        job.path = folder
        job.status = JobStatus.COPIED
        job.results.collect()
        present = set(job.results.files)
        job._filenames = {kind: name for kind, name in cls._filenames.items()
                          if name.replace("$JN", job.name) in present}
        job.settings = settings or job.results.recreate_settings() or _config_module.config.job.copy()
        job.molecule = molecule or job.results.recreate_molecule()
        job.results._mark_collected()
        if finalize:
            job._finalize()
        else:
            job._release()
        return job


class ShellJob(SingleJob):
    """A job whose runscript is a given shell snippet, with an optional input text.

    Parameters
    ----------
    runscript
        The body of the runscript, e.g. ``"echo hello"``.
    input
        The text of ``<name>.in`` (default empty).
    **kwargs
        See :class:`SingleJob`.
    """

    def __init__(self, runscript: str = "", input: str = "", **kwargs: Any) -> None:  # noqa: A002
        super().__init__(**kwargs)
        self.runscript = runscript
        self.input = input

    def get_input(self) -> str:
        """The given input text."""
        return self.input

    def get_runscript(self) -> str:
        """The given runscript body."""
        return self.runscript


class MultiJob(Job):
    """A job made of child jobs, run with ``childrunner`` (default: the MultiJob's runner).

    The MultiJob ends when its last child does; :meth:`new_children` may then add more.
    It is not hashed; its children are.

    Parameters
    ----------
    children
        A list or dict of jobs.
    childrunner
        Runner for the children.
    **kwargs
        ``name``, ``settings``, ``depend``: see :class:`Job`.
    """

    def __init__(self, children: list[Job] | dict[Any, Job] | None = None, childrunner: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.children: list[Job] | dict[Any, Job] = [] if children is None else children
        self.childrunner = childrunner
        self._pending = 0

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("childrunner", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.childrunner = None
        for child in self:
            child.parent = self

    def __iter__(self) -> Iterator[Job]:
        return iter(self.children.values() if isinstance(self.children, dict) else list(self.children))

    def __len__(self) -> int:
        return len(self.children)

    def __contains__(self, job: object) -> bool:
        return any(child is job for child in self)

    _runs_in_preview = True

    def get_errormsg(self) -> str | None:
        """Why the MultiJob crashed or failed, naming the children that did not end well."""
        if self._status == JobStatus.FAILED and not self._error_msg:
            bad = [f"{child.name} ({child.status.value}: {child.get_errormsg()})" for child in self
                   if child.status in (JobStatus.CRASHED, JobStatus.FAILED)]
            if bad:
                return f"job {self.name} failed: children that did not end well: " + "; ".join(bad)
        return super().get_errormsg()

    def new_children(self) -> list[Job] | dict[Any, Job] | None:
        """Called when all children have ended; return more children to run, or ``None``."""
        return None

    def check(self) -> bool:
        """True when every child ended well."""
        return all(child.ok() for child in self)

    def _get_ready(self) -> None:
        for child in self:
            child.parent = self

    def _execute(self, jobrunner: Any) -> None:
        self.status = JobStatus.RUNNING
        self._runner = self.childrunner or jobrunner
        with self._lock:
            self._pending = 1  # held by this submission, released below
        self._run_children(list(self))

    def _after_execute(self) -> None:
        # The MultiJob ends when its last child ends (see _notify), not here.
        self._notify()

    def _run_children(self, children: list[Job]) -> None:
        for child in children:
            child.parent = self
            if child.status != JobStatus.CREATED:
                continue
            with self._lock:
                self._pending += 1
            try:  # the MultiJob's run flags reach its children, theirs winning (as in PLAMS)
                child.run(jobrunner=self._runner, jobmanager=self.jobmanager, **self.settings.run)
            except Exception as exc:
                child._crash(exc)

    def _notify(self) -> None:
        """Count one child (or the submission itself) as ended; the last one finalizes."""
        with self._lock:
            self._pending -= 1
            if self._pending > 0:
                return
        try:
            while True:  # a loop, not recursion: new_children() may add a thousand generations
                more = None if _config_module.config.preview else self.new_children()
                if not more:
                    break
                added = list(more.values()) if isinstance(more, dict) else list(more)
                if isinstance(self.children, dict) and isinstance(more, dict):
                    self.children.update(more)
                elif isinstance(self.children, dict):
                    for child in added:
                        self.children[child.name] = child
                else:
                    self.children.extend(added)
                with self._lock:
                    self._pending = 1  # held by this submission, released below
                self._run_children(added)
                with self._lock:
                    self._pending -= 1
                    if self._pending > 0:
                        return  # the last child to end carries on from here
            self._finalize()
        except BaseException as exc:
            self._crash(exc)
            if not isinstance(exc, Exception):
                raise
