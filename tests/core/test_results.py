"""Results: the files of a job and the ways to read them."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from plams_cli import Results, ShellJob
from plams_cli.errors import FileError

OUTPUT = """header
energy = -1.5
BEGIN block
a 1
b 2
END block
BEGIN block
c 3
END block
Energy = -2.5
"""


@pytest.fixture
def done(run_in: object) -> ShellJob:
    job = ShellJob(name="res", runscript=f"cat <<'EOF'\n{OUTPUT}EOF\nmkdir sub; echo deep > sub/inner.txt")
    job.run()
    assert job.ok()
    return job


def test_files_and_paths(done: ShellJob) -> None:
    results = done.results
    assert results.files == sorted(["res.in", "res.run", "res.out", "res.err", os.path.join("sub", "inner.txt")])
    assert done.path is not None
    assert results["$JN.out"] == os.path.join(done.path, "res.out")
    assert os.path.isabs(results["sub/inner.txt"])
    assert "res.out" in results and "$JN.err" in results and "absent" not in results
    with pytest.raises(FileError, match="has no file absent"):
        results["absent"]


def test_grep_file_and_grep_output(done: ShellJob) -> None:
    assert done.results.grep_output("energy") == ["energy = -1.5"]
    assert done.results.grep_file("$JN.out", "energy", "-i") == ["energy = -1.5", "Energy = -2.5"]
    assert done.results.grep_file("res.out", "BEGIN", "-A 1") == ["BEGIN block", "a 1", "--", "BEGIN block", "c 3"]
    assert done.results.grep_output("no such line") == []


def test_regex_file(done: ShellJob) -> None:
    assert done.results.regex_file("$JN.out", r"^[Ee]nergy = (\S+)$") == ["-1.5", "-2.5"]


def test_get_file_chunk(done: ShellJob) -> None:
    results = done.results
    # PLAMS's counting (checked against PLAMS in test_plams_compat): match=0 is every block, 1 the first
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END") == ["a 1", "b 2", "c 3"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1) == ["a 1", "b 2"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=2) == ["c 3"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1, inc_begin=True, inc_end=True) == [
        "BEGIN block", "a 1", "b 2", "END block"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1,
                                  process=lambda line: line.split()[1]) == ["1", "2"]


def test_rename(done: ShellJob) -> None:
    done.results.rename("$JN.out", "renamed.txt")
    assert "renamed.txt" in done.results and "res.out" not in done.results
    assert done.path is not None
    assert Path(done.path, "renamed.txt").read_text().startswith("header")
    assert not Path(done.path, "res.out").exists()


def test_wait_returns_the_results(done: ShellJob) -> None:
    assert done.results.wait() is done.results


# --- the events of Results, made on first use -------------------------------------------
def _waiter(results: Results, how: str, woken: list[str]) -> threading.Thread:
    def wait() -> None:
        if how == "wait":
            results.wait()
        elif how == "done":
            assert results.done.wait(30)
        else:
            assert results.finished.wait(30)
        woken.append(how)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["wait", "done", "finished"], ids=["wait()", "done.wait", "finished.wait"])
def test_a_waiter_in_another_thread_is_woken(how: str) -> None:
    results = Results(ShellJob(name="lazy"))
    woken: list[str] = []
    thread = _waiter(results, how, woken)
    time.sleep(0.05)  # the waiter is blocked by now (or about to be: it must still wake)
    assert woken == [] and thread.is_alive()
    results.mark_collected()
    if how != "finished":
        time.sleep(0.05)
        assert woken == []  # collected only: a waiter for the end still waits
        results.mark_done()
    thread.join(30)
    assert woken == [how]
    assert results.is_finished() and results.done.is_set() == (how != "finished")


def test_events_asked_for_after_the_end_are_set() -> None:
    results = Results(ShellJob(name="lazy"))
    assert not results.is_done() and not results.is_finished()
    results.mark_collected()
    results.mark_done()
    assert results.is_done() and results.is_finished()
    assert results.done.is_set() and results.finished.is_set()  # made now, already set
    assert results.done is results.done  # one event, made once


def test_an_event_asked_for_before_the_end_is_set_by_it() -> None:
    results = Results(ShellJob(name="lazy"))
    done, finished = results.done, results.finished
    assert not done.is_set() and not finished.is_set()
    results.mark_collected()
    assert finished.is_set() and not done.is_set()
    results.mark_done()
    assert done.is_set() and results.is_done()


def test_an_event_set_directly_counts_as_the_end() -> None:
    """Scripts written for PLAMS may set (or replace) the events themselves."""
    results = Results(ShellJob(name="lazy"))
    results.done.set()
    assert results.is_done()
    other = Results(ShellJob(name="other"))
    replacement = threading.Event()
    other.done = replacement
    assert other.done is replacement and not other.is_done()
    replacement.set()
    assert other.is_done()


def test_many_racing_waiters_all_wake() -> None:
    """Making an event and ending the job race; no waiter is ever left behind."""
    for _ in range(200):
        results = Results(ShellJob(name="race"))
        woken: list[str] = []
        threads = [_waiter(results, how, woken) for how in ("wait", "done", "finished")]
        results.mark_collected()
        results.mark_done()
        for thread in threads:
            thread.join(30)
        assert sorted(woken) == ["done", "finished", "wait"]


def test_a_job_brings_no_events_until_asked(run_in: object) -> None:
    job = ShellJob(name="quiet", runscript="true")
    job.run()
    assert job.ok()
    assert "_done_event" not in vars(job.results) and "_finished_event" not in vars(job.results)
    assert not any(isinstance(value, threading.Event) for value in vars(job.results).values())
