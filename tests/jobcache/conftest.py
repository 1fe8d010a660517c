"""Fixtures of the job cache tests: a cache file of the test's own, the CLI runner."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A cache file that does not exist yet; ``$PLAMS_JOBCACHE`` names it."""
    path = str(tmp_path / "cache" / "jobs.sqlite")
    monkeypatch.setenv("PLAMS_JOBCACHE", path)
    return path


@pytest.fixture
def runner() -> CliRunner:
    """A click test runner (stdout and stderr apart)."""
    return CliRunner()


@pytest.fixture
def fake_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """Put an executable ``name`` with the shell ``body`` first on PATH (to answer like a
    scheduler's query command, or fail like one)."""
    folder = tmp_path / "fakebin"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(folder) + os.pathsep + os.environ["PATH"])

    def make(name: str, body: str) -> Path:
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    return make


def plams_env(tmp_path: Path, cache: str) -> dict[str, str]:
    """Environment of a ``plams`` subprocess using ``cache``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PLAMS_DEFAULTS", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["PLAMS_JOBCACHE"] = cache
    return env


from tests.grid.conftest import slurm_up as slurm_up  # noqa: E402  # the localhost SLURM fixture
