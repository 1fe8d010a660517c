"""Saving jobs with dill, and loading them back: ``load`` and ``load_all``.

A saved job is ``<folder>/<name>.dill``, written atomically, plus ``<name>.job.json``:
plain data that tools read without unpickling (name, class, status, hash, times,
settings, files, error).

Job classes defined in the script that runs them live in ``__main__``; dill saves such
classes by value, so they load in a fresh process that has never seen the script.
"""

from __future__ import annotations

import gc
import io
import json
import os
import pickle
import stat
import threading
import types
import weakref
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write
from plams_cli.core import jobindex
from plams_cli.core import runtime as _config_module
from plams_cli.core._files import folder_to_load
from plams_cli.core.logger import log
from plams_cli.core.status import JobStatus
from plams_cli.errors import CorruptedJobFileError, FileError

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job, MultiJob

__all__ = ["save_job", "keep_saved", "write_summary", "read_job", "load", "load_all", "load_tree", "SUMMARY_SUFFIX"]

SUMMARY_SUFFIX = ".job.json"
_SUMMARY_FORMAT = 1
# json.dumps(data, default=repr, sort_keys=True), without making an encoder at each call
_SUMMARY_ENCODER = json.JSONEncoder(default=repr, sort_keys=True)
_COPIED = JobStatus.COPIED
_dump_lock = threading.Lock()
_blobs: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_classes: dict[bytes, Any] = {}


def _class_blob(cls: Any) -> bytes:
    """The dill pickle, by value, of a class or function defined in ``__main__`` (cached)."""
    blob = _blobs.get(cls)
    if blob is None:
        import dill

        with _dump_lock:  # dill keeps module-level state while saving by value
            blob = bytes(dill.dumps(cls, recurse=True))
        _blobs[cls] = blob
    return blob


def _class_from_blob(blob: bytes) -> Any:
    """Rebuild a class or function saved by :func:`_class_blob`; one object per distinct blob."""
    cls = _classes.get(blob)
    if cls is None:
        import dill

        cls = _classes[blob] = dill.loads(blob)
    return cls


