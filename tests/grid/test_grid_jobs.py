"""End to end: jobs run through GridRunner on the localhost SLURM and the PBS wrappers."""

from __future__ import annotations

from pathlib import Path

import pytest

from plams_cli import GridRunner, JobStatus, ShellJob, finish, init
from plams_cli.core import config


@pytest.fixture
def run_folder(tmp_path: Path):
    """A fresh plams run in a folder whose path has a space; finished afterwards."""
    init(path=str(tmp_path), folder="grid run", quiet=True)
    yield tmp_path / "grid run"
    finish()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_jobs_through_slurm(run_folder: Path, unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    ok = ShellJob("echo hello", name=f"{unique}ok")
    bad = ShellJob("echo oops >&2; exit 3", name=f"{unique}bad")
    r_ok = ok.run(jobrunner=gr, queue="plamstest", J=f"{unique} ok")
    r_bad = bad.run(jobrunner=gr, J=f"{unique} bad")
    r_ok.wait()
    r_bad.wait()
    assert ok.status == JobStatus.SUCCESSFUL, ok.get_errormsg()
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
def test_jobs_through_pbs(run_folder: Path, unique: str) -> None:
    gr = GridRunner("pbs", sleepstep=1)
    ok = ShellJob("echo hello", name=f"{unique}pok")
    bad = ShellJob("exit 3", name=f"{unique}pbad")
    ok.run(jobrunner=gr, queue="plamstest")
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
