"""Grid jobs in the job cache: the batch job id, queueing while held, then the real end."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from plams_cli import GridRunner, ShellJob, finish, init
from plams_cli.core import cache_recorder
from plams_cli.jobcache import JobCache


def _row(cache: str, path: str) -> dict[str, object] | None:
    jobs = JobCache(cache, load=True)
    try:
        for server in jobs.job_servers.values():
            for job in server.jobs:
                if job.path == path:
                    return job.job_spec()
    finally:
        jobs.close()
    return None


def _wait_for(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_config: object) -> Iterator[str]:
    path = str(tmp_path / "cache.sqlite")
    monkeypatch.setenv("PLAMS_JOBCACHE", path)
    init(path=str(tmp_path), folder="grid run", quiet=True)
    yield path
    finish()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_slurm_jobs_are_recorded_with_their_ids_and_ends(cache: str, unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    held = ShellJob("echo held", name=f"{unique}held")
    bad = ShellJob("exit 3", name=f"{unique}bad")
    thread = threading.Thread(target=lambda: held.run(jobrunner=gr, H=True, J=f"{unique}held"))
    thread.start()
    try:
        _check_the_records(cache, gr, held, bad, thread, unique)
    finally:  # a failed check must not leave the held job queued (finish() would wait for it)
        if thread.is_alive():
            gr.cancel()
        thread.join(60)


def _check_the_records(cache: str, gr: GridRunner, held: ShellJob, bad: ShellJob, thread: threading.Thread,
                       unique: str) -> None:
    bad.run(jobrunner=gr, J=f"{unique}bad")
    _wait_for(lambda: held.path is not None and Path(held.path, f"{held.name}.run.jobid").exists())
    assert held.path is not None and bad.path is not None
    record = json.loads(Path(held.path, f"{held.name}.run.jobid").read_text())
    # while SLURM holds it, the cache says queueing, under the batch job's id
    _wait_for(lambda: (_row(cache, cast(str, held.path)) or {}).get("status") == "queueing")
    row = _row(cache, held.path)
    assert row is not None and row["job_id"] == record["job_id"] and row["kind"] == "grid"
    assert row["grid"] == "slurm"
    subprocess.run(["scontrol", "release", record["job_id"]], check=True, capture_output=True)
    thread.join(120)
    held.results.wait()
    recorder = cache_recorder.current_recorder()
    assert recorder is not None
    recorder.flush()
    assert (_row(cache, held.path) or {}).get("status") == "finished"
    failed = _row(cache, bad.path)
    assert failed is not None and failed["status"] == "failed" and failed["kind"] == "grid"
    bad_record = json.loads(Path(bad.path, f"{bad.name}.run.jobid").read_text())
    assert failed["job_id"] == bad_record["job_id"]
