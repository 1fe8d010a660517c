"""Every run feeds the job cache: the recorder on the life-cycle seam, end to end."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from plams_cli import JobRunner, MultiJob, ShellJob
from plams_cli.core import cache_recorder, finish, init
from plams_cli.jobcache import JobCache
from tests.cli.conftest import PLAMS, wait_for
from tests.conftest import python_env

SCRIPT = """
r = JobRunner(parallel=True, maxjobs=2)
for i in range(6):
    ShellJob(name="ok", runscript=f"echo {i}").run(jobrunner=r)
ShellJob(name="bad", runscript="exit 3").run()
MultiJob(name="multi", children=[ShellJob(name="child", runscript="echo c")]).run()
ShellJob(name="ok", runscript="echo 0").run()   # a duplicate: copied, not run
"""


def _rows(cache: str) -> list[dict[str, object]]:
    cache_obj = JobCache(cache, load=True)
    try:
        return [job.job_spec() | {"host": host} for host, server in cache_obj.job_servers.items()
                for job in server.jobs]
    finally:
        cache_obj.close()


def test_a_plams_run_records_every_job_with_its_final_status(tmp_path: Path) -> None:
    script = tmp_path / "s.plms"
    script.write_text(SCRIPT)
    cache = str(tmp_path / "cache.sqlite")
    env = {**python_env(), "PLAMS_JOBCACHE": cache}
    run = subprocess.run([*PLAMS, "-q", "-f", "w", str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    listing = subprocess.run([*PLAMS, "jobs", "list", "--json"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert listing.returncode == 0, listing.stderr
    jobs = {os.path.relpath(str(job["path"]), tmp_path / "w"): job for job in json.loads(listing.stdout)}
    expected = {f"ok{suffix}": "finished" for suffix in ("", ".002", ".003", ".004", ".005", ".006", ".007")}
    expected |= {"bad": "failed", "multi": "finished", "multi/child": "finished"}
    assert {path: job["status"] for path, job in jobs.items()} == expected
    ran = [job for path, job in jobs.items() if path != "ok.007" and job["program"] == "ShellJob"]
    assert all(job["kind"] == "local" and str(job["job_id"]).isdigit() for job in ran)
    assert len({job["job_id"] for job in ran}) == len(ran)  # one process each
    assert not jobs["ok.007"].get("job_id")  # copied: nothing ran
    assert jobs["bad"]["submit"] == str(tmp_path / "w" / "bad" / "bad.run")
    assert jobs["bad"]["input_fname"] == "bad.in" and jobs["bad"]["output_fname"] == "bad.out"
    assert jobs["multi"]["program"] == "MultiJob"
    assert jobs["multi/child"]["comment"] == f"job multi/child in {tmp_path / 'w'}"


@pytest.mark.parametrize("how", ["env-off", "config-off"])
def test_recording_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_config: object,
                                     how: str) -> None:
    cache = tmp_path / "cache.sqlite"
    if how == "env-off":
        monkeypatch.setenv("PLAMS_JOBCACHE", "off")
    else:
        monkeypatch.setenv("PLAMS_JOBCACHE", str(cache))
        fresh_config.jobcache.enabled = False  # type: ignore[attr-defined]
    init(path=str(tmp_path), folder="w", quiet=True)
    assert cache_recorder.current_recorder() is None
    ShellJob(name="j", runscript="true").run()
    finish()
    assert not cache.exists()


def test_config_path_is_used_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          fresh_config: object) -> None:
    monkeypatch.delenv("PLAMS_JOBCACHE")
    fresh_config.jobcache.path = str(tmp_path / "from-config.sqlite")  # type: ignore[attr-defined]
    init(path=str(tmp_path), folder="a", quiet=True)
    ShellJob(name="j", runscript="true").run()
    finish()
    assert [row["status"] for row in _rows(str(tmp_path / "from-config.sqlite"))] == ["finished"]
    monkeypatch.setenv("PLAMS_JOBCACHE", str(tmp_path / "from-env.sqlite"))
    init(path=str(tmp_path), folder="b", quiet=True)
    ShellJob(name="j", runscript="true").run()
    finish()
    assert len(_rows(str(tmp_path / "from-env.sqlite"))) == 1
    assert len(_rows(str(tmp_path / "from-config.sqlite"))) == 1


def test_an_unwritable_cache_is_one_warning_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                fresh_config: object,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache's folder should be")
    monkeypatch.setenv("PLAMS_JOBCACHE", str(blocker / "cache.sqlite"))
    fresh_config.log.stdout = 1  # type: ignore[attr-defined]
    init(path=str(tmp_path), folder="w", quiet=True)
    recorder = cache_recorder.current_recorder()
    assert recorder is not None
    runner = JobRunner(parallel=True)
    jobs = [ShellJob(name="j", runscript="true") for _ in range(20)]
    for job in jobs:
        job.run(jobrunner=runner)
    multi = MultiJob(name="m", children=[ShellJob(name="c", runscript="true")])
    multi.run()
    finish()
    assert all(job.ok() for job in jobs) and multi.ok()
    assert recorder.failures >= 1 and recorder.written == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "job cache" in line]
    assert len(warnings) == 1 and "cannot be written" in warnings[0]


def test_many_parallel_jobs_are_all_recorded_once(run_in: object, tmp_path: Path) -> None:
    runner = JobRunner(parallel=True, maxjobs=2)
    jobs = [ShellJob(name="p", runscript=f"echo {i}") for i in range(200)]
    for job in jobs:
        job.run(jobrunner=runner)
    recorder = cache_recorder.current_recorder()
    assert recorder is not None
    path = recorder.resolved_path()
    assert path is not None
    finish()
    rows = [row for row in _rows(path) if str(row["path"]).startswith(str(tmp_path))]
    assert sorted(str(row["path"]) for row in rows) == sorted(os.path.abspath(str(job.path)) for job in jobs)
    assert {row["status"] for row in rows} == {"finished"}


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_still_records_how_its_jobs_ended(tmp_path: Path, signame: str) -> None:
    import signal
    import time

    script = tmp_path / "s.plms"
    script.write_text("ShellJob(name='quick', runscript='echo done').run()\n"
                      "ShellJob(name='slow', runscript='touch started; exec sleep 60').run()\n")
    cache = str(tmp_path / "cache.sqlite")
    env = {**python_env(), "PLAMS_JOBCACHE": cache}
    process = subprocess.Popen([*PLAMS, "-q", "-f", "w", str(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "w" / "slow" / "started").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(getattr(signal, signame))
    process.communicate(timeout=60)
    assert process.returncode == (130 if signame == "SIGINT" else 143)
    statuses = {os.path.basename(str(row["path"])): row["status"] for row in _rows(cache)}
    assert statuses == {"quick": "finished", "slow": "failed"}


class _BurstBetweenLooks(threading.Event):
    """The writer's wake-up, with a burst of changes arriving before each of its next ``looks`` looks.

    Each look of the writer thread then sees one change per job more, ``BURST_EVENTS`` or more
    (the jobs are more): the burst lasts exactly ``looks`` looks. A thread making the changes
    meanwhile would not do: a loaded machine stalling it for one interval ends its burst.
    """

    def __init__(self, recorder: cache_recorder.CacheRecorder, jobs: list[ShellJob], looks: int) -> None:
        super().__init__()
        self.recorder, self.jobs, self.looks = recorder, jobs, looks
        #: rows written by the writer until the burst ended (its looks during the burst done)
        self.written_during: int | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait as the writer does; then add one change per job while the burst goes on."""
        from plams_cli.core.status import JobStatus

        if self.looks <= 0 and self.written_during is None:
            self.written_during = self.recorder.written
        woken = super().wait(timeout)
        if self.looks > 0:
            self.looks -= 1
            for job in self.jobs:
                self.recorder.status_changed(job, JobStatus.STARTED, JobStatus.SUCCESSFUL, time.time())
        return woken


