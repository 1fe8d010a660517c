"""A task's attempts on Dask workers: a runscript that ended is never run again by a later attempt.

With retries, Dask runs a task again whose worker was lost before the task's end reached
the scheduler, even when its runscript had ended and the runner had ended the job on the
worker's word. These call the worker's function as Dask does (in process: no worker), and
run a job with retries on a LocalCluster for the runner's side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from plams_cli.core.jobs import ShellJob
from plams_cli.core.status import JobStatus
from plams_cli.runners.dask import DaskRunner
from plams_cli.runners.dask._worker import ATTEMPT_RECORD_SUFFIX, ENDED_SUFFIX, forget_ended, run_runscript

Script = Callable[[Path, str, str], str]


def _attempt(folder: Path, name: str, key: str, attempts: int) -> dict[str, object]:
    return run_runscript(str(folder / name), str(folder), name + ".out", None, key, attempts, None, None)


def test_an_attempt_after_the_runscript_ended_returns_its_answer_and_runs_nothing(tmp_path: Path,
                                                                                   runscript: Script) -> None:
    name = runscript(tmp_path, "once.run", "echo ran >> counter; exit 3")
    first = _attempt(tmp_path, name, "plams-once-1", 2)
    assert first["exit_code"] == 3 and (tmp_path / "counter").read_text() == "ran\n"
    assert (tmp_path / f".{name}{ENDED_SUFFIX}").is_file()
    assert not (tmp_path / f"{name}{ATTEMPT_RECORD_SUFFIX}").exists()

    again = _attempt(tmp_path, name, "plams-once-1", 2)
    assert again == first
    assert (tmp_path / "counter").read_text() == "ran\n"

    other = _attempt(tmp_path, name, "plams-once-2", 2)  # another task (another run) of the same folder
    assert other["exit_code"] == 3 and (tmp_path / "counter").read_text() == "ran\nran\n"

    forget_ended(str(tmp_path / name))
    assert not (tmp_path / f".{name}{ENDED_SUFFIX}").exists()
    _attempt(tmp_path, name, "plams-once-2", 2)  # the record gone, an attempt runs it
    assert (tmp_path / "counter").read_text() == "ran\nran\nran\n"


def test_an_attempt_after_an_attempt_lost_mid_job_runs_the_runscript(tmp_path: Path, runscript: Script) -> None:
    name = runscript(tmp_path, "lost.run", "echo ran >> counter")
    # what a worker lost mid-job leaves: the record of its attempt, no answer
    (tmp_path / f"{name}{ATTEMPT_RECORD_SUFFIX}").write_text('{"dask_key": "plams-lost-1", "attempt": 1}\n')
    assert _attempt(tmp_path, name, "plams-lost-1", 2)["exit_code"] == 0
    assert (tmp_path / "counter").read_text() == "ran\n"


def test_without_retries_no_answer_is_left_in_the_folder(tmp_path: Path, runscript: Script) -> None:
    name = runscript(tmp_path, "plain.run", "echo ran >> counter")
    _attempt(tmp_path, name, "plams-plain-1", 1)
    _attempt(tmp_path, name, "plams-plain-1", 1)
    assert (tmp_path / "counter").read_text() == "ran\nran\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter", name, name + ".out"]


def test_the_runner_deletes_the_answer_once_the_task_ended(run_in: object) -> None:
    dr = DaskRunner("local", jobs=1, cores=1, retries=1)
    job = ShellJob(name="retried", runscript="echo done")
    job.run(jobrunner=dr)
    assert job.ok() and job.status == JobStatus.SUCCESSFUL
    folder = Path(str(job.path))
    ended = folder / f".{job.name}.run{ENDED_SUFFIX}"
    deadline = time.monotonic() + 30
    while ended.exists():
        assert time.monotonic() < deadline, f"{ended} is still there 30 s after its job ended"
        time.sleep(0.05)
    assert job.results.read_file("$JN.out").strip() == "done"
    assert not any(p.name.startswith(".") for p in folder.iterdir())
