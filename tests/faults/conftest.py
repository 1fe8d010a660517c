"""Fixtures of the fault suite: those of the command tests, and a ``plams`` call with its own environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import PLAMS as PLAMS  # the tests here use it too
from tests.cli.conftest import cli_config, env, start_plams  # noqa: F401 - fixtures used by the tests here
from tests.grid.conftest import partition, slurm_up, unique  # noqa: F401 - fixtures of the scheduler faults

Call = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def plams_env(env: dict[str, str]) -> Call:  # noqa: F811
    """Run ``plams ARGS…`` in ``cwd`` with ``extra`` environment variables (bytes allowed in args)."""

    def call(*args: str | bytes, cwd: Path, extra: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PLAMS, *args], cwd=cwd, env=env | (extra or {}), capture_output=True, text=True,
                              errors="backslashreplace", timeout=timeout, stdin=subprocess.DEVNULL)

    return call


def tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) with its kind and, for files, its size."""
    entries: dict[str, str] = {}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            kind = "link" if os.path.islink(path) else "dir" if os.path.isdir(path) else "other"
            if kind == "other" and os.path.isfile(path):
                kind = f"file:{os.path.getsize(path)}"
            entries[os.path.relpath(path, folder)] = kind
    return entries


def tracebacks(*texts: str) -> int:
    """How many Python tracebacks the texts hold."""
    return sum(text.count("Traceback (most recent call last)") for text in texts)
