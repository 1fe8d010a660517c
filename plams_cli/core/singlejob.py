"""``SingleJob`` (one runscript in its own folder) and ``ShellJob`` (a given shell snippet).

The life cycle (:mod:`plams_cli.core.lifecycle`) asks a single job to write its files
(:meth:`SingleJob.write_files`: ``<name>.in`` and the executable ``<name>.run``), for the
arguments of ``runner.call()`` (:meth:`SingleJob.runscript_call`) and hands it the exit
code (:meth:`SingleJob.record_exit`). PLAMS's loaders ``load`` and ``load_external``
live here too.
"""

from __future__ import annotations

import hashlib
import os
import signal
from typing import Any

from plams_cli.core import lifecycle
from plams_cli.core import runtime as _config_module
from plams_cli.core.job import Job
from plams_cli.core.pickling import read_job
from plams_cli.core.settings import Settings
from plams_cli.core.status import JobStatus
from plams_cli.errors import FileError, JobClassMismatchError, PlamsError

__all__ = ["SingleJob", "ShellJob"]

_ABSENT = object()


def _write_file(path: str, text: str, mode: int) -> None:
    """Write ``text`` (UTF-8) to a new or truncated file ``path``, created with ``mode``."""
    data = memoryview(text.encode())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


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

    __module__ = "plams_cli.core.jobs"  # its public home: saved jobs and summaries name it there

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
        pre = post = _ABSENT
        for key in dict.keys(runscript):  # pre and post in any case, in one look (usually absent)
            folded = key.lower() if isinstance(key, str) else key
            if folded == "pre" and (pre is _ABSENT or key == "pre"):  # (the key as written wins, as in a lookup)
                pre = dict.__getitem__(runscript, key)
            elif folded == "post" and (post is _ABSENT or key == "post"):
                post = dict.__getitem__(runscript, key)
        if pre is not _ABSENT:
            text += str(pre) + "\n\n"
        body = self.get_runscript()
        text += body
        if post is not _ABSENT:
            if body and not body.endswith("\n"):
                text += "\n"
            text += str(post) + "\n\n"
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

    def write_files(self) -> None:
        """Write ``<name>.in`` (the input) and ``<name>.run`` (the runscript, executable)."""
        assert self.path is not None
        folder = self.path
        _write_file(os.path.join(folder, self._filename("inp")), self._input(), 0o644)
        _write_file(os.path.join(folder, self._filename("run")), self._runscript(), 0o755)
        self._input_text = self._runscript_text = None  # type: ignore[assignment]

    def runscript_call(self) -> dict[str, Any]:
        """The arguments of ``runner.call()``: the runscript, the folder, the output files, the run flags."""
        redirect = bool(self.settings.runscript.get("stdout_redirect", False))
        return {
            "runscript": self._filename("run"),
            "workdir": self.path,
            "out": None if redirect else self._filename("out"),
            "err": self._filename("err"),
            "runflags": self.settings.run,
        }

    def record_exit(self, code: int) -> None:
        """Keep the exit code; a code other than 0 crashes the job, saying why (signal, last lines of stderr)."""
        self._exit_code = code
        if code != 0:
            self._error_msg = self._describe_exit(code)
            self.status = JobStatus.CRASHED

    def _describe_exit(self, code: int) -> str:
        if code < 0:
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
        job.results.mark_collected()
        if finalize:
            lifecycle.finalize(job)
        else:
            lifecycle.end(job)
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

    __module__ = "plams_cli.core.jobs"

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


