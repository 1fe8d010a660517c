"""Fixtures of the ``plams`` command tests: the installed command, a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = Path(sys.executable).with_name("plams")
#: the installed console script next to this interpreter, else ``python -m plams_cli``
PLAMS: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "plams_cli"]


@pytest.fixture
def runner() -> CliRunner:
    """A click test runner (stdout and stderr apart)."""
    return CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of a ``plams`` subprocess: the project importable, no user defaults."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    environment.pop("PLAMS_DEFAULTS", None)
    environment["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    environment.pop("PLAMS_GRID", None)
    return environment


@pytest.fixture
def cli_config() -> Iterator[Any]:
    """The global ``config`` and the log stream, put back after an in-process run."""
    from plams_cli.core import logger
    from plams_cli.core.runtime import config, finish

    saved = {key: (value.copy() if hasattr(value, "copy") and key not in ("default_jobrunner", "default_jobmanager")
                   else value) for key, value in dict.items(config)}
    # a runner of its own, as fresh_config gives: a test that cancels runs (a signal to a
    # session, cancel_all) cancels the runner it used for good, and xdist may run it first
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
def plams(env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``plams ARGS…`` to the end in ``cwd``; returns the completed process."""

    def call(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PLAMS, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return call


@pytest.fixture
def start_plams(env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``plams ARGS…`` in the background; every process left is killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen([*PLAMS, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


#: run by root, commands get these in front, so that file permissions bind them: root keeps its
#: uid (the interpreter may live in root's home) but loses the capabilities that bypass them
_WITHOUT_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture
def plams_unprivileged(env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``plams ARGS…`` in ``cwd`` so that file permissions apply to it, even under root (as in CI).

    Under root the command runs through ``setpriv`` (util-linux) without the capabilities
    ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH``: a file of mode 0 is unreadable and a
    folder of mode 0o555 unwritable, as for anyone else.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.fail("running as root needs setpriv (util-linux) to test file permissions")
        prefix = _WITHOUT_DAC_OVERRIDE

    def call(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *PLAMS, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return call


def one_error_line(stderr: str) -> str:
    """The message of ``stderr`` when it is exactly one line ``Error: …``; fails otherwise."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n") and lines[0].startswith("Error: "), stderr
    return lines[0]


def wait_for(predicate: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    """Poll ``predicate`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(params=["a 0", 'a"=0"', "a'; echo foo", "a\n0"], ids=["space", "quotes", "shell", "newline"])
def weird_tmp_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A tmp folder whose name a shell would misread (submitit's ``weird_tmp_path``)."""
    path: Path = tmp_path / request.param
    path.mkdir()
    return path


def listing(folder: Path) -> set[str]:
    """Names in ``folder``, hidden ones included."""
    return set(os.listdir(folder))
