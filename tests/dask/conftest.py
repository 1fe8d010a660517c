"""Fixtures of the DaskRunner tests: the extra installed, the localhost SLURM (from the grid tests).

The extra ``plams-cli[dask]`` is part of ``.[test]``; without it these tests skip, except
under ``CI=true``, where they fail (as the grid tests do without SLURM).
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.grid.conftest import partition as partition  # noqa: F401 - fixtures shared with the grid tests
from tests.grid.conftest import slurm_up as slurm_up  # noqa: F401
from tests.grid.conftest import unique as unique  # noqa: F401
from tests.needs import missing as need


@pytest.fixture(autouse=True, scope="session")
def dask_extra() -> None:
    """The packages of ``plams-cli[dask]`` are installed (fail under CI=true, else skip)."""
    missing = [name for name in ("dask", "distributed", "dask_jobqueue") if importlib.util.find_spec(name) is None]
    if missing:
        need(f"the extra plams-cli[dask] is not installed (missing {', '.join(missing)})")


@pytest.fixture
def runscript() -> Callable[[Path, str, str], str]:
    """Write an executable ``#!/bin/sh`` runscript into a folder; returns its file name."""

    def write(folder: Path, name: str, body: str) -> str:
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
        path.chmod(0o755)
        return name

    return write


def my_batch_jobs(name: str) -> list[str]:
    """Ids of this test's batch jobs (by job name) SLURM still has pending or running."""
    listing = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %t"], capture_output=True, text=True,
                             timeout=30).stdout
    return [line.split()[0] for line in listing.splitlines() if line.split()[1:2] != ["CG"]]


@pytest.fixture
def scancel_mine(unique: str) -> Iterator[str]:  # noqa: F811 - the fixture imported above
    """``unique``, and every batch job of that name cancelled after the test, whatever it did."""
    yield unique
    ids = my_batch_jobs(unique)
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
