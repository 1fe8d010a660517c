"""The files a grid job leaves in its folder: the wrapper, the exit-code record, the job record.

Exit codes
----------
What is submitted is a small POSIX ``sh`` wrapper, ``<runscript>.grid.sh``, that runs the
runscript and writes ``<runscript>.exitcode`` atomically (a temporary file then ``mv``)
with the exit code; the start and end times are the mtimes of ``.<runscript>.exitcode.start``
and of the record (see :func:`read_exit_file`). A job that exits 3 is a crashed job with
exit code 3. A job that left the queue without the file, or whose runscript died of a
signal the scheduler sent, was stopped by the scheduler.

Job ids
-------
At submission the scheduler's job id goes into ``<runscript>.jobid`` (JSON: ``job_id``,
``grid``, ``host``, ``name``, ``cancel``; see :func:`write_job_record`). A job folder with
that record and no exit-code record belongs to a job that may still be queued or running
after its ``plams`` was killed: :func:`find_leftovers` finds them, so that nobody else
needs to know these file names.

Every file here is written with :func:`plams_cli._fs.atomic_write`: a kill never leaves
half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from plams_cli._fs import atomic_write

__all__ = ["WORKDIR_MISSING_EXIT", "JOB_RECORD_SUFFIX", "EXIT_RECORD_SUFFIX", "safe_name", "grid_log", "write_wrapper",
           "exit_file", "start_file", "read_exit_file", "write_job_record", "read_job_record", "clear_records",
           "LeftoverJob", "find_leftovers", "tail"]

#: the wrapper's exit code when it cannot enter the job folder (before the runscript starts)
WORKDIR_MISSING_EXIT = 97
#: ``<runscript>`` + this: the scheduler's job id, written at submission
JOB_RECORD_SUFFIX = ".jobid"
#: ``<runscript>`` + this: the runscript's exit code, written by the wrapper at the job's end
EXIT_RECORD_SUFFIX = ".exitcode"

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

_WRAPPER = """\
#!/bin/sh
# Written by plams-cli GridRunner: runs the runscript and records its exit code in
# {exitfile_doc} (temporary file, then mv: readers never see half of it). The start time
# is the mtime of the .start file, the end time that of the record: shell builtins only,
# since every extra process slows short jobs on a busy node.
cd {workdir} || exit {workdir_missing}
: >{startfile}
{command}
plams_rc=$?
printf '{{"exit_code": %d, "job_id": "%s"}}\\n' "$plams_rc" \\
  "${{SLURM_JOB_ID:-${{PBS_JOBID:-${{JOB_ID:-}}}}}}" >{tmpfile}.$$ && mv -f {tmpfile}.$$ {exitfile}
exit $plams_rc
"""


def safe_name(name: str) -> str:
    """A file/job name without spaces or shell characters (PBS wrappers split on spaces)."""
    return _UNSAFE.sub("_", name) or "job"


def grid_log(runscript: str) -> str:
    """The file name, in the job folder, of the scheduler's own messages about ``runscript``'s job."""
    return f"{safe_name(runscript)}.grid.log"


def exit_file(workdir: str, runscript: str) -> str:
    """The path of ``runscript``'s exit-code record in ``workdir``."""
    return os.path.join(workdir, runscript + EXIT_RECORD_SUFFIX)


def start_file(exitfile: str) -> str:
    """The path of the file whose mtime is the start of the job whose exit-code record is ``exitfile``."""
    folder, name = os.path.split(exitfile)
    return os.path.join(folder, f".{name}.start")


def write_wrapper(workdir: str, runscript: str, out: str | None, err: str | None) -> tuple[str, str]:
    """Write the exit-code wrapper of ``runscript`` into ``workdir`` (atomically, mode 0755).

    Returns
    -------
    tuple of str
        The wrapper's file name and the exit-code file's name, both inside ``workdir``.
    """
    wrapper = f"{safe_name(runscript)}.grid.sh"
    exitname = runscript + EXIT_RECORD_SUFFIX
    command = shlex.quote("./" + runscript)
    if out:
        command += " >" + shlex.quote(out)
    if err:
        command += " 2>" + shlex.quote(err)
    text = _WRAPPER.format(
        workdir=shlex.quote(workdir),
        workdir_missing=WORKDIR_MISSING_EXIT,
        command=command,
        exitfile_doc=exitname.replace("\n", " "),
        tmpfile=shlex.quote(f".{exitname}.tmp"),
        startfile=shlex.quote(f".{exitname}.start"),
        exitfile=shlex.quote(exitname),
    )
    path = os.path.join(workdir, wrapper)
    # no fsync: the scheduler reads it right away from the same file system
    atomic_write(path, text.encode("utf-8"), fsync=False, mode=0o755)
    os.chmod(path, 0o755)  # whatever the umask: the compute node executes it
    return wrapper, exitname


