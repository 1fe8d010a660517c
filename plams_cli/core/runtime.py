"""``config``, ``init()`` and ``finish()``: the global settings and the run's working folder.

``config`` is read once, at import, from the packaged ``defaults/plams_defaults.yaml``
and the user's defaults file (see :mod:`plams_cli.defaults`). ``init()`` never re-reads
it, so settings made before ``init()`` stay (PLAMS silently resets them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from plams_cli.core import logbridge, logger
from plams_cli.core.cache_recorder import hurry_recording, start_recording, stop_recording
from plams_cli.core.logger import log
from plams_cli.core.settings import Settings
from plams_cli.core.status import in_report_order
from plams_cli.defaults import load_defaults
from plams_cli.runners import runner_from_defaults
from plams_cli.runners.closing import close_runners
from plams_cli.runners.local import JobRunner

if TYPE_CHECKING:
    from plams_cli.core.jobmanager import JobManager

__all__ = ["config", "init", "finish", "run_held"]


class _LogSettings(Settings):
    """The ``config.log`` branch: every change refreshes the logger's cached thresholds."""

    def __setitem__(self, name: Any, value: Any) -> None:
        super().__setitem__(name, value)
        logger.configure(self)

    def __delitem__(self, name: Any) -> None:
        super().__delitem__(name)
        logger.configure(self)


class _Config(Settings):
    """The global ``config``: ``config.jm`` is ``config.default_jobmanager``."""

    def __missing__(self, name: Any) -> Any:
        if name == "jm":
            return self.get("default_jobmanager")
        return super().__missing__(name)

    def __setitem__(self, name: Any, value: Any) -> None:
        if name == "jm":
            name = "default_jobmanager"
        if name == "log" and isinstance(value, dict):
            value = _LogSettings(value)
            Settings.__setitem__(self, name, value)
            logger.configure(value)
            return
        Settings.__setitem__(self, name, value)


def _load_config() -> _Config:
    data = load_defaults()
    data.pop("gridrunner", None)  # grid definitions are the runners' business
    data.pop("daskrunner", None)
    runner = data.pop("default_jobrunner", None)
    cfg = _Config(data)
    cfg.log = cfg.get("log") or {}
    cfg.default_jobrunner = JobRunner() if runner in (None, "local") else runner_from_defaults(runner)
    cfg.default_jobmanager = None
    cfg.init = False
    return cfg


config: _Config = _load_config()


def init(path: str | None = None, folder: str | None = None, config_settings: Settings | dict[str, Any] | None = None,
         quiet: bool = False, use_existing_folder: bool = False) -> JobManager:
    """Start a run: create the working folder and its ``logfile``; return the job manager.

    A second ``init()`` while a run is going on does nothing and returns the current
    manager (scripts run by the ``plams`` command may call it).

    Parameters
    ----------
    path
        Where the working folder is made (default: current folder).
    folder
        Its name (default ``plams_workdir``); when taken, ``folder.002``, … is used.
    config_settings
        Settings merged into ``config`` first (they win).
    quiet
        Do not log the working folder.
    use_existing_folder
        Use ``folder`` even if it exists.

    Raises
    ------
    FileError
        The working folder cannot be made.
    """
    from plams_cli.core.jobmanager import JobManager

    if config.get("init") and config.get("default_jobmanager") is not None:
        current: JobManager = config.default_jobmanager
        if folder is not None or path is not None:
            log(f"init(): a run is already going on in {current.workdir}; call finish() before starting "
                "another", 1)
        return current
    if config_settings:
        config.update(config_settings)
    manager = JobManager(config.jobmanager, path, folder, use_existing_folder=use_existing_folder)
    config.default_jobmanager = manager
    config.init = True
    logger.open_logfile(os.path.join(manager.workdir, "logfile"))
    logbridge.attach()  # the runners' stdlib log records reach the logfile too
    start_recording(config.get("jobcache"))
    if not quiet:
        log(f"Running in {manager.workdir}", 1)
    return manager


@contextlib.contextmanager
def run_held() -> Iterator[None]:
    """Inside this block ``finish()`` only waits for the jobs and the run goes on.

    The ``plams`` command runs scripts inside it: it ends the run itself, after the
    last script, even when a script calls ``finish()`` (PLAMS scripts often do).
    """
    global _held
    previous, _held = _held, True
    try:
        yield
    finally:
        _held = previous


_held = False


def finish(otherJM: list[JobManager] | None = None) -> None:  # noqa: N803 - PLAMS's name
    """End the run: wait for every job, clean job folders, log a summary by status.

    Inside :func:`run_held` (scripts run by the ``plams`` command) it only waits for
    the jobs.

    Parameters
    ----------
    otherJM
        More job managers to wait for and clean.
    """
    if not config.get("init"):
        return
    managers = [config.default_jobmanager, *(otherJM or [])]
    for manager in managers:
        manager.wait_all()
    if _held:
        return
    hurry_recording()  # the job cache is written while the folders are cleaned
    counts: dict[str, int] = {}
    for manager in managers:
        manager.clean()
        for status, number in manager.status_counts().items():
            counts[status] = counts.get(status, 0) + number
    close_runners()  # a DaskRunner's cluster and its batch jobs end with the run
    from plams_cli.core import jobindex

    jobindex.flush()  # the index entries of the jobs saved last
    stop_recording()  # the job cache gets the last changes
    summary = ", ".join(f"{number} {status}" for status, number in in_report_order(counts)) or "no jobs"
    log(f"Finished: {summary}", 1)
    main = config.default_jobmanager
    if config.get("erase_workdir"):
        shutil.rmtree(main.workdir, ignore_errors=True)
    logbridge.detach()
    logger.close_logfile()
    config.init = False