def _recorder_with_burst(tmp_path: Path, looks: int) -> tuple[cache_recorder.CacheRecorder, _BurstBetweenLooks,
                                                               list[ShellJob]]:
    recorder = cache_recorder.CacheRecorder(str(tmp_path / "cache.sqlite"))
    jobs = [ShellJob(name=f"j{i}") for i in range(50)]
    for job in jobs:
        job.path = str(tmp_path / job.name)
    burst = recorder._wake = _BurstBetweenLooks(recorder, jobs, looks)
    return recorder, burst, jobs


@pytest.mark.parametrize(("max_lag_s", "held"), [(60.0, True), (0.1, False)], ids=["held-to-its-end", "lag-capped"])
def test_a_burst_of_changes_is_written_when_it_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    max_lag_s: float, held: bool) -> None:
    monkeypatch.setattr(cache_recorder, "FLUSH_INTERVAL_S", 0.05)
    monkeypatch.setattr(cache_recorder, "BURST_EVENTS", 20)
    monkeypatch.setattr(cache_recorder, "MAX_LAG_S", max_lag_s)
    recorder, burst, jobs = _recorder_with_burst(tmp_path, looks=12)  # 12 looks of 50 ms: 0.6 s, six lag caps
    recorder.start()
    try:
        assert recorder.resolved_path() is not None
        wait_for(lambda: burst.written_during is not None, 10, "the end of the burst")
        # held: nothing written while the burst went on; capped: written meanwhile
        assert (burst.written_during == 0) == held
        wait_for(lambda: recorder.written >= len(jobs), 10, "the rows")  # the burst is over: the next look writes it
        assert recorder.failures == 0
    finally:
        recorder.close()
    rows = _rows(str(tmp_path / "cache.sqlite"))
    assert sorted(str(row["path"]) for row in rows) == sorted(str(job.path) for job in jobs)
    assert {row["status"] for row in rows} == {"finished"}


