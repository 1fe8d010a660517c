"""JobManager: working folders, and rerun prevention by hash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import cast

import pytest

from plams_cli import JobManager, JobRunner, JobStatus, ShellJob, config, load_all
from plams_cli.core.jobmanager import make_folder
from plams_cli.errors import FileError
from tests.conftest import python_env
from tests.core.jobkinds import EchoJob


def counted(name: str, counter: Path, value: str = "same", **inputs: object) -> EchoJob:
    """An EchoJob that appends a line to ``counter`` each time its runscript runs."""
    job = EchoJob(name=name)
    job.settings.input.value = value
    job.settings.input.counter = str(counter)
    for key, item in inputs.items():
        job.settings.input[key] = item
    return job


def runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


# --- working folders -------------------------------------------------------------------
def test_eight_processes_starting_at_once_get_distinct_folders(tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, time
        from plams_cli import config, init, finish
        config.log.stdout = 0
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        manager = init(path={str(tmp_path)!r}, folder="w")
        print(manager.workdir)
        finish()
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=python_env())
        for _ in range(8)
    ]
    time.sleep(0.5)  # let all eight import and wait at the start line
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    folders = sorted(out.strip() for out, _ in outputs)
    expected = sorted(str(tmp_path / name) for name in ["w", *(f"w.{i:03d}" for i in range(2, 9))])
    assert folders == expected


def test_make_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="not an existing folder"):
        make_folder(str(tmp_path / "missing"), "w")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileError, match=str(tmp_path / "file")):
        make_folder(str(tmp_path / "file"), "w")


def test_jobmanager_attributes(tmp_path: Path, fresh_config: object) -> None:
    manager = JobManager(config.jobmanager, path=str(tmp_path), folder="jm")
    assert manager.workdir == str(tmp_path / "jm") and os.path.isdir(manager.workdir)
    assert (manager.path, manager.folder) == (str(tmp_path), "jm")
    assert manager.settings is config.jobmanager
    assert manager.jobs == [] and manager.names == {} and manager.hashes == {}
    job = ShellJob(name="x", runscript="true")
    job.run(jobmanager=manager)
    assert manager.jobs == [job] and manager.names == {"x": 1}
    assert manager.hashes == {job._hash: job}
    manager.remove_job(job)
    assert manager.jobs == [] and job.status == JobStatus.DELETED and not os.path.exists(cast(str, job.path))


# --- rerun prevention ---------------------------------------------------------------------
def test_duplicate_reuses_files_by_hard_link_with_renamed_files(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    first, second = counted("calc", counter), counted("calc", counter)  # the second becomes calc.002
    first.run()
    second.run()
    assert runs(counter) == 1
    assert first.status == JobStatus.SUCCESSFUL and second.status == JobStatus.COPIED and second.ok()
    assert first.path is not None and second.path is not None
    folder = Path(second.path)
    assert second.name == "calc.002"
    assert sorted(os.listdir(folder)) == ["calc.002.dill", "calc.002.err", "calc.002.in", "calc.002.job.json",
                                          "calc.002.out", "calc.002.run", "out"]
    assert os.path.samefile(folder / "calc.002.out", Path(first.path) / "calc.out")  # a hard link
    assert second.results.read_file("$JN.out").strip() == "result same"


def test_duplicate_copies_when_links_are_off(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    first, second = counted("calc", counter), counted("calc", counter)
    second.settings.link_files = False
    first.run()
    second.run()
    assert second.status == JobStatus.COPIED and runs(counter) == 1
    assert first.path is not None and second.path is not None
    assert not os.path.samefile(Path(second.path) / "out", Path(first.path) / "out")
    assert (Path(second.path) / "out").read_text() == "same"


def test_duplicate_of_crashed_job_runs_for_itself(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    first, second = counted("bad", counter, exit=3), counted("bad", counter, exit=3)
    first.run()
    second.run()
    assert runs(counter) == 2  # PLAMS turns the second into 'copied' with ok() True
    assert first.status == second.status == JobStatus.CRASHED and not second.ok()


def test_duplicate_of_failed_job_runs_for_itself(run_in: object, tmp_path: Path) -> None:
    from tests.core.jobkinds import CheckedJob

    counter = tmp_path / "count"
    jobs = []
    for _ in range(2):
        job = CheckedJob(name="checked")
        job.settings.input.value = "bad"
        job.settings.input.counter = str(counter)
        job.run()
        jobs.append(job)
    assert runs(counter) == 2 and [j.status for j in jobs] == [JobStatus.FAILED] * 2


def test_duplicate_of_running_job_waits_and_reuses_it(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    runner = JobRunner(parallel=True)
    first, second = counted("slow", counter, sleep=0.3), counted("slow", counter, sleep=0.3)
    first.run(jobrunner=runner)
    second.run(jobrunner=runner)
    assert first.ok() and second.ok()
    assert runs(counter) == 1
    # both threads race to the hash check: either may be the one that runs
    ran, copied = (first, second) if first.status == JobStatus.SUCCESSFUL else (second, first)
    assert copied.status == JobStatus.COPIED
    assert copied.timestamps["copied"] >= ran.timestamps["successful"]


def test_duplicate_of_running_job_that_crashes_runs(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    runner = JobRunner(parallel=True)
    first, second = counted("sc", counter, sleep=0.3, exit=2), counted("sc", counter, sleep=0.3, exit=2)
    first.run(jobrunner=runner)
    second.run(jobrunner=runner)
    first.results.wait()
    second.results.wait()  # either may have been the one the other waited for
    assert runs(counter) == 2 and first.status == second.status == JobStatus.CRASHED


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_two_hundred_identical_jobs_run_the_runscript_once(run_in: object, tmp_path: Path, parallel: bool) -> None:
    counter = tmp_path / "count"
    runner = JobRunner(parallel=parallel, maxjobs=4)
    jobs = [counted("many", counter) for _ in range(200)]
    for job in jobs:
        job.run(jobrunner=runner)
    assert all(job.ok() for job in jobs)
    assert runs(counter) == 1
    statuses = [job.status for job in jobs]
    assert statuses.count(JobStatus.SUCCESSFUL) == 1 and statuses.count(JobStatus.COPIED) == 199
    assert len({job.name for job in jobs}) == 200


@pytest.mark.parametrize(
    ("mode", "same_input_other_runscript", "other_input_same_runscript"),
    [("input+runscript", False, False), ("input", True, False), ("runscript", False, True)],
)
def test_hashing_modes(run_in: object, tmp_path: Path, mode: str, same_input_other_runscript: bool,
                       other_input_same_runscript: bool) -> None:
    config.jobmanager.hashing = mode
    base = ShellJob(name="base", runscript="echo a", input="x")
    other_script = ShellJob(name="os", runscript="echo b", input="x")
    other_input = ShellJob(name="oi", runscript="echo a", input="y")
    for job in (base, other_script, other_input):
        job.run()
    assert (other_script.status == JobStatus.COPIED) is same_input_other_runscript
    assert (other_input.status == JobStatus.COPIED) is other_input_same_runscript


def test_hashing_none_disables_rerun_prevention(run_in: object, tmp_path: Path) -> None:
    config.jobmanager.hashing = None
    counter = tmp_path / "count"
    first, second = counted("n", counter), counted("n", counter)
    first.run()
    second.run()
    assert runs(counter) == 2 and first.hash() is None and second.status == JobStatus.SUCCESSFUL


def test_prerun_runs_before_hashing(run_in: object, tmp_path: Path) -> None:
    class Numbered(EchoJob):
        def prerun(self) -> None:
            self.settings.input.value = f"value of {self.name}"  # differs per (renamed) job

    counter = tmp_path / "count"
    first, second = Numbered(name="num"), Numbered(name="num")
    for job in (first, second):
        job.settings.input.counter = str(counter)
        job.run()
    assert runs(counter) == 2 and second.status == JobStatus.SUCCESSFUL


def test_reuse_inside_the_folder_the_job_was_loaded_from(tmp_path: Path, fresh_config: object) -> None:
    from plams_cli import finish, init

    counter = tmp_path / "count"
    init(path=str(tmp_path), folder="same", quiet=True)
    counted("calc", counter).run()
    finish()
    manager = init(path=str(tmp_path), folder="same", quiet=True, use_existing_folder=True)
    loaded = load_all(manager.workdir)
    assert [job.name for job in loaded.values()] == ["calc"]
    again = counted("calc", counter)
    again.run()
    assert again.status == JobStatus.COPIED and runs(counter) == 1  # PLAMS: FileExistsError
    assert again.results.read_file("out") == "same"
    finish()


def test_loaded_jobs_join_the_hashes_but_are_not_registered(tmp_path: Path, fresh_config: object) -> None:
    from plams_cli import finish, init

    counter = tmp_path / "count"
    first_run = init(path=str(tmp_path), folder="one", quiet=True)
    counted("calc", counter).run()
    finish()
    manager = init(path=str(tmp_path), folder="two", quiet=True)
    loaded = load_all(first_run.workdir)
    assert len(loaded) == 1 and manager.jobs == []
    again = counted("calc", counter)
    again.run()
    assert again.name == "calc"  # the loaded job's name is not taken
    assert again.status == JobStatus.COPIED and runs(counter) == 1
    assert Path(cast(str, again.path)).parent == Path(manager.workdir)
    finish()


def test_runscript_hash_ignores_a_clash_rename_but_not_real_differences(run_in: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    twins = [counted("calc", counter), counted("calc", counter)]  # EchoJob's runscript reads '<name>.in'
    for job in twins:
        job.run()
    assert [job.name for job in twins] == ["calc", "calc.002"]
    assert twins[1].status == JobStatus.COPIED and twins[0].hash_runscript() == twins[1].hash_runscript()

    class NameEcho(ShellJob):  # its output really depends on its name
        def get_runscript(self) -> str:
            return f"echo {self.name} > out"

    a, b = NameEcho(name="a"), NameEcho(name="b")
    a.run()
    b.run()
    assert b.status == JobStatus.SUCCESSFUL and b.results.read_file("out") == "b\n"  # PLAMS: runs too
    text = (ShellJob(name="hello", runscript="echo 'hello, world'"),
            ShellJob(name="hello_again", runscript="echo 'hello, world'"))
    assert text[0].hash_runscript() == text[1].hash_runscript()


def _reopen_after(tmp_path: Path, folder: str, runscript: str) -> None:
    """Run job ``calc`` with ``runscript`` in ``folder``, finish, then init in place and load it."""
    from plams_cli import finish, init

    init(path=str(tmp_path), folder=folder, quiet=True)
    ShellJob(name="calc", runscript=runscript).run()
    finish()
    manager = init(path=str(tmp_path), folder=folder, quiet=True, use_existing_folder=True)
    load_all(manager.workdir)


def test_a_different_job_in_a_loaded_jobs_folder_replaces_it(tmp_path: Path, fresh_config: object) -> None:
    """Restart in place with a changed job: the loaded one is forgotten, never reused afterwards."""
    from plams_cli import finish

    _reopen_after(tmp_path, "inplace", "echo AAA")
    changed = ShellJob(name="calc", runscript="echo BBB")
    changed.run()
    assert changed.status == JobStatus.SUCCESSFUL and changed.results.read_file("calc.out") == "BBB\n"
    again = ShellJob(name="calc", runscript="echo AAA")  # identical to the job that was replaced
    again.run()
    assert again.status == JobStatus.SUCCESSFUL and again.results.read_file("$JN.out") == "AAA\n"
    finish()


def test_a_crashed_rerun_in_place_leaves_no_stale_saved_job(tmp_path: Path, fresh_config: object) -> None:
    from plams_cli import finish

    _reopen_after(tmp_path, "stale", "echo ok")
    ShellJob(name="calc", runscript="exit 1").run()
    finish()
    assert not (tmp_path / "stale" / "calc" / "calc.dill").exists()
    assert load_all(str(tmp_path / "stale")) == {}


def test_finish_removes_nested_empty_folders_only(tmp_path: Path, fresh_config: object) -> None:
    """Empty folders go deepest first (a folder holding only empty ones too); files, links and the workdir stay."""
    from plams_cli import finish, init

    manager = init(path=str(tmp_path), folder="w", quiet=True)
    work = Path(manager.workdir)
    (work / "a" / "b" / "c").mkdir(parents=True)
    (work / "kept" / "empty").mkdir(parents=True)
    (work / "kept" / "file.txt").write_text("x")
    outside = tmp_path / "outside"
    (outside / "empty").mkdir(parents=True)
    (work / "link").symlink_to(outside)
    finish()
    assert sorted(p.name for p in work.iterdir() if p.name != "logfile") == ["kept", "link"]
    assert sorted(p.name for p in (work / "kept").iterdir()) == ["file.txt"]
    assert (outside / "empty").is_dir()  # not followed through the link
