"""GridRunner(grid='pbs') through SLURM's PBS/Torque wrappers (slurm-wlm-torque): real qsub syntax."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plams_cli.errors import GridError
from plams_cli.runners.grid import GridRunner

pytestmark = [pytest.mark.pbs, pytest.mark.usefixtures("pbs_up")]

Script = Callable[[Path, str, str], str]


def qstat_full(job_id: str) -> str:
    return subprocess.run(["qstat", "-f", job_id], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("code", [0, 3], ids=["exit-0", "exit-3"])
def test_pbs_exit_codes_and_flags(jobdir: Path, runscript: Script, unique: str, code: int, partition: str) -> None:
    # jobdir has a space in its path; the wrappers pass no path of ours to sbatch
    name = runscript(jobdir, f"{unique}.run", f"echo out; exit {code}")
    gr = GridRunner("pbs", sleepstep=1)
    assert gr.call(name, str(jobdir), f"{unique}.out", f"{unique}.err", {"queue": partition, "N": unique}) == code
    assert (jobdir / f"{unique}.out").read_text() == "out\n"
    job_id = (jobdir / f"{name}.exitcode").read_text().split('"job_id": "')[1].split('"')[0]
    shown = qstat_full(job_id)
    assert f"Job_Name = {unique}" in shown and f"queue = {partition}" in shown


def test_pbs_runscript_name_with_space(jobdir: Path, runscript: Script) -> None:
    name = runscript(jobdir, "my job.run", "exit 0")
    assert GridRunner("pbs", sleepstep=1).call(name, str(jobdir), "my job.out", "my job.err", {}) == 0


def test_pbs_cancelled_from_outside(jobdir: Path, runscript: Script, unique: str) -> None:
    name = runscript(jobdir, f"{unique}.run", "sleep 60")
    gr = GridRunner("pbs", sleepstep=1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            gr.call(name, str(jobdir), None, None, {"N": unique})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while "R" not in gr.active_jobs.values():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (job_id,) = gr.active_jobs
    subprocess.run(["qdel", job_id], check=True)
    thread.join(30)
    assert not thread.is_alive()
    # The wrappers' qstat -f says only "job_state = C"; the SLURM under them names the reason.
    assert len(errors) == 1 and isinstance(errors[0], GridError), errors
    assert "CANCELLED" in str(errors[0]) and job_id in str(errors[0])


def test_pbs_cancel_by_runner(jobdir: Path, runscript: Script, unique: str) -> None:
    gr = GridRunner("pbs", sleepstep=1)
    errors: list[BaseException] = []
    name = runscript(jobdir, f"{unique}.run", "sleep 60")
    thread = threading.Thread(target=lambda: errors.append(
        pytest.raises(GridError, gr.call, name, str(jobdir), None, None, {"N": unique}).value))
    thread.start()
    deadline = time.monotonic() + 30
    while not gr.active_jobs:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = [str(record) for record in gr.cancel()]
    thread.join(30)
    assert len(lines) == 1 and str(lines[0]).startswith("cancelled pbs job")
    assert "cancelled by plams" in str(errors[0])
