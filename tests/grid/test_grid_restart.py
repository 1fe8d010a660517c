"""``plams -r`` after a kill: grid jobs the killed run left in the localhost SLURM are cancelled, not run twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plams_cli.cli._grid_leftovers import stop_leftovers
from plams_cli.runners.grid import read_job_record, write_job_record
from tests.conftest import python_env

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_up")]

_SCRIPT = Path(sys.executable).with_name("plams")
PLAMS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "plams_cli"]

# The job appends "start <id>" to COUNTER when it starts and "end <id>" when it ends.
LONG = """\
gr = GridRunner("slurm", sleepstep=0.5)
ShellJob(name=NAME, runscript=f"echo start $SLURM_JOB_ID >> '{COUNTER}'; sleep {SLEEP}; "
         f"echo end $SLURM_JOB_ID >> '{COUNTER}'").run(jobrunner=gr)
"""


def wait_until(predicate: Callable[[], object], timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def slurm_state(job_id: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return next((field.split("=", 1)[1] for field in shown.split() if field.startswith("JobState=")), "")


def test_restart_after_kill_cancels_the_job_still_running(tmp_path: Path, unique: str) -> None:
    counter, script = tmp_path / "counter", tmp_path / "g.plms"
    script.write_text(LONG)
    args = ["-f", "w", "-v", f"NAME={unique}", "-v", f"COUNTER={counter}"]
    live = subprocess.Popen([*PLAMS, *args, "-v", "SLEEP=120", str(script)], cwd=tmp_path, env=python_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: counter.exists() and "start" in counter.read_text(), what="the grid job to start")
        record_file = tmp_path / "w" / unique / f"{unique}.run.jobid"
        record = read_job_record(str(record_file))
        assert record is not None and record["grid"] == "slurm" and record["host"] == socket.gethostname()
        old_id = record["job_id"]
        assert record["cancel"] == f"scancel {old_id}"
        assert counter.read_text().split() == ["start", old_id]
        live.send_signal(signal.SIGKILL)
    finally:
        live.communicate(timeout=30)
    assert slurm_state(old_id) == "RUNNING"  # the killed run left it behind

    result = subprocess.run([*PLAMS, "-r", *args, "-v", "SLEEP=0", str(script)], cwd=tmp_path, env=python_env(),
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"Restart: cancelled slurm job {old_id} ({unique}, state R)" in result.stderr
    assert slurm_state(old_id) == "CANCELLED"
    lines = counter.read_text().splitlines()
    assert lines[0] == f"start {old_id}" and f"end {old_id}" not in lines  # the old one never finished
    new = json.loads((tmp_path / "w" / unique / f"{unique}.job.json").read_text())
    assert new["status"] == "successful"
    assert not (tmp_path / "w.res").exists()


def test_a_job_submitted_from_another_host_is_only_named(tmp_path: Path, unique: str) -> None:
    """A folder copied from elsewhere: the same id here may be another job, so plams only warns."""
    submitted = subprocess.run(["sbatch", "--parsable", "-J", unique, "-o", "/dev/null", "--wrap", "sleep 60"],
                               capture_output=True, text=True, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        job = tmp_path / "w.res" / "j"
        job.mkdir(parents=True)
        write_job_record(str(job), "j.run", {"job_id": job_id, "grid": "slurm", "host": "elsewhere",
                                             "cancel": f"scancel {job_id}"})
        wait_until(lambda: slurm_state(job_id) in ("PENDING", "RUNNING"), what="the job to be queued")
        lines = stop_leftovers(str(tmp_path / "w.res"))
        assert len(lines) == 1 and lines[0][0] == 0
        assert f"slurm job {job_id} (j, state " in lines[0][1]
        assert "not cancelled: it was submitted from elsewhere" in lines[0][1]
        assert lines[0][1].endswith(f"cancel the old one with: scancel {job_id}")
        assert slurm_state(job_id) in ("PENDING", "RUNNING")  # not touched

        (job / "j.run.exitcode").write_text('{"exit_code": 0}\n')  # a job that recorded its end is left alone
        assert stop_leftovers(str(tmp_path / "w.res")) == []
    finally:
        subprocess.run(["scancel", job_id], check=False)


def test_no_scheduler_to_ask_gives_a_warning(tmp_path: Path, path_without: Callable[..., str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    job = tmp_path / "w.res" / "j"
    job.mkdir(parents=True)
    write_job_record(str(job), "j.run", {"job_id": "12345", "grid": "slurm", "host": socket.gethostname(),
                                         "cancel": "scancel 12345"})
    monkeypatch.setenv("PATH", path_without("slurm", "pbs"))
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    lines = stop_leftovers(str(tmp_path / "w.res"))
    assert len(lines) == 1 and lines[0][0] == 0
    assert lines[0][1].startswith("Restart: cannot ask slurm whether job 12345 (j) of the killed run still runs")
    assert lines[0][1].endswith("if it does, cancel it: scancel 12345")
    assert os.listdir(job) == ["j.run.jobid"]
