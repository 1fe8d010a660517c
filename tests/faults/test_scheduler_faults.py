"""Scheduler faults on the localhost SLURM: the controller stopped for 20 s, a job cancelled from outside.

Other sessions use the same cluster: the controller is paused (SIGSTOP) and always resumed
(SIGCONT in a ``finally``), never stopped or restarted; ``scancel`` only cancels the job
this test submitted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.needs import missing

from . import report
from .conftest import PLAMS, tracebacks

CONTROLLER_PID = Path("/tmp/slurm-localhost/run/slurmctld.pid")
PAUSE_S = 20


def _job_ids(folder: Path) -> list[str]:
    ids = []
    for record in folder.rglob("*.jobid"):
        try:
            ids.append(str(json.loads(record.read_text())["job_id"]))
        except (ValueError, KeyError, OSError):
            pass  # being written
    return ids


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _controller() -> psutil.Process:
    message = f"no slurmctld of the localhost cluster ({CONTROLLER_PID})"
    try:
        process = psutil.Process(int(CONTROLLER_PID.read_text().split()[0]))
        if process.name() == "slurmctld":
            return process
    except (OSError, ValueError, psutil.Error):
        pass
    missing(message)


SCRIPT = """
gr = GridRunner("slurm", sleepstep=1)
jobs = [ShellJob(f"sleep {SLEEP}; echo done {i}", name=f"{NAME}{i}") for i in range(3)]
for job in jobs:
    job.run(jobrunner=gr, queue=PART, J=f"{NAME} {job.name}")
for job in jobs:
    job.results.wait()
    print(job.name, job.status, job.get_errormsg())
"""


@pytest.mark.long
@pytest.mark.slurm
def test_controller_paused_for_20_seconds(tmp_path: Path, env: dict[str, str], slurm_up: None, partition: str,
                                          unique: str) -> None:
    controller = _controller()
    (tmp_path / "s.plms").write_text(SCRIPT)
    process = subprocess.Popen([*PLAMS, "-f", "w", "-v", f"NAME={unique}", "-v", f"PART={partition}", "-v", "SLEEP=5",
                                "s.plms"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        _wait(lambda: len(_job_ids(tmp_path / "w")) == 3, 120, "the three submissions")
        controller.send_signal(signal.SIGSTOP)
        try:
            time.sleep(PAUSE_S)
            unfinished = process.poll() is None  # the run waits while the scheduler cannot be asked
        finally:
            controller.send_signal(signal.SIGCONT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    statuses = [line.split()[1] for line in stdout.splitlines()]
    seen = tracebacks(stderr, stdout)
    report.record("slurmctld stopped for 20 s during a grid run", 1, jobs=3,
                  lost=sum(status != "successful" for status in statuses) + (3 - len(statuses)), tracebacks=seen,
                  note="slurmctld paused (SIGSTOP) 20 s while 3 jobs ran: the run waited, then all 3 ended "
                       "successful once it was back")
    assert process.returncode == 0 and unfinished, stderr
    assert statuses == ["successful"] * 3, stdout + stderr
    assert seen == 0


@pytest.mark.slurm
def test_job_cancelled_from_outside(tmp_path: Path, env: dict[str, str], slurm_up: None, partition: str,
                                    unique: str) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT.replace("range(3)", "range(1)"))
    process = subprocess.Popen([*PLAMS, "-f", "w", "-v", f"NAME={unique}", "-v", f"PART={partition}", "-v",
                                "SLEEP=300", "s.plms"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        _wait(lambda: len(_job_ids(tmp_path / "w")) == 1, 120, "the submission")
        (job_id,) = _job_ids(tmp_path / "w")
        time.sleep(1)
        subprocess.run(["scancel", job_id], check=True, timeout=30)  # only the job this test submitted
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    seen = tracebacks(stderr, stdout)
    report.record("grid job cancelled from outside (scancel)", 1, jobs=1, tracebacks=seen,
                  note="scancel of a running job: reported crashed, with the scheduler's reason")
    assert process.returncode == 0, stderr
    name, status, *reason = stdout.split()
    assert (name, status) == (f"{unique}0", "crashed"), stdout
    assert "CANCELLED" in " ".join(reason).upper(), stdout
    assert seen == 0