def test_a_held_burst_is_written_at_once_when_the_run_hurries_the_writer(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """finish() hurries the writer: the burst held so far goes out while the run cleans up, not at close."""
    monkeypatch.setattr(cache_recorder, "FLUSH_INTERVAL_S", 0.05)
    monkeypatch.setattr(cache_recorder, "BURST_EVENTS", 20)
    monkeypatch.setattr(cache_recorder, "MAX_LAG_S", 60.0)
    recorder, burst, jobs = _recorder_with_burst(tmp_path, looks=10_000)  # a burst that goes on
    recorder.start()
    try:
        assert recorder.resolved_path() is not None
        wait_for(lambda: burst.looks <= 10_000 - 4, 10, "four looks")
        assert recorder.written == 0  # held, four looks on
        recorder.hurry()
        wait_for(lambda: recorder.written >= len(jobs), 10, "the rows")
        assert burst.looks > 0  # written while the burst still went on
        assert recorder.failures == 0
    finally:
        burst.looks = 0
        recorder.close()
    assert len(_rows(str(tmp_path / "cache.sqlite"))) == len(jobs)


def test_started_is_not_queued_the_rows_come_from_the_later_changes(tmp_path: Path) -> None:
    from plams_cli.core.status import JobStatus

    recorder = cache_recorder.CacheRecorder(str(tmp_path / "cache.sqlite"))
    assert recorder._resolve()
    job = ShellJob(name="j")
    recorder.status_changed(job, JobStatus.CREATED, JobStatus.STARTED, time.time())
    assert not recorder._events  # (no folder yet: that change could never make a row)
    job.path = str(tmp_path / "j")
    recorder.status_changed(job, JobStatus.STARTED, JobStatus.REGISTERED, time.time())
    assert recorder.flush()
    assert [(row["path"], row["status"]) for row in _rows(str(tmp_path / "cache.sqlite"))] == [(job.path, "queueing")]
    recorder.close()


def test_a_long_queue_is_written_in_chunks_each_job_ending_with_its_last_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plams_cli.core.status import JobStatus

    monkeypatch.setattr(cache_recorder, "CHUNK_EVENTS", 7)  # a job's changes fall into different chunks
    recorder = cache_recorder.CacheRecorder(str(tmp_path / "cache.sqlite"))
    assert recorder._resolve()
    jobs = [ShellJob(name=f"j{i}") for i in range(40)]
    for job in jobs:
        job.path = str(tmp_path / job.name)
    for status in (JobStatus.STARTED, JobStatus.RUNNING, JobStatus.SUCCESSFUL):
        for job in jobs:
            recorder.status_changed(job, JobStatus.CREATED, status, time.time())
    assert recorder.flush() and not recorder._events
    assert recorder.written > len(jobs)  # rows of jobs split over chunks are written once per chunk
    recorder.close()
    rows = _rows(str(tmp_path / "cache.sqlite"))
    assert sorted(str(row["path"]) for row in rows) == sorted(str(job.path) for job in jobs)
    assert {row["status"] for row in rows} == {"finished"}


RESTARTED = """
for i in range(4):
    ShellJob(name=f"r{i}", runscript=f"echo {i}").run()
"""


def _stored(cache: str) -> dict[str, tuple[str, float]]:
    """``path -> (status, mtime)`` of every row, read with sqlite3 itself."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(cache)) as conn:
        return {path: (status, mtime) for path, status, mtime in conn.execute("SELECT path, status, mtime FROM jobs")}


def _plams(tmp_path: Path, cache: str, *args: str) -> None:
    run = subprocess.run([*PLAMS, "-q", *args], cwd=tmp_path, env={**python_env(), "PLAMS_JOBCACHE": cache},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_restart_leaves_the_rows_of_the_jobs_it_reused_in_place_as_the_first_run_wrote_them(
        tmp_path: Path) -> None:
    (tmp_path / "s.plms").write_text(RESTARTED)
    cache = str(tmp_path / "cache.sqlite")
    _plams(tmp_path, cache, "-f", "w", "s.plms")
    first = _stored(cache)
    assert sorted(first) == [str(tmp_path / "w" / f"r{i}") for i in range(4)]
    assert {status for status, _ in first.values()} == {"finished"}
    import sqlite3

    # a row the first run left behind as running (it was killed before it recorded the end)
    with contextlib.closing(sqlite3.connect(cache)) as conn, conn:
        conn.execute("UPDATE jobs SET status = 'running' WHERE path = ?", (str(tmp_path / "w" / "r2"),))
    _plams(tmp_path, cache, "-r", "-f", "w", "s.plms")
    after = _stored(cache)
    assert sorted(after) == sorted(first) and {status for status, _ in after.values()} == {"finished"}
    rewritten = {path for path in first if after[path][1] != first[path][1]}
    assert rewritten == {str(tmp_path / "w" / "r2")}  # the others were not written again


def test_a_restart_records_the_jobs_it_reused_where_the_cache_lacks_them(tmp_path: Path) -> None:
    (tmp_path / "s.plms").write_text(RESTARTED)
    _plams(tmp_path, str(tmp_path / "first.sqlite"), "-f", "w", "s.plms")
    cache = str(tmp_path / "other.sqlite")  # a cache that never saw the first run
    _plams(tmp_path, cache, "-r", "-f", "w", "s.plms")
    rows = _rows(cache)
    assert sorted(str(row["path"]) for row in rows) == [str(tmp_path / "w" / f"r{i}") for i in range(4)]
    assert {row["status"] for row in rows} == {"finished"}
    assert {row["program"] for row in rows} == {"ShellJob"}
    assert {row["comment"] for row in rows} == {f"job r{i} in {tmp_path / 'w'}" for i in range(4)}
