"""End to end: jobs run through GridRunner on the localhost SLURM and the PBS wrappers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plams_cli import GridRunner, JobStatus, ShellJob, finish, init
from plams_cli.core import config


@pytest.fixture
def run_folder(tmp_path: Path) -> Iterator[Path]:
    """A fresh plams run in a folder whose path has a space; finished afterwards."""
    init(path=str(tmp_path), folder="grid run", quiet=True)
    yield tmp_path / "grid run"
    finish()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_jobs_through_slurm(run_folder: Path, unique: str, partition: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    ok = ShellJob("echo hello", name=f"{unique}ok")
    bad = ShellJob("echo oops >&2; exit 3", name=f"{unique}bad")
    r_ok = ok.run(jobrunner=gr, queue=partition, J=f"{unique} ok")
    r_bad = bad.run(jobrunner=gr, J=f"{unique} bad")
    r_ok.wait()
    r_bad.wait()
    assert ok.status == JobStatus.SUCCESSFUL, ok.get_errormsg()
    assert ok.path is not None
    assert (Path(ok.path) / f"{ok.name}.out").read_text() == "hello\n"
    assert bad.status == JobStatus.CRASHED  # PLAMS would say successful
    message = bad.get_errormsg() or ""
    assert "3" in message and "oops" in message


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_stdout_redirect_through_slurm(run_folder: Path, unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    # as PLAMS's job classes do: with stdout_redirect the runscript writes <name>.out itself
    name = f"{unique}redir"
    job = ShellJob(f"echo redirected >{name}.out", name=name)
    job.settings.runscript.stdout_redirect = True
    job.run(jobrunner=gr).wait()
    assert job.status == JobStatus.SUCCESSFUL, job.get_errormsg()
    assert job.path is not None
    assert (Path(job.path) / f"{job.name}.out").read_text() == "redirected\n"


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_refused_submission_crashes_the_job(run_folder: Path, unique: str) -> None:
    job = ShellJob("exit 0", name=f"{unique}refused")
    job.run(jobrunner=GridRunner("slurm", sleepstep=1), queue="nosuchpartition").wait()
    assert job.status == JobStatus.CRASHED
    assert "nvalid partition" in (job.get_errormsg() or "")


@pytest.mark.pbs
@pytest.mark.usefixtures("pbs_up")
def test_jobs_through_pbs(run_folder: Path, unique: str, partition: str) -> None:
    gr = GridRunner("pbs", sleepstep=1)
    ok = ShellJob("echo hello", name=f"{unique}pok")
    bad = ShellJob("exit 3", name=f"{unique}pbad")
    ok.run(jobrunner=gr, queue=partition)
    bad.run(jobrunner=gr)
    ok.results.wait()
    bad.results.wait()
    assert ok.status == JobStatus.SUCCESSFUL, ok.get_errormsg()
    assert bad.status == JobStatus.CRASHED and "3" in (bad.get_errormsg() or "")


def test_gridrunner_is_exported() -> None:
    import plams_cli
    from plams_cli.runners import GridRunner as FromRunners

    assert plams_cli.GridRunner is FromRunners is GridRunner
    assert config is not None


GRID_SCRIPT = """
gr = GridRunner("slurm", sleepstep=1)
jobs = [ShellJob("sleep 120 # %d" % i, name="{unique}q%d" % i) for i in range(3)]
for job in jobs:
    job.run(jobrunner=gr, J="{unique}")
"""


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_ctrl_c_in_plams_cancels_this_runs_grid_jobs(tmp_path: Path, unique: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import python_env

    script = tmp_path / "grid.plms"
    script.write_text(GRID_SCRIPT.replace("{unique}", unique))
    plams = Path(sys.executable).with_name("plams")
    command = [str(plams)] if plams.exists() else [sys.executable, "-m", "plams_cli"]
    process = subprocess.Popen([*command, "-f", "w", str(script)], cwd=tmp_path, env=python_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def queued() -> list[str]:
        listing = subprocess.run(["squeue", "-h", "-n", unique, "-o", "%i"], capture_output=True, text=True)
        return listing.stdout.split()

    deadline = time.monotonic() + 60
    while len(queued()) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    ids = queued()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    for job_id in ids:
        assert f"cancelled slurm job {job_id}" in stderr
    deadline = time.monotonic() + 30
    while queued():
        assert time.monotonic() < deadline, f"still queued: {queued()}"
        time.sleep(0.2)
    for job_id in ids:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        assert "JobState=CANCELLED" in shown
