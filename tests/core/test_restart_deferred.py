"""A restart leaves a reused job's folder to the rename that brings its old one (JobManager.register's defer_folder).

A job whose namesake in ``NAME.res`` belongs in its folder gets no folder of its own at
registration: when the two are identical the old folder moves in, else the folder is made
when the job needs it (it runs, takes links of another identical job, or its get_input()
writes into it). A job with a prerun() of its own gets its folder at once, as in PLAMS.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from plams_cli import SingleJob
from plams_cli.core.session import Session
from plams_cli.core.status import JobStatus


class CountedJob(SingleJob):
    """Its runscript echoes ``settings.input.value`` and appends its name to ``settings.input.counter``."""

    def get_input(self) -> str:
        return str(self.settings.input.value)

    def get_runscript(self) -> str:
        value, counter = self.settings.input.value, self.settings.input.counter
        extra = f"echo only > only-{value}\n"
        return f"echo {value} > out\n{extra}basename \"$PWD\" >> {counter}\n"


class InputWritingJob(CountedJob):
    """Its get_input() writes a file into its folder (PLAMS creates the folder before the hash asks for the input)."""

    def get_input(self) -> str:
        assert self.path is not None
        Path(self.path, "extra.txt").write_text(f"extra {self.settings.input.value}\n")
        return super().get_input()


class PrerunJob(CountedJob):
    """Its prerun() writes a file into its folder."""

    def prerun(self) -> None:
        assert self.path is not None
        Path(self.path, "prerun.txt").write_text("prerun\n")


def _run(tmp_path: Path, values: dict[str, str], kind: type[CountedJob] = CountedJob,
         restart: bool = False) -> dict[str, CountedJob]:
    jobs: dict[str, CountedJob] = {}
    with Session(str(tmp_path), folder="w", restart=restart):
        for name, value in values.items():
            job = kind(name=name)
            job.settings.input.value = value
            job.settings.input.counter = str(tmp_path / "counter")
            job.run()
            jobs[name] = job
    return jobs


def _ran(tmp_path: Path) -> Counter[str]:
    counter = tmp_path / "counter"
    return Counter(counter.read_text().split()) if counter.exists() else Counter()


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders ``os.mkdir`` made during the test."""
    paths: list[str] = []
    real: Callable[..., None] = os.mkdir

    def mkdir(path: str, *args: object, **kwargs: object) -> None:
        real(path, *args, **kwargs)
        paths.append(os.fspath(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    return paths


def test_a_restart_moves_each_identical_job_into_a_folder_it_never_made(tmp_path: Path, made: list[str]) -> None:
    values = {"a": "1", "b": "2", "c": "3"}
    _run(tmp_path, values)
    made.clear()
    jobs = _run(tmp_path, values, restart=True)
    assert _ran(tmp_path) == Counter(list(values))  # none ran again
    workdir = tmp_path / "w"
    assert not {str(workdir / name) for name in values} & set(made)
    for name, value in values.items():
        assert jobs[name].status == JobStatus.COPIED
        assert (workdir / name / "out").read_text() == f"{value}\n"
    assert not (tmp_path / "w.res").exists()


def test_a_job_changed_since_runs_in_a_new_folder_without_its_old_files(tmp_path: Path) -> None:
    _run(tmp_path, {"a": "1", "b": "2"})
    jobs = _run(tmp_path, {"a": "1", "b": "20"}, restart=True)
    assert _ran(tmp_path) == Counter({"a": 1, "b": 2})
    folder = tmp_path / "w" / "b"
    assert jobs["b"].status == JobStatus.SUCCESSFUL
    assert (folder / "out").read_text() == "20\n"
    assert (folder / "only-20").exists() and not (folder / "only-2").exists()


def test_a_job_identical_to_another_loaded_job_gets_a_folder_for_its_links(tmp_path: Path) -> None:
    _run(tmp_path, {"a": "1", "b": "2"})
    jobs = _run(tmp_path, {"a": "1", "b": "1"}, restart=True)
    assert _ran(tmp_path) == Counter({"a": 1, "b": 1})  # b takes a's files, runs not
    folder = tmp_path / "w" / "b"
    assert jobs["b"].status == JobStatus.COPIED
    assert (folder / "out").read_text() == "1\n"
    assert (folder / "b.run").exists() and not (folder / "only-2").exists()


def test_a_get_input_writing_into_its_folder_finds_one(tmp_path: Path) -> None:
    _run(tmp_path, {"a": "1", "b": "2"}, kind=InputWritingJob)
    jobs = _run(tmp_path, {"a": "1", "b": "3"}, kind=InputWritingJob, restart=True)
    assert _ran(tmp_path) == Counter({"a": 1, "b": 2})
    workdir = tmp_path / "w"
    assert jobs["a"].status == JobStatus.COPIED and jobs["b"].status == JobStatus.SUCCESSFUL
    assert (workdir / "a" / "extra.txt").read_text() == "extra 1\n"
    assert (workdir / "b" / "extra.txt").read_text() == "extra 3\n"
    assert (workdir / "a" / "out").read_text() == "1\n"


def test_a_prerun_of_its_own_gets_its_folder_at_once(tmp_path: Path, made: list[str]) -> None:
    _run(tmp_path, {"a": "1"}, kind=PrerunJob)
    made.clear()
    jobs = _run(tmp_path, {"a": "1"}, kind=PrerunJob, restart=True)
    assert _ran(tmp_path) == Counter({"a": 1})
    assert str(tmp_path / "w" / "a") in made
    assert jobs["a"].status == JobStatus.COPIED
    assert (tmp_path / "w" / "a" / "prerun.txt").read_text() == "prerun\n"
