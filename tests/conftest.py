"""Fixtures shared by the whole suite."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Runs in the tests record their jobs in a job cache of their own, never in the user's
# (child processes inherit it); the job-cache tests point PLAMS_JOBCACHE elsewhere.
_JOBCACHE_DIR = tempfile.mkdtemp(prefix="plams-tests-jobcache-")
os.environ["PLAMS_JOBCACHE"] = os.path.join(_JOBCACHE_DIR, "jobcache.sqlite")
# ... and keep their parsed defaults there too, not in the user's cache folder.
os.environ["PLAMS_DEFAULTS_CACHE"] = os.path.join(_JOBCACHE_DIR, "defaults.cache")
atexit.register(shutil.rmtree, _JOBCACHE_DIR, True)


@pytest.fixture
def fresh_config() -> Iterator[object]:
    """Give the test the global ``config`` and put every value back afterwards."""
    from plams_cli.core import logger
    from plams_cli.core.runtime import config, finish

    shared = ("default_jobrunner", "default_jobmanager")
    saved = {key: (value.copy() if hasattr(value, "copy") and key not in shared else value)
             for key, value in dict.items(config)}
    config.log.stdout = 0
    # a runner of its own: cancel_all() in another test cancels every live runner for good
    from plams_cli.runners.local import JobRunner

    config.default_jobrunner = JobRunner()
    yield config
    if config.get("init"):
        finish()
    logger.close_logfile()
    logger.set_stream("stdout")
    dict.clear(config)
    for key, value in saved.items():
        config[key] = value


@pytest.fixture
def run_in(tmp_path: Path, fresh_config: object) -> Iterator[object]:
    """An initialised run whose working folder is ``tmp_path/work``; finished at teardown."""
    from plams_cli.core.runtime import finish, init

    manager = init(path=str(tmp_path), folder="work", quiet=True)
    yield manager
    finish()


def python_env() -> dict[str, str]:
    """Environment for child Python processes: the project importable, no user defaults."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PLAMS_DEFAULTS", None)
    return env


def logged_status(workdir: Path, name: str) -> str | None:
    """The last status the run of ``workdir`` logged for job ``name`` (``JOB name STATUS`` in its logfile), lower-case.

    How a test tells a job this run reused (``copied``) from one it ran: a reused job keeps
    the saved files of the job it reuses, whose summary says how that one ended.
    """
    found = None
    prefix = f"JOB {name} "
    for line in (workdir / "logfile").read_text(errors="replace").splitlines():
        _, _, message = line.partition("] ")
        if message.startswith(prefix) and " " not in message[len(prefix):]:
            found = message[len(prefix):].lower()
    return found


@pytest.fixture
def child_env() -> dict[str, str]:
    """See :func:`python_env`."""
    return python_env()


PYTHON = sys.executable


# --- the reliability report of the fault suite (tests/faults/report.py) -------------------
# Here, not in tests/faults/conftest.py: under xdist only this file is loaded by the
# controller, which alone sees the end of the whole run.

def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        from tests.faults import report

        report.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write tests/RELIABILITY.md after a green run that went through every fault case."""
    if not _is_controller(session.config) or exitstatus != 0:
        return
    from tests.faults import report

    if report.complete():
        report.write_report()