class _JobPickler(pickle.Pickler):
    """The C pickler, with classes and functions of ``__main__`` saved by value through dill.

    Saving such a class costs dill's pure-Python pickler once per class, not once per
    job; everything else goes through the fast C pickler.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == "__main__":
            return (_class_from_blob, (_class_blob(obj),))
        return NotImplemented


def _dumps(job: Job) -> bytes:
    protocol = job.settings.get("pickle_protocol")
    if protocol is None:
        protocol = _config_module.config.job.get("pickle_protocol")
    buffer = io.BytesIO()
    try:
        _JobPickler(buffer, protocol=protocol).dump(job)
        return buffer.getvalue()
    except (pickle.PicklingError, TypeError, AttributeError):
        # lambdas, local classes …: dill's own pickler handles what the C one cannot
        import dill

        with _dump_lock:
            return bytes(dill.dumps(job, protocol=protocol, recurse=True))


def save_job(job: Job, filename: str | None = None) -> None:
    """Save ``job`` to ``filename`` (default ``<path>/<name>.dill``) and its JSON summary.

    Raises
    ------
    JobError
        The job has no folder yet (it was never run).
    """
    from plams_cli.errors import JobError

    if filename is None:
        if not job.path:
            raise JobError(f"job {job.name} has no folder yet: run it before saving it")
        filename = os.path.join(job.path, job.name + ".dill")
    try:
        data = _dumps(job)
    except Exception as exc:  # dill raises many types for unpicklable attributes
        log(f"Pickling of {job.name} failed: {type(exc).__name__}: {exc}; add the attribute to "
            f"job._dont_pickle or set settings.pickle = False", 1)
        return
    # A copied job is not fsynced: a machine crash may lose it, and then a restart copies it again.
    saved = jobindex.file_id(atomic_write(filename, data, fsync=job.status is not _COPIED))
    try:
        summary = write_summary(job, os.path.dirname(filename), saved=saved)
    except (TypeError, ValueError) as exc:  # a summary is a convenience; the pickle is saved
        log(f"Could not write the summary of {job.name}: {type(exc).__name__}: {exc}", 1)
        return
    if summary is not None:
        jobindex.record(job, filename, saved, jobindex.file_id(summary))


def keep_saved(job: Job, saved: jobindex.SavedJob) -> bool:
    """Save ``job``, copied from ``saved``, by keeping ``saved``'s ``.dill`` and ``.job.json``; say whether it could.

    A restart in place (``-r``) moves a reproduced job's folder into the new working folder
    whole, saved files included; ``-l`` hard-links them with its other files when the new
    job has the same name. When both are still the files the index (or the summary)
    vouched for, they stay as they are: the saved job is the one the first run saved
    (its status, times and object), and the working folder's index gets its entry
    (:func:`~plams_cli.core.jobindex.record_kept`). Nothing is written into the job's folder.
    Returns False when either file is not that file any more; then the job is to be
    pickled as usual.
    """
    if not job.path:
        return False
    filename = job.path + os.sep + job.name + ".dill"
    # Looked at again unless the folder moved or was linked as the index listed it, unchanged since it vouched.
    if not (saved.intact and job.results.listed):
        try:
            if (jobindex.file_id(os.stat(filename)) != saved.saved_id
                    or jobindex.file_id(os.stat(filename[:-5] + SUMMARY_SUFFIX)) != saved.summary_id):
                return False
        except OSError:
            return False
    jobindex.record_kept(job, filename, saved)
    return True


def _json_plain(value: Any) -> Any:
    """``value`` as JSON can hold it: mappings with string keys (``1`` -> ``"1"``, a
    tuple key -> its repr), lists for sequences; other values are left to ``default=repr``."""
    if isinstance(value, dict):
        return {(key if isinstance(key, str) else repr(key) if isinstance(key, tuple) else str(key)): _json_plain(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_plain(item) for item in value]
    return value


def summary_of(job: Job) -> dict[str, Any]:
    """The plain-data description of ``job`` written beside its pickle."""
    cls = type(job)
    data: dict[str, Any] = {
        "format": _SUMMARY_FORMAT,
        "name": job.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "status": job.status.value,
        "hash": job._hash,
        "timestamps": dict(job.timestamps),
        "error": job.get_errormsg(),
        "exit_code": getattr(job, "_exit_code", None),
        "path": job.path,
        "files": list(job.results.files),
        "settings": job.settings,
    }
    from plams_cli.core.jobs import MultiJob

    if isinstance(job, MultiJob):
        data["children"] = [child.name for child in job]
    return data


def write_summary(job: Job, folder: str | None = None, saved: list[int] | None = None) -> os.stat_result | None:
    """Write ``<name>.job.json`` in ``folder`` (default: the job's folder), atomically.

    ``saved`` is the :func:`~plams_cli.core.jobindex.file_id` of the ``.dill`` just
    written beside it: it tells later readers that the summary describes that very file.
    Returns the status of the summary written (``None``: the job has no folder).
    """
    folder = folder or job.path
    if not folder:
        return None
    data = summary_of(job)
    if saved is not None:
        data["saved"] = saved
    try:
        text = _SUMMARY_ENCODER.encode(data)
    except TypeError:  # keys JSON cannot sort or hold (1 and "x", tuples): make them strings
        data["settings"] = _json_plain(data["settings"])
        text = _SUMMARY_ENCODER.encode(data)
    return atomic_write(folder + os.sep + job.name + SUMMARY_SUFFIX, text.encode(), fsync=False)


def _restore(job: Job, path: str, parent: Job | None = None) -> None:
    job.path = path
    job.parent = parent  # type: ignore[assignment]
    job.results.job = job
    if isinstance(job, _multijob_class()):
        for child in job:
            _restore(child, path + os.sep + child.name, job)


_MULTIJOB: list[type[MultiJob]] = []


def _multijob_class() -> type[MultiJob]:
    """:class:`~plams_cli.core.jobs.MultiJob`, imported once (the job classes import this module)."""
    if not _MULTIJOB:
        from plams_cli.core.multijob import MultiJob

        _MULTIJOB.append(MultiJob)
    return _MULTIJOB[0]


#: In a pickle, these name what only dill's unpickler resolves (its ``find_class`` cases).
_DILL_NAMES = (b"__builtin__", b"dill.dill")
_BUILTIN, _DILL_DILL = _DILL_NAMES


def _unpickle(data: bytes) -> Any:
    """``dill.loads(data)``, through the C unpickler when that gives the same object.

    Our pickles are the C pickler's (dill only for what it cannot save, and for classes
    of ``__main__``, saved by value through :func:`_class_from_blob`). dill's unpickler
    differs from the C one in two ways only: its ``find_class`` resolves the names of
    :data:`_DILL_NAMES` (a pickle naming them goes to dill whole), and an object whose
    class comes from ``__main__`` takes the class of that name in the running
    ``__main__``, which is done here as dill does it. Neither needs dill imported (it
    costs ~45 ms) nor its pure-Python ``find_class`` called for every class a job names.
    """
    if _BUILTIN in data or _DILL_DILL in data:
        import dill

        return dill.loads(data)
    obj = pickle.loads(data)
    if type(obj).__module__ == "__main__":
        import dill
        from dill import _dill

        main = _dill._main_module
        if type(obj).__module__ == getattr(main, "__name__", "__main__") and not dill.settings["ignore"]:
            try:
                obj.__class__ = getattr(main, type(obj).__name__)
            except (AttributeError, TypeError):  # defined in a file: kept, as dill keeps it
                pass
    return obj


_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


def _read_regular(path: str) -> bytes | None:
    """The bytes of the regular file ``path``; ``None`` when there is none (missing, a folder, a FIFO …).

    One ``open``, ``fstat`` and ``read`` (of the file's size plus one byte: getting
    exactly the size tells the end of the file without a second read): a folder of 20,000 jobs reads each saved job
    in a few microseconds. ``O_NONBLOCK`` keeps a FIFO named like a saved job from
    blocking; it changes nothing for a regular file.

    Raises
    ------
    OSError
        The file exists but cannot be read (permissions, I/O error).
    """
    try:
        fd = os.open(path, _O_READ)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        data = os.read(fd, info.st_size + 1)
        if len(data) == info.st_size:
            return data
        chunks = [data]  # it changed since fstat, or one read stops short (2 GiB on Linux): read to the end
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_job(filename: str) -> Job:
    """Unpickle the job saved in ``filename`` without registering it anywhere.

    .. warning:: Unpickling runs code: a ``.dill`` file can do anything its author chose
       when it is read. Load only files you trust (your own runs). Calling this is the
       script's explicit choice; no ``plams`` command reads a ``.dill`` unless asked
       (``-l`` and ``-r`` load the folders they name).

    Raises
    ------
    FileError
        ``filename`` does not exist or cannot be read.
    CorruptedJobFileError
        The file is truncated, corrupt, or holds something that is not a plams job.
    """
    path = os.path.abspath(filename)
    try:
        data = _read_regular(path)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    if data is None:
        if os.path.isdir(path):
            raise FileError(f"{path} is a folder, not a saved job (.dill) file; use load_all() for a folder")
        if os.path.exists(path):
            raise FileError(f"cannot read {path}: not a regular file")
        raise FileError(f"no saved job at {path}")
    return _job_from(data, path)


def _job_from(data: bytes, path: str) -> Job:
    """The job pickled in ``data``, read from ``path``, with its paths restored."""
    from plams_cli.core.job import Job

    try:
        job = _unpickle(data)
    except Exception as exc:  # unpickling raises any type on corrupt data
        raise CorruptedJobFileError(
            f"{path} is not a readable saved job ({type(exc).__name__}: {exc}); "
            "it may be truncated or written by another program; delete it to rerun the job"
        ) from exc
    if not isinstance(job, Job):
        raise CorruptedJobFileError(
            f"{path} holds a {type(job).__name__}, not a plams job; delete it or move it elsewhere"
        )
    _restore(job, os.path.dirname(path))
    return job


def _default_manager() -> JobManager | None:
    config = _config_module.config
    return config.default_jobmanager if config.get("init") else None


def load(filename: str) -> Job:
    """Load a saved job; its hashes join the current job manager so it is not rerun.

    .. warning:: Unpickling runs code: a ``.dill`` file can do anything its author chose
       when it is read. Load only files you trust (your own runs). Calling this is the
       script's explicit choice; no ``plams`` command reads a ``.dill`` unless asked
       (``-l`` and ``-r`` load the folders they name).

    Raises
    ------
    FileError, CorruptedJobFileError
        See :func:`read_job`.
    """
    manager = _default_manager()
    if manager is not None:
        return manager.load_job(filename)
    return read_job(filename)


def load_all(path: str, jobmanager: JobManager | None = None) -> dict[str, Job]:
    """Load every job saved under the working folder ``path``.

    Returns a dict from ``.dill`` path to job. See :func:`load_tree` for the rules.

    .. warning:: Unpickling runs code: a ``.dill`` file can do anything its author chose
       when it is read. Load only files you trust (your own runs). Calling this is the
       script's explicit choice; no ``plams`` command reads a ``.dill`` unless asked
       (``-l`` and ``-r`` load the folders they name).
    """
    return load_tree(path, jobmanager)[0]


def load_tree(path: str, jobmanager: JobManager | None = None) -> tuple[dict[str, Job], list[str]]:
    """Load every job saved under ``path``; return the jobs and the unreadable files.

    .. warning:: Unpickling runs code: a ``.dill`` file can do anything its author chose
       when it is read. Load only files you trust (your own runs). Calling this is the
       script's explicit choice; no ``plams`` command reads a ``.dill`` unless asked
       (``-l`` and ``-r`` load the folders they name).

    Returns a dict from ``.dill`` path to job, and the list of files that could not be
    read. A folder with a saved job is not searched further (a MultiJob carries its
    children); a folder without one is (the children of a MultiJob that never finished).
    Unreadable files are skipped with one log line each.

    Raises
    ------
    FileError
        ``path`` does not exist or is not a folder.
    """
    root = folder_to_load(path)
    manager = jobmanager or _default_manager()
    load_one = manager.load_job if manager is not None else read_job
    loaded: dict[str, Job] = {}
    bad: list[str] = []

    def visit(folder: str) -> None:
        try:
            entries = sorted(e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))
        except OSError as exc:
            log(f"Cannot read {folder}: {exc.strerror}", 1)
            return
        prefix = folder if folder.endswith(os.sep) else folder + os.sep
        for name in entries:
            sub = prefix + name
            dill_file = sub + os.sep + name + ".dill"
            try:  # no stat first: a folder without a saved job is the rare case
                job = load_one(dill_file)
            except FileError as exc:
                if os.path.isfile(dill_file):
                    log(f"Skipping {dill_file}: {exc}", 1)
                    bad.append(dill_file)
                visit(sub)
                continue
            loaded[dill_file] = job

    # Each job leaves a few dozen objects behind: without this the collector runs every few
    # hundred jobs, ever longer as the loaded jobs pile up (a third of the time at 20,000).
    collecting = gc.isenabled()
    gc.disable()
    try:
        visit(root)
    finally:
        if collecting:
            gc.enable()
    return loaded, bad
