"""The life cycle drives every job: one way from ``Job.run`` to the runner, the same states for every kind."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from plams_cli import JobRunner, MultiJob
from plams_cli.core import logbridge
from plams_cli.core.jobs import Job
from plams_cli.core.status import JobStatus
from tests.core.jobkinds import EchoJob
from tests.core.observing import Recorder

DONE = ["started", "registered", "running", "finished", "successful"]


def _echo(name: str, value: str) -> EchoJob:
    job = EchoJob(name=name)
    job.settings.input.value = value
    return job


class Generations(MultiJob):
    """Three generations of two children each; the second generation duplicates the first (copied)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(children=[_echo("g0", "0"), _echo("g1", "1")], **kwargs)
        self.round = 0

    def new_children(self) -> list[Job] | None:
        self.round += 1
        if self.round == 1:
            return [_echo("g0", "0"), _echo("g1", "1")]  # identical to the first: copied
        if self.round == 2:
            return [_echo("g2", "2"), _echo("g3", "3")]
        return None


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_multijob_generations_and_copies_are_each_seen_once_in_order(run_in: object, recorder: Recorder,
                                                                     parallel: bool) -> None:
    parent = Generations(name="gens")
    parent.run(jobrunner=JobRunner(parallel=parallel, maxjobs=1))
    parent.results.wait()
    assert parent.status is JobStatus.SUCCESSFUL and len(parent) == 6
    assert recorder.of(parent) == DONE and recorder.olds_match(parent)
    children = list(parent)
    for child in children[:2] + children[4:]:
        assert recorder.of(child) == DONE and recorder.olds_match(child), child
    for child in children[2:4]:
        assert recorder.of(child) == ["started", "registered", "copied"] and recorder.olds_match(child), child
    order = [(job, new) for job, _, new in recorder.changes]
    ended = order.index((parent, JobStatus.SUCCESSFUL))
    assert all(order.index((child, child.status)) < ended for child in children)


class PlamsStyleRunner:
    """A runner of PLAMS's kind: ``parallel`` and ``call()`` only (no submit, no slot)."""

    parallel = False

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.inner = JobRunner()

    def call(self, runscript: str, workdir: str, out: str | None, err: str | None,
             runflags: Mapping[str, Any] | None = None) -> int:
        self.calls.append(runscript)
        return self.inner.call(runscript, workdir, out, err, runflags)


def test_a_runner_with_only_call_runs_jobs_inline(run_in: object, recorder: Recorder) -> None:
    runner = PlamsStyleRunner()
    job = _echo("plain", "x")
    job.run(jobrunner=runner)
    assert job.status is JobStatus.SUCCESSFUL  # no waiting: it ran in this thread
    assert runner.calls == ["plain.run"] and recorder.of(job) == DONE
    assert job.results.read_file("out") == "x"


def test_run_job_alias_runs_the_job_with_that_runner(run_in: object, recorder: Recorder) -> None:
    runner = JobRunner(parallel=True)
    job = _echo("alias", "y")
    runner._run_job(job, run_in)  # PLAMS's name, which scripts may call
    job.results.wait()
    assert job.status is JobStatus.SUCCESSFUL and job.jobrunner is runner and job.jobmanager is run_in
    assert recorder.of(job) == DONE


def test_a_job_turned_away_after_its_turn_never_says_running(run_in: object, recorder: Recorder) -> None:
    """With ``maxjobs``, a job whose turn comes after a cancel ends "not started", never ``running``."""
    runner = JobRunner(parallel=True, maxjobs=1)
    jobs = [_echo("first", "1"), _echo("second", "2")]
    for job in jobs:
        job.settings.input.sleep = 30  # whichever gets the one slot first runs until the cancel
        job.run(jobrunner=runner)
    deadline = time.monotonic() + 30
    while sorted(job.status.value for job in jobs) != ["registered", "running"]:
        assert time.monotonic() < deadline, [job.status for job in jobs]
        threading.Event().wait(0.02)
    running, waiting = sorted(jobs, key=lambda job: job.status is not JobStatus.RUNNING)
    stopped = runner.cancel()
    for job in jobs:
        job.results.wait()
    assert [record.kind for record in stopped] == ["local"]
    assert waiting.not_started and recorder.of(waiting) == ["started", "registered", "crashed"]
    assert running.status is JobStatus.CRASHED and not running.not_started


def test_runner_log_records_reach_the_run_log(run_in: object, tmp_path: Path) -> None:
    logger = logging.getLogger("plams_cli.runners.grid")
    logger.warning("queue query failed for %s", "job 12")
    logger.info("job %s is running", "12")
    logger.debug("polling %d jobs", 3)  # level 7: shown nowhere by default
    text = (tmp_path / "work" / "logfile").read_text()
    assert "WARNING: queue query failed for job 12" in text
    assert "job 12 is running" in text
    assert "polling 3 jobs" not in text


def test_the_log_bridge_is_there_only_while_a_run_is_initialised(fresh_config: object, tmp_path: Path) -> None:
    from plams_cli.core.runtime import finish, init

    logger = logging.getLogger(logbridge.RUNNERS_LOGGER)
    before = list(logger.handlers)
    init(path=str(tmp_path), folder="bridge", quiet=True)
    assert [type(h) for h in logger.handlers if h not in before] == [logbridge.RunLogHandler]
    finish()
    assert logger.handlers == before and logger.level == logging.NOTSET
    logging.getLogger("plams_cli.runners.grid").warning("after the run")
    assert "after the run" not in (tmp_path / "bridge" / "logfile").read_text()


@pytest.mark.parametrize(("levelno", "level"), [(logging.ERROR, 1), (logging.WARNING, 1), (logging.INFO, 3),
                                                (logging.DEBUG, 7)], ids=["error", "warning", "info", "debug"])
def test_stdlib_levels_map_to_plams_levels(levelno: int, level: int) -> None:
    assert logbridge.plams_level(levelno) == level
