"""``cancel()`` returns records: what was stopped, by which signals; the CLI only formats them.

(The ``plams`` command's lines from these records: tests/cli/test_run_guards.py.)
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from pathlib import Path

import pytest

from plams_cli import JobRunner, ShellJob
from plams_cli.core.status import JobStatus
from plams_cli.runners import local, processes
from plams_cli.runners.base import Runner, Stopped, ThreadedRunner
from plams_cli.runners.local import cancel_all


def _wait_for(path: Path, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text().strip()


def _start_sleeper(tmp_path: Path, body: str) -> tuple[JobRunner, threading.Thread, list[int]]:
    script = tmp_path / "sleepy.run"
    script.write_text(f"#!/bin/sh\necho $$ > pid\n{body}\n")
    script.chmod(0o755)
    runner = JobRunner()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(runner.call("sleepy.run", str(tmp_path), None, None)))
    thread.start()
    return runner, thread, codes


@pytest.mark.parametrize(("body", "signals"), [
    ("sleep 30", ("SIGTERM",)),
    ("trap '' TERM; while :; do sleep 0.05; done", ("SIGTERM", "SIGKILL")),
], ids=["ends-on-sigterm", "needs-sigkill"])
def test_cancel_returns_a_local_record_per_runscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     body: str, signals: tuple[str, ...]) -> None:
    monkeypatch.setattr(processes, "STOP_GRACE_S", 0.5)
    runner, thread, codes = _start_sleeper(tmp_path, body)
    pid = _wait_for(tmp_path / "pid")
    records = runner.cancel()
    thread.join(30)
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, Stopped)
    assert (record.kind, record.job_id, record.signals, record.ok) == ("local", pid, signals, True)
    assert record.runscript == str(tmp_path / "sleepy.run")
    assert record.detail.startswith("SIGTERM") and ("SIGKILL after 0.5 s" in record.detail) == ("SIGKILL" in signals)
    assert str(record) == f"stopped runscript {tmp_path / 'sleepy.run'} (pid {pid}): {record.detail}"
    assert codes == [-15 if signals == ("SIGTERM",) else -9]
    assert runner.cancel() == []  # each runscript is reported once


def test_cancel_all_gathers_the_records_of_every_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # only this test's runners: cancel_all() cancels every live runner for good
    monkeypatch.setattr(local, "_runners", weakref.WeakSet())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, one, _ = _start_sleeper(tmp_path / "a", "sleep 30")
    second, two, _ = _start_sleeper(tmp_path / "b", "sleep 30")
    pids = {_wait_for(tmp_path / "a" / "pid"), _wait_for(tmp_path / "b" / "pid")}
    records = cancel_all()
    one.join(30)
    two.join(30)
    assert {record.job_id for record in records} == pids and all(r.kind == "local" for r in records)
    assert first.cancelled and second.cancelled


def test_a_cancelled_runner_refuses_new_jobs_without_a_folder(run_in: object) -> None:
    runner = JobRunner(parallel=True)
    assert runner.cancel() == []
    job = ShellJob(name="late", runscript="exit 0")
    job.run(jobrunner=runner)
    job.results.wait()
    assert job.status is JobStatus.CRASHED and job.not_started
    assert job.path is None or not os.path.exists(job.path)
    assert job in run_in.not_started  # type: ignore[attr-defined]


def test_job_runner_meets_the_runner_contract() -> None:
    runner = JobRunner()
    assert isinstance(runner, Runner) and isinstance(runner, ThreadedRunner)
    assert not runner.cancelled


def _sleepy_runscript(folder: Path) -> None:
    script = folder / "sleepy.run"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)


def test_cancel_waits_for_a_runscript_being_started_and_stops_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """cancel() lands after the fork, before the runner lists the process: it waits, then stops and names it."""
    runner = JobRunner()
    _sleepy_runscript(tmp_path)
    real_spawn = processes.spawn
    records: list[list[Stopped]] = []
    canceller = threading.Thread(target=lambda: records.append(runner.cancel()))

    def spawn_then_cancel(*args: object, **kwargs: object) -> object:
        process = real_spawn(*args, **kwargs)  # type: ignore[arg-type]
        canceller.start()  # the window: the process runs, the runner does not list it yet
        time.sleep(0.3)
        return process

    monkeypatch.setattr(local, "spawn", spawn_then_cancel)
    started = time.monotonic()
    code = runner.call("sleepy.run", str(tmp_path), "out", "err")
    canceller.join(30)
    assert code == -15  # SIGTERM, not 30 s later
    assert time.monotonic() - started < 10
    assert [(r.kind, r.runscript.endswith("sleepy.run"), r.signals[:1]) for r in records[0]] == \
        [("local", True, ("SIGTERM",))]


def test_a_runscript_whose_start_cancel_gave_up_on_stops_itself(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A start slower than cancel() waits for: the runscript's own thread stops it once it is listed."""
    runner = JobRunner()
    _sleepy_runscript(tmp_path)
    real_spawn = processes.spawn
    monkeypatch.setattr(local, "START_WAIT_S", 0.1)
    seen: list[list[Stopped]] = []

    def spawn_then_cancel(*args: object, **kwargs: object) -> object:
        process = real_spawn(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(runner.cancel())  # in this very thread: it cannot wait for the start
        return process

    monkeypatch.setattr(local, "spawn", spawn_then_cancel)
    code = runner.call("sleepy.run", str(tmp_path), "out", "err")
    assert code == -15
    assert seen == [[]]
