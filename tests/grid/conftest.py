"""Fixtures of the grid tests: the localhost SLURM (and its PBS wrappers), job folders.

``.ci/run`` starts the cluster with ``SLURM_LOCAL_PBS=1 bash tests/schedulers/slurm_localhost.sh
start``. Without it these tests skip, except under ``CI=true``, where they fail: a CI run
that silently skipped the real-scheduler tests would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.needs import missing, under_ci

#: SLURM commands hidden to make "PBS wrappers alone"
SLURM_COMMANDS = (
    "sbatch", "squeue", "scancel", "scontrol", "sacct", "sacctmgr", "sinfo", "srun", "salloc",
    "sattach", "sbcast", "scrontab", "sdiag", "sh5util", "sprio", "sreport", "sshare", "sstat",
    "strigger", "sview", "sjstat", "smap",
)
#: how long, under CI=true, a first check waits for a SLURM that does not answer (a paused slurmctld)
SLURM_WAIT_S = 60.0
PBS_COMMANDS = ("qsub", "qstat", "qdel", "qalter", "qhold", "qrls", "qrerun", "pbsnodes", "mpiexec")


def _missing(what: str) -> None:
    missing(f"not available: {what}; start it with "
            "'SLURM_LOCAL_PBS=1 bash tests/schedulers/slurm_localhost.sh start'")


def _slurm_answers() -> bool:
    """Whether the localhost SLURM answers; under ``CI=true`` it gets a minute to do so.

    The scheduler fault cases pause slurmctld for 20 s (tests/faults); an xdist worker that
    first asks during the pause must wait for it rather than fail every grid test it runs.
    """
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    deadline = time.monotonic() + (SLURM_WAIT_S if under_ci() else 0)
    while not _slurm_answers_once():
        if time.monotonic() >= deadline:
            return False
        time.sleep(2)
    return True


def _slurm_answers_once() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        info = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    states = info.stdout.split()
    return "is UP" in ping.stdout and any(s in ("idle", "mixed", "allocated") for s in states)


@pytest.fixture(scope="session")
def slurm_up() -> None:
    """The localhost SLURM answers; fails under CI=true when it does not, else skips."""
    if not _slurm_answers():
        _missing("the localhost SLURM cluster")


@pytest.fixture(scope="session")
def pbs_up(slurm_up: None) -> None:
    """SLURM's PBS/Torque wrappers (slurm-wlm-torque) are installed over the running SLURM."""
    qsub = shutil.which("qsub")
    if qsub is None:
        _missing("the PBS wrappers (qsub)")
    with open(str(qsub), "rb") as handle:
        if b"Slurm" not in handle.read(4096):
            _missing("SLURM's PBS wrappers (this qsub is another one)")


@pytest.fixture(scope="session")
def partition(slurm_up: None) -> str:
    """The partition the grid tests submit to: ``plamstest`` of the localhost cluster, else the default one.

    On a machine whose SLURM runs without ``plamstest`` (a cluster login node) the tests use
    the partition it offers by default, or skip saying why (fail under ``CI=true``, where the
    localhost cluster must be the one running).
    """
    info = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=10).stdout.split()
    if "plamstest" in info:
        return "plamstest"
    if under_ci():
        missing("the running SLURM has no partition plamstest; is it the localhost cluster of "
                "tests/schedulers/slurm_localhost.sh?")
    default = next((name.rstrip("*") for name in info if name.endswith("*")), None)
    if default is None:
        missing(f"the running SLURM has no partition plamstest and no default one (partitions: {info})")
    return default


@pytest.fixture
def unique() -> str:
    """A job name no other test (or xdist worker) uses."""
    return f"plt{uuid.uuid4().hex[:8]}"


@pytest.fixture
def jobdir(tmp_path: Path) -> Path:
    """A job folder whose path holds a space (PLAMS broke on those)."""
    folder = tmp_path / "job folder"
    folder.mkdir()
    return folder


@pytest.fixture
def runscript() -> Callable[[Path, str, str], str]:
    """Write an executable ``#!/bin/sh`` runscript; returns its file name."""

    def write(folder: Path, name: str, body: str) -> str:
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
        path.chmod(0o755)
        return name

    return write


def _link_dir(target: Path, skip: tuple[str, ...], only: tuple[str, ...] | None = None) -> str:
    """A folder of symlinks to /usr/bin (merged /usr: /bin is the same), minus ``skip``."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir("/usr/bin"):
        if entry.name in skip or (only is not None and entry.name not in only):
            continue
        os.symlink(entry.path, target / entry.name)
    return str(target)


@pytest.fixture
def path_without(tmp_path: Path) -> Callable[..., str]:
    """``path_without("slurm")``: a PATH like /usr/bin with SLURM's or PBS's commands hidden."""

    def make(*hide: str) -> str:
        skip: tuple[str, ...] = ()
        if "slurm" in hide:
            skip += SLURM_COMMANDS
        if "pbs" in hide:
            skip += PBS_COMMANDS
        return _link_dir(tmp_path / ("bin-" + "-".join(hide or ("all",))), skip)

    return make
