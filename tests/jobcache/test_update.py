"""Status updates: PID and start time for local jobs, batched exact-id queue queries for
grid jobs, failed queries change nothing, the localhost SLURM for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import psutil
import pytest

from plams_cli.jobcache import Job, JobCache, JobServer, JobStatus
from plams_cli.jobcache.update import update_jobs


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def test_a_running_process_with_its_start_time_is_the_job(sleeper: subprocess.Popen[bytes]) -> None:
    start = psutil.Process(sleeper.pid).create_time()
    job = Job(sleeper.pid, "python", "/w/a", status="queueing", kind="local", pid_start=start)
    report = update_jobs([job], "localhost")
    assert job.status is JobStatus.running and report.checked == 1 and report.changed == 1


def test_pid_reuse_a_new_process_with_the_recorded_pid_is_not_the_job(sleeper: subprocess.Popen[bytes]) -> None:
    # The job was recorded with this PID when another process (started 100 s earlier) had it.
    start = psutil.Process(sleeper.pid).create_time()
    job = Job(sleeper.pid, "python", "/w/a", status="running", kind="local", pid_start=start - 100)
    update_jobs([job], "localhost")
    assert job.status is JobStatus.unknown


def test_pid_reuse_without_start_time_a_process_newer_than_the_record_is_not_the_job(
        sleeper: subprocess.Popen[bytes]) -> None:
    start = psutil.Process(sleeper.pid).create_time()
    old = Job(sleeper.pid, "python", "/w/a", status="running", mtime=start - 100)
    update_jobs([old], "localhost")
    assert old.status is JobStatus.unknown
    recent = Job(sleeper.pid, "python", "/w/b", status="queueing", mtime=start + 0.5)
    update_jobs([recent], "localhost")
    assert recent.status is JobStatus.running


def _gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


@pytest.mark.parametrize(("summary", "expected"), [
    ({"status": "successful"}, "finished"), ({"status": "crashed"}, "failed"),
    ({"status": "running"}, "unknown"), (None, "unknown"),
], ids=["successful", "crashed", "not-ended", "no-summary"])
def test_a_vanished_local_job_ends_as_its_summary_says(tmp_path: Path, summary: dict[str, str] | None,
                                                       expected: str) -> None:
    folder = tmp_path / "job1"
    folder.mkdir()
    if summary is not None:
        (folder / "job1.job.json").write_text(json.dumps(summary))
    job = Job(_gone_pid(), "ShellJob", str(folder), status="running", kind="local", pid_start=time.time() - 5)
    update_jobs([job], "localhost")
    assert job.status.value == expected


def test_final_and_remote_jobs_are_not_checked() -> None:
    done = Job(_gone_pid(), "p", "/w/a", status="finished", kind="local")
    assert update_jobs([done], "localhost").checked == 0 and done.status is JobStatus.finished
    remote = Job(_gone_pid(), "p", "/w/a", status="running", kind="local")
    report = update_jobs([remote], "far-away.example")
    assert report.skipped_hosts == ["far-away.example"] and remote.status is JobStatus.running


SQUEUE_LOG = "squeue.log"


@pytest.fixture
def fake_squeue(fake_command: Callable[[str, str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """A ``squeue`` that logs its arguments and prints ``output`` (squeue's ``%i %t`` lines)."""

    def make(output: str, exit_code: int = 0, stderr: str = "") -> Path:
        log = tmp_path / SQUEUE_LOG
        return fake_command("squeue", f'echo "$@" >> "{log}"\nprintf "{output}"\n'
                                      f'printf "{stderr}" >&2\nexit {exit_code}')

    return make


def test_grid_ids_match_exactly_in_one_batched_query(fake_squeue: Callable[[str], Path], tmp_path: Path) -> None:
    fake_squeue("1234 R\\n12345 PD\\n")
    jobs = [Job(i, "ShellJob", f"/w/{i}", status="queueing", kind="grid", grid="slurm")
            for i in ("123", "1234", "12345", "23")]
    report = update_jobs(jobs, "localhost")
    assert [j.status.value for j in jobs] == ["finished", "running", "queueing", "finished"]
    calls = (tmp_path / SQUEUE_LOG).read_text().splitlines()
    assert len(calls) == 1 and calls[0].endswith("-j 123,1234,12345,23")
    assert report.checked == 4 and not report.failures


@pytest.mark.parametrize(("command", "grid", "body"), [
    ("squeue", "slurm", 'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1'),
    ("qstat", "pbs", 'echo "qstat: cannot connect to server (errno=111)" >&2; exit 2'),
], ids=["squeue", "qstat"])
def test_a_failing_queue_query_leaves_statuses_untouched(fake_command: Callable[[str, str], Path], command: str,
                                                         grid: str, body: str) -> None:
    fake_command(command, body)
    jobs = [Job("77", "p", "/w/a", status="running", kind="grid", grid=grid),
            Job("78", "p", "/w/b", status="queueing", kind="grid", grid=grid)]
    stamps = [j.timestamp() for j in jobs]
    report = update_jobs(jobs, "localhost")
    assert [j.status.value for j in jobs] == ["running", "queueing"]
    assert [j.timestamp() for j in jobs] == stamps
    assert len(report.failures) == 1 and "left as it was" in report.failures[0] and command in report.failures[0]


def test_an_unknown_grid_is_a_failure_not_a_finish() -> None:
    job = Job("5", "p", "/w/a", status="running", kind="grid", grid="no-such-grid")
    report = update_jobs([job], "localhost")
    assert job.status is JobStatus.running and report.failures


def test_update_saves_only_unchanged_rows(cache_path: str, sleeper: subprocess.Popen[bytes]) -> None:
    """A check does not overwrite what a live writer recorded after the check read the row."""
    jc = JobCache(cache_path)
    jc.record("localhost", [{"path": "/w/gone", "job_id": str(_gone_pid()), "kind": "local", "status": "running"},
                            {"path": "/w/live", "job_id": str(sleeper.pid), "kind": "local", "status": "queueing",
                             "pid_start": psutil.Process(sleeper.pid).create_time()}])
    jc.load()
    report = jc.update()
    assert report.changed == 2
    jc.record("localhost", [{"path": "/w/gone", "status": "finished", "mtime": time.time() + 1}])  # the run's word
    jc.dump()
    result = {j.path: j.status.value for j in JobCache(cache_path, load=True).job_servers["localhost"].jobs}
    assert result == {"/w/gone": "finished", "/w/live": "running"}


def test_server_auto_update_only_on_this_machine() -> None:
    server = JobServer("elsewhere.example")
    server.add({"job_id": "1", "program": "p", "path": "/w/a", "status": "running"})
    assert server.auto_update().skipped_hosts == ["elsewhere.example"]
    assert server.jobs[0].status is JobStatus.running


@pytest.mark.slurm
def test_localhost_slurm_job_statuses(slurm_up: None, cache_path: str, tmp_path: Path) -> None:
    name = f"pljc{uuid.uuid4().hex[:8]}"
    submitted = subprocess.run(["sbatch", "--parsable", "-J", name, "-o", os.devnull, "--wrap", "sleep 120"],
                               capture_output=True, text=True, timeout=60, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        jc = JobCache(cache_path)
        jc.record("localhost", [{"path": str(tmp_path / name), "job_id": job_id, "kind": "grid", "grid": "slurm",
                                 "status": "queueing"},
                                {"path": str(tmp_path / "prefix"), "job_id": job_id[:-1] + "x", "kind": "grid",
                                 "grid": "slurm", "status": "queueing"}])
        jc.load()
        jc.update()
        assert jc.job_servers["localhost"].jobs[0].status in (JobStatus.queueing, JobStatus.running)
    finally:
        subprocess.run(["scancel", job_id], timeout=60, check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%t", "-j", job_id], capture_output=True,
                                text=True, timeout=60).stdout.split()
        if not listed or listed[0] not in ("PD", "R", "CG"):
            break
        time.sleep(0.5)
    jc.load()
    report = jc.update()
    assert not report.failures
    assert cast(JobStatus, jc.job_servers["localhost"].jobs[0].status) is JobStatus.finished
