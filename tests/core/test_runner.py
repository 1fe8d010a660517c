"""JobRunner.call: starting runscripts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from plams_cli import JobRunner
from plams_cli.errors import JobError


def write_script(folder: Path, body: str) -> Path:
    script = folder / "job.run"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return script


def test_call_returns_the_exit_code(tmp_path: Path) -> None:
    write_script(tmp_path, "echo out; echo err >&2; exit 5")
    assert JobRunner().call("job.run", str(tmp_path), "job.out", "job.err") == 5
    assert (tmp_path / "job.out").read_text() == "out\n" and (tmp_path / "job.err").read_text() == "err\n"


def test_busy_runscript_is_retried(tmp_path: Path) -> None:
    """A runscript another process still holds open for writing ("text file busy").

    With threads, a fork in one job thread briefly inherits the write descriptor of a
    runscript another thread is writing; exec then fails with ETXTBSY for a moment.
    """
    script = write_script(tmp_path, "exit 0")
    fd = os.open(script, os.O_WRONLY)  # exec of this file now fails with ETXTBSY
    timer = threading.Timer(0.1, os.close, args=(fd,))
    timer.start()
    try:
        assert JobRunner().call("job.run", str(tmp_path), "job.out", "job.err") == 0
    finally:
        timer.join()


def test_runscript_that_stays_busy_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plams_cli.runners.processes as processes

    monkeypatch.setattr(processes, "_BUSY_RETRY_LIMIT_S", 0.01)
    script = write_script(tmp_path, "exit 0")
    fd = os.open(script, os.O_WRONLY)
    try:
        with pytest.raises(JobError, match="cannot run .*job.run: Text file busy"):
            JobRunner().call("job.run", str(tmp_path), "job.out", "job.err")
    finally:
        os.close(fd)


def test_limits_zero_means_none_and_negative_is_refused() -> None:
    with pytest.raises(ValueError, match="maxjobs"):
        JobRunner(maxjobs=-1)
    with pytest.raises(ValueError, match="maxthreads"):
        JobRunner(maxthreads=-1)
    runner = JobRunner(parallel=True, maxthreads=0)
    assert runner._slots.acquire(blocking=False)
    runner.maxjobs = 3  # may be changed after construction
    assert runner.maxjobs == 3 and runner._job_limit is not None and runner._flight_bound == 6


def test_workers_start_every_task_at_once_and_are_reused() -> None:
    from plams_cli.runners.local import _Workers

    workers = _Workers(idle_s=5)
    gate = threading.Event()
    started = threading.Semaphore(0)
    idents: list[int] = []

    def blocking() -> None:
        idents.append(threading.get_ident())
        started.release()
        gate.wait()

    for _ in range(5):  # five tasks that all wait: each must get a thread of its own
        workers.submit(blocking)
    for _ in range(5):
        assert started.acquire(timeout=10)
    assert len(set(idents)) == 5
    gate.set()
    import time

    deadline = time.monotonic() + 10
    while workers._idle < 5:  # the five threads finish their tasks and wait for more
        assert time.monotonic() < deadline
        time.sleep(0.01)
    done = threading.Semaphore(0)

    def record() -> None:
        idents.append(threading.get_ident())
        done.release()

    for _ in range(50):  # now idle threads take the next tasks
        workers.submit(record)
        assert done.acquire(timeout=10)
    assert set(idents[5:]) <= set(idents[:5])


def test_idle_workers_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from plams_cli.runners.local import _Workers

    workers = _Workers(idle_s=0.05)
    finished = threading.Event()
    threads: list[threading.Thread] = []

    def record() -> None:
        threads.append(threading.current_thread())
        finished.set()

    workers.submit(record)
    assert finished.wait(10)
    threads[0].join(timeout=10)
    assert not threads[0].is_alive() and workers._idle == 0