def read_exit_file(path: str) -> dict[str, Any] | None:
    """The record the wrapper wrote, or ``None`` when it is not (yet) there or unreadable.

    Keys: ``exit_code``, ``job_id``, ``start`` and ``end`` (seconds since the epoch).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exit_code"), int):
        return None
    with contextlib.suppress(OSError):
        data.setdefault("end", os.stat(path).st_mtime)
        data.setdefault("start", os.stat(start_file(path)).st_mtime)
    return data


def write_job_record(workdir: str, runscript: str, record: Mapping[str, Any]) -> str:
    """Write ``<runscript>.jobid`` into ``workdir`` atomically (unique temporary, fsync, rename); return its path."""
    path = os.path.join(workdir, runscript + JOB_RECORD_SUFFIX)
    atomic_write(path, (json.dumps(dict(record)) + "\n").encode("utf-8"))
    return path


def read_job_record(path: str) -> dict[str, Any] | None:
    """The record :func:`write_job_record` wrote, or ``None`` when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not data["job_id"]:
        return None
    return data


def clear_records(workdir: str, runscript: str) -> None:
    """Remove the exit-code and job records an earlier run of the same folder left."""
    for suffix in (EXIT_RECORD_SUFFIX, JOB_RECORD_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(workdir, runscript + suffix))


@dataclass(frozen=True)
class LeftoverJob:
    """One submitted grid job whose end the run that submitted it never recorded."""

    job_id: str
    grid: str
    host: str
    cancel: str | None
    #: the job folder
    folder: str

    def cancel_hint(self) -> str:
        """The command that cancels it, as the user would type it."""
        return self.cancel or f"the scheduler's cancel command for job {self.job_id}"


def _files_by_folder(root: str, skip: Container[str] = ()) -> Iterator[tuple[str, list[str]]]:
    """``(folder, names of its non-folder entries)`` for ``root`` and each folder under it.

    What ``os.walk(root)`` yields (top-down, links to folders not followed, unreadable
    folders passed over), with one ``scandir`` per folder and nothing more: ``os.walk``
    adds an ``lstat`` per folder, and a restart walks tens of thousands of job folders.
    Folders named in ``skip`` are passed over, with what they hold.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError:
            continue
        files: list[str] = []
        folders: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(entry.name)
            elif not entry.is_symlink() and entry.path not in skip:
                folders.append(entry.path)
        yield folder, files
        stack.extend(reversed(folders))


def find_leftovers(root: str, finished: Container[str] = ()) -> Iterator[LeftoverJob]:
    """The job records under ``root`` whose job has no exit-code record.

    ``finished`` names folders (as joined below ``root``) of jobs known to have finished
    and been saved there (a restart's index vouched for them): their grid job, if any, ended,
    and they are not read.
    """
    for folder, files in _files_by_folder(root, finished):
        for name in files:
            if not name.endswith(JOB_RECORD_SUFFIX) or name.startswith("."):
                continue
            runscript = name[: -len(JOB_RECORD_SUFFIX)]
            if runscript + EXIT_RECORD_SUFFIX in files:
                continue
            record = read_job_record(os.path.join(folder, name))
            if record is None:
                continue
            cancel = record.get("cancel")
            yield LeftoverJob(str(record["job_id"]), str(record.get("grid") or "auto"), str(record.get("host") or ""),
                              cancel if isinstance(cancel, str) else None, folder)


def tail(path: str, limit: int = 400) -> str:
    """The last ``limit`` characters of the text file ``path`` on one line ('' when unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()[-limit:]
    except OSError:
        return ""
    return " ".join(text.split())
