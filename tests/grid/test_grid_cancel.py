"""``GridRunner.cancel()`` returns :class:`~plams_cli.runners.base.Stopped` records (real localhost SLURM)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plams_cli.errors import GridError
from plams_cli.runners.base import Stopped
from plams_cli.runners.grid import GridRunner, grid_settings
from tests.grid.test_grid_slurm import scontrol, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_up")]

Script = Callable[[Path, str, str], str]


@pytest.fixture
def held_job(jobdir: Path, runscript: Script, unique: str) -> Iterator[Callable[[GridRunner], str]]:
    """Submit a held job (``-H``) through a runner in a thread; returns its id once it is queued."""
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []
    ids: list[str] = []

    def submit(gr: GridRunner) -> str:
        name = runscript(jobdir, f"{unique}-held.run", "exit 0")

        def call() -> None:
            try:
                gr.call(name, str(jobdir), None, None, {"H": True, "J": unique})
            except GridError as exc:
                errors.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        threads.append(thread)
        wait_for(lambda: bool(gr.active_jobs))
        ids.append(next(iter(gr.active_jobs)))
        return ids[-1]

    yield submit
    for job_id in ids:  # the test's own clean-up, whatever the runner did
        subprocess.run(["scancel", job_id], check=False, capture_output=True)
    for thread in threads:
        thread.join(30)
    assert all("cancelled by plams" in str(e) for e in errors), errors


def test_cancel_returns_one_record_per_job(held_job: Callable[[GridRunner], str], unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    job_id = held_job(gr)
    wait_for(lambda: gr.active_jobs.get(job_id) == "PD")
    stopped = gr.cancel()
    assert stopped == [Stopped("grid", job_id, f"{unique}-held", detail="PD", ok=True, grid="slurm")]
    assert str(stopped[0]) == f"cancelled slurm job {job_id} ({unique}-held, PD)"
    wait_for(lambda: "JobState=CANCELLED" in scontrol(job_id))
    assert gr.cancel() == []  # nothing left to cancel


def test_refused_cancel_is_a_record_that_is_not_ok(held_job: Callable[[GridRunner], str]) -> None:
    settings = grid_settings("slurm")
    settings = {**settings, "name": "refusing", "commands": {**settings["commands"], "cancel": ["false", "{ids}"]}}
    gr = GridRunner(settings, sleepstep=1)
    job_id = held_job(gr)
    [record] = gr.cancel()
    assert (record.kind, record.job_id, record.grid, record.ok) == ("grid", job_id, "refusing", False)
    assert record.detail == f"false {job_id} (exit 1)"
    assert str(record).startswith(f"could not cancel refusing job {job_id} (")
    assert "JobState=PENDING" in scontrol(job_id)  # the scheduler still has it: the record said so


def test_grid_without_cancel_command_gives_a_record_saying_so(held_job: Callable[[GridRunner], str]) -> None:
    settings = grid_settings("slurm")
    settings = {**settings, "commands": {k: v for k, v in settings["commands"].items() if k != "cancel"}}
    gr = GridRunner(settings, sleepstep=1)
    job_id = held_job(gr)
    [record] = gr.cancel()
    assert not record.ok and record.job_id == job_id and record.signals == ()
    assert record.detail == "grid 'custom' has no commands.cancel"
