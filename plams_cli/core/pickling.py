"""Saving jobs with dill, and loading them back: ``load`` and ``load_all``.

A saved job is ``<folder>/<name>.dill``, written atomically, plus ``<name>.job.json``:
plain data that tools read without unpickling (name, class, status, hash, times,
settings, files, error).

Job classes defined in the script that runs them live in ``__main__``; dill saves such
classes by value, so they load in a fresh process that has never seen the script.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import threading
import types
import weakref
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write
from plams_cli.core import jobindex
from plams_cli.core import runtime as _config_module
from plams_cli.core.logger import log
from plams_cli.core.status import JobStatus
from plams_cli.errors import CorruptedJobFileError, FileError

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager
    from plams_cli.core.jobs import Job

__all__ = ["save_job", "write_summary", "read_job", "load", "load_all", "load_tree", "SUMMARY_SUFFIX"]

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
    from plams_cli.core.jobs import MultiJob

    job.path = path
    job.parent = parent  # type: ignore[assignment]
    job.results.job = job
    if isinstance(job, MultiJob):
        for child in job:
            _restore(child, os.path.join(path, child.name), job)


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
    import dill

    from plams_cli.core.jobs import Job

    path = os.path.abspath(filename)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise FileError(f"no saved job at {path}") from exc
    except IsADirectoryError as exc:
        raise FileError(f"{path} is a folder, not a saved job (.dill) file; use load_all() for a folder") from exc
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        job = dill.loads(data)
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
    root = os.path.abspath(path)
    if not os.path.exists(root):
        raise FileError(f"cannot load jobs from {root}: it does not exist")
    if not os.path.isdir(root):
        raise FileError(f"cannot load jobs from {root}: it is not a folder")
    manager = jobmanager or _default_manager()
    loaded: dict[str, Job] = {}
    bad: list[str] = []

    def visit(folder: str) -> None:
        try:
            entries = sorted(e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))
        except OSError as exc:
            log(f"Cannot read {folder}: {exc.strerror}", 1)
            return
        for name in entries:
            sub = os.path.join(folder, name)
            dill_file = os.path.join(sub, name + ".dill")
            if os.path.isfile(dill_file):
                try:
                    job = manager.load_job(dill_file) if manager is not None else read_job(dill_file)
                except FileError as exc:
                    log(f"Skipping {dill_file}: {exc}", 1)
                    bad.append(dill_file)
                    visit(sub)
                    continue
                loaded[dill_file] = job
            else:
                visit(sub)

    visit(root)
    return loaded, bad
