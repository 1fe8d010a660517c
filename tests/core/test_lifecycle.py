"""The life-cycle seam: every status change and every runscript start, announced once, in order."""

from __future__ import annotations

from typing import Any

import pytest

from plams_cli import Job, JobRunner, MultiJob
from plams_cli.core import lifecycle
from plams_cli.core.status import JobStatus
from tests.core.jobkinds import EchoJob
from tests.core.observing import Recorder


def _job(value: str, **inputs: Any) -> EchoJob:
    job = EchoJob(name="echo")
    job.settings.input.value = value
    for key, item in inputs.items():
        job.settings.input[key] = item
    return job


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_each_change_is_seen_once_in_order(run_in: object, recorder: Recorder, parallel: bool) -> None:
    runner = JobRunner(parallel=parallel, maxjobs=2)
    jobs = [_job(str(i)) for i in range(6)]
    for job in jobs:
        job.run(jobrunner=runner)
    for job in jobs:
        job.results.wait()
    for job in jobs:
        assert recorder.of(job) == ["started", "registered", "running", "finished", "successful"]
        assert recorder.olds_match(job)


def test_failed_and_crashed_jobs(run_in: object, recorder: Recorder) -> None:
    crashed = _job("x", exit=3)
    crashed.run()
    assert recorder.of(crashed) == ["started", "registered", "running", "crashed"]
    assert recorder.olds_match(crashed)


def test_copied_job_is_announced_as_copied(run_in: object, recorder: Recorder) -> None:
    first, second = _job("same"), _job("same")
    first.run()
    second.run()
    assert second.status is JobStatus.COPIED
    assert recorder.of(second) == ["started", "registered", "copied"]  # registered before prerun, as in PLAMS
    assert not [launch for job, launch in recorder.launches if job is second]  # nothing ran


def test_multijob_and_children_are_announced(run_in: object, recorder: Recorder) -> None:
    children: list[Job] = [_job("a"), _job("b")]
    parent = MultiJob(name="multi", children=children)
    parent.run(jobrunner=JobRunner(parallel=True))
    parent.results.wait()
    assert recorder.of(parent) == ["started", "registered", "running", "finished", "successful"]
    for child in children:
        assert recorder.of(child) == ["started", "registered", "running", "finished", "successful"]
    # the parent runs before its children and ends after them
    order = [(job, new) for job, _, new in recorder.changes]
    parent_running = order.index((parent, JobStatus.RUNNING))
    parent_done = order.index((parent, JobStatus.SUCCESSFUL))
    for child in children:
        assert parent_running < order.index((child, JobStatus.STARTED))
        assert order.index((child, JobStatus.SUCCESSFUL)) < parent_done


def test_local_launch_names_the_process(run_in: object, recorder: Recorder) -> None:
    job = _job("pid", exit=0)
    job.settings.runscript.post = "echo $$ > pid.txt"
    job.run()
    launches = [launch for seen, launch in recorder.launches if seen is job]
    assert len(launches) == 1
    launch = launches[0]
    assert launch.kind == "local" and launch.running
    assert launch.job_id == job.results.read_file("pid.txt").strip()  # the runscript's own $$
    assert job.timestamps["running"] <= launch.started <= job.timestamps["finished"]


def test_an_observer_that_raises_never_fails_the_job(run_in: object, recorder: Recorder) -> None:
    class Broken:
        def status_changed(self, *args: Any) -> None:
            raise RuntimeError("observer bug")

        def job_launched(self, *args: Any) -> None:
            raise RuntimeError("observer bug")

    with lifecycle.observing(Broken()):
        job = _job("fine")
        job.run()
    assert job.status is JobStatus.SUCCESSFUL
    assert recorder.of(job)[-1] == "successful"  # later observers still see everything


def test_subscribe_twice_is_once_and_unsubscribe_stops(run_in: object) -> None:
    observer = Recorder()
    lifecycle.subscribe(observer)
    lifecycle.subscribe(observer)
    try:
        job = _job("twice")
        job.run()
    finally:
        lifecycle.unsubscribe(observer)
    assert observer.of(job) == ["started", "registered", "running", "finished", "successful"]
    later = _job("after")
    later.run()
    assert observer.of(later) == []


def test_status_tally_counts_current_statuses(run_in: object) -> None:
    tally = lifecycle.StatusTally()
    with lifecycle.observing(tally):
        good, bad = _job("1"), _job("2", exit=1)
        good.run()
        bad.run()
        assert tally.counts() == {"successful": 1, "crashed": 1}
        run_in.remove_job(good)  # type: ignore[attr-defined]
    assert tally.counts() == {"crashed": 1}
