"""Job, SingleJob, MultiJob: files, statuses, errors, life cycle."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast

import pytest

from plams_cli import Job, JobRunner, JobStatus, MultiJob, Settings, ShellJob, SingleJob, config
from plams_cli.errors import JobError
from tests.core.jobkinds import BrokenPrerunJob, CheckedJob, EchoJob, PairJob, PostrunJob


def echo(name: str, value: str = "v", **inputs: object) -> EchoJob:
    job = EchoJob(name=name)
    job.settings.input.value = value
    for key, item in inputs.items():
        job.settings.input[key] = item
    return job


def test_jobstatus_names_and_string_equality() -> None:
    names = ["created", "started", "registered", "running", "finished", "crashed", "failed",
             "successful", "copied", "preview", "deleted"]
    assert [s.value for s in JobStatus] == names
    assert JobStatus.CRASHED == "crashed" and JobStatus["SUCCESSFUL"] is JobStatus.SUCCESSFUL  # type: ignore[comparison-overlap]


def test_single_job_files_and_results(run_in: object) -> None:
    job = echo("calc", "hello")
    results = job.run()
    assert job.status == JobStatus.SUCCESSFUL and job.ok()
    assert job.path is not None
    folder = Path(job.path)
    assert folder == Path(run_in.workdir) / "calc"  # type: ignore[attr-defined]
    for name in ("calc.in", "calc.run", "calc.out", "calc.err", "calc.dill", "calc.job.json"):
        assert (folder / name).is_file(), name
    assert (folder / "calc.in").read_text() == "hello"
    assert (folder / "calc.run").read_text().startswith("#!/bin/sh\n")
    assert os.access(folder / "calc.run", os.X_OK)
    assert results.read_file("$JN.out").strip() == "result hello"
    assert results["out"] == str(folder / "out")
    assert "out" in results and "nothing" not in results
    assert job.get_errormsg() is None


def test_runscript_pre_post_and_shebang(run_in: object) -> None:
    job = ShellJob(name="shell", runscript='echo "$0 body"')
    job.settings.runscript.shebang = "#!/bin/bash"
    job.settings.runscript.pre = "echo pre"
    job.settings.runscript.post = "echo post"
    job.run()
    text = job.full_runscript()
    assert text.startswith("#!/bin/bash\n")
    assert text.index("echo pre") < text.index("body") < text.index("echo post")
    lines = job.results.read_file("$JN.out").splitlines()
    assert lines == ["pre", f"{job.path}/shell.run body", "post"]


def test_stdout_redirect_leaves_stdout_to_the_runscript(run_in: object) -> None:
    job = ShellJob(name="redir", runscript="echo inside > redir.out")
    job.settings.runscript.stdout_redirect = True
    job.run()
    assert job.ok()
    assert job.results.read_file("redir.out").strip() == "inside"


@pytest.mark.parametrize("name", ["a/b", "/abs", ".", ".."], ids=["slash", "absolute", "dot", "dotdot"])
def test_name_with_slash_is_refused(name: str) -> None:
    with pytest.raises(JobError, match="must not contain"):
        EchoJob(name=name)


def test_running_twice_raises(run_in: object) -> None:
    job = echo("twice")
    job.run()
    with pytest.raises(JobError, match="already run"):
        job.run()


def test_name_clash_is_renamed_with_counter(run_in: object) -> None:
    jobs = [echo("same", str(i)) for i in range(3)]
    for job in jobs:
        job.run()
    assert [j.name for j in jobs] == ["same", "same.002", "same.003"]
    assert all(Path(cast(str, j.path)).name == j.name for j in jobs)


def test_counter_len_setting(run_in: object) -> None:
    config.jobmanager.counter_len = 2
    first, second = echo("c", "1"), echo("c", "2")
    first.run()
    second.run()
    assert second.name == "c.02"


def test_crashed_job_reports_exit_code_and_stderr(run_in: object) -> None:
    job = echo("boom", exit=3)
    job.run()
    assert job.status == JobStatus.CRASHED and not job.ok()
    message = job.get_errormsg()
    assert message is not None and "exited with code 3" in message and "failing on purpose" in message
    assert job.path is not None
    assert not Path(job.path, "boom.dill").exists()


def test_failed_check_reports_failed(run_in: object) -> None:
    job = CheckedJob(name="chk")
    job.settings.input.value = "bad"
    job.run()
    assert job.status == JobStatus.FAILED
    assert "check() returned False" in (job.get_errormsg() or "")


def test_exception_in_prerun_crashes_with_reason(run_in: object) -> None:
    job = BrokenPrerunJob(name="pre")
    job.run()
    assert job.status == JobStatus.CRASHED
    message = job.get_errormsg() or ""
    assert "ValueError: prerun exploded" in message and "jobkinds.py" in message


def test_missing_interpreter_fails_at_once(run_in: object) -> None:
    job = ShellJob(name="nointerp", runscript="echo hi")
    job.settings.runscript.shebang = "#!/nonexistent/interpreter"
    start = time.monotonic()
    job.run()
    assert time.monotonic() - start < 5  # PLAMS retried for 11 s
    assert job.status == JobStatus.CRASHED
    assert "/nonexistent/interpreter" in (job.get_errormsg() or "")
    assert "does not exist" in cast(str, job.get_errormsg())


def test_killed_runscript_names_the_signal(run_in: object) -> None:
    job = ShellJob(name="killed", runscript="kill -9 $$")
    job.run()
    assert "SIGKILL" in (job.get_errormsg() or "")


def test_postrun_reads_own_results(run_in: object) -> None:
    job = PostrunJob(name="post")
    job.settings.input.value = "seen"
    job.run()
    assert job.ok() and job.seen == "seen"


def test_settings_argument_is_copied(run_in: object) -> None:
    s = Settings()
    s.input.value = "x"
    job = EchoJob(name="copy", settings=s)
    s.input.value = "changed"
    assert job.settings.input.value == "x"
    other = EchoJob(name="from-job", settings=job)
    assert other.settings.input.value == "x"


def test_run_flags_go_to_settings_run(run_in: object) -> None:
    job = echo("flags")
    job.run(queue="short", nodes=2)
    assert job.settings.run.queue == "short" and job.settings.run.nodes == 2


def test_depend_waits_for_dependency(run_in: object) -> None:
    runner = JobRunner(parallel=True)
    first = echo("first", sleep=0.3)
    second = ShellJob(name="second", runscript=f"cat '{run_in.workdir}/first/out'", depend=[first])  # type: ignore[attr-defined]
    first.run(jobrunner=runner)
    second.run(jobrunner=runner)
    assert second.ok()
    assert second.timestamps["running"] >= first.timestamps["successful"]
    assert "v" in second.results.read_file("$JN.out")


def test_results_of_running_job_wait(run_in: object) -> None:
    runner = JobRunner(parallel=True)
    job = echo("slow", "late", sleep=0.3)
    results = job.run(jobrunner=runner)
    assert results.read_file("out") == "late"  # waited for the job
    assert job.status == JobStatus.SUCCESSFUL


def test_results_of_job_never_run_is_an_error() -> None:
    from plams_cli.errors import ResultsError

    with pytest.raises(ResultsError, match="has not been run"):
        echo("never").results.read_file("out")


def test_multijob_children_list_and_dict(run_in: object) -> None:
    listed = MultiJob(name="listed", children=[echo("a"), echo("b", "2")])
    listed.run()
    assert listed.ok() and all(c.ok() for c in listed)
    assert listed.path is not None
    assert Path(listed.path, "a", "a.out").is_file()
    keyed = MultiJob(name="keyed", children={"x": echo("x"), "y": echo("y", "3")})
    keyed.run()
    assert keyed.ok() and cast(dict[str, Job], keyed.children)["y"].results.read_file("out") == "3"


def test_multijob_check_fails_when_a_child_fails(run_in: object) -> None:
    job = MultiJob(name="m", children=[echo("ok1"), echo("bad", exit=1)])
    job.run()
    assert job.status == JobStatus.FAILED


def test_multijob_new_children(run_in: object) -> None:
    job = PairJob(name="pair", children=[echo("early")])
    job.run()
    assert job.ok()
    assert [c.name for c in job] == ["early", "late"]
    assert job.children[1].results.read_file("out") == "late child"


def test_multijob_is_not_hashed_but_children_are(run_in: object) -> None:
    job = MultiJob(name="mh", children=[echo("h1", "unique-h")])
    job.run()
    assert job.hash() is None
    assert job.children[0]._hash in run_in.hashes  # type: ignore[attr-defined]


def test_parallel_multijob_finishes_as_soon_as_children_do(run_in: object) -> None:
    config.sleepstep = 10  # a poll-and-sleep MultiJob would take at least this long
    runner = JobRunner(parallel=True)
    job = MultiJob(name="fast", children=[ShellJob(name="t1", runscript="true"), ShellJob(name="t2", runscript=":")])
    start = time.monotonic()
    job.run(jobrunner=runner)
    job.results.wait()
    assert job.ok()
    assert time.monotonic() - start < config.sleepstep / 2


@pytest.mark.parametrize("maxthreads", [1, 2], ids=["maxthreads-1", "maxthreads-2"])
def test_nested_multijobs_do_not_deadlock(run_in: object, maxthreads: int) -> None:
    runner = JobRunner(parallel=True, maxthreads=maxthreads)
    inner = [MultiJob(name=f"inner{i}", children=[echo(f"leaf{i}{k}", f"{i}{k}") for k in range(3)]) for i in range(3)]
    outer = MultiJob(name="outer", children=[MultiJob(name="middle", children=cast(list[Job], inner))],
                     childrunner=runner)
    outer.run(jobrunner=runner)
    assert outer.results.wait() is outer.results
    assert outer.ok()
    assert sum(1 for m in inner for leaf in m if leaf.ok()) == 9


def test_maxjobs_bounds_simultaneous_runscripts(run_in: object, tmp_path: Path) -> None:
    log = tmp_path / "concurrency.log"
    body = f"echo start >> '{log}'; sleep 0.2; echo end >> '{log}'"
    runner = JobRunner(parallel=True, maxjobs=2)
    jobs = [ShellJob(name=f"mj{i}", runscript=body + f" # {i}") for i in range(6)]
    for job in jobs:
        job.run(jobrunner=runner)
    assert all(job.ok() for job in jobs)
    running = peak = 0
    for line in log.read_text().split():
        running += 1 if line == "start" else -1
        peak = max(peak, running)
    assert peak == 2


def test_preview_writes_inputs_only(run_in: object) -> None:
    config.preview = True
    job = echo("prev")
    job.run()
    assert job.status == JobStatus.PREVIEW
    assert job.path is not None
    assert Path(job.path, "prev.run").is_file() and not Path(job.path, "prev.out").exists()


def test_keep_setting_cleans_job_folder(run_in: object) -> None:
    job = echo("kept")
    job.settings.keep = ["$JN.out"]
    job.run()
    assert sorted(os.listdir(job.path)) == ["kept.dill", "kept.job.json", "kept.out"]


def test_save_setting_applies_at_finish(tmp_path: Path, fresh_config: object) -> None:
    from plams_cli import finish, init

    init(path=str(tmp_path), folder="save", quiet=True)
    job = echo("saved")
    job.settings.save = ["-", "out", "$JN.err"]
    job.run()
    assert job.path is not None
    assert Path(job.path, "out").exists()
    finish()
    names = sorted(os.listdir(job.path))
    assert "out" not in names and "saved.err" not in names and "saved.in" in names


def test_finish_removes_empty_directories(tmp_path: Path, fresh_config: object) -> None:
    from plams_cli import finish, init

    manager = init(path=str(tmp_path), folder="empty", quiet=True)
    os.mkdir(os.path.join(manager.workdir, "leftover"))
    finish()
    assert not Path(manager.workdir, "leftover").exists()


class _ScratchJob(SingleJob):
    """Leaves an empty ``scratch/tmp`` folder (and its output) in its job folder."""

    def get_input(self) -> str:
        return ""

    def get_runscript(self) -> str:
        return "mkdir -p scratch/tmp keep\necho x > keep/x\necho done\n"


def test_finish_removes_the_empty_folders_a_job_left_in_its_folder(tmp_path: Path, fresh_config: object) -> None:
    """A job folder with files is not emptied, but empty folders inside it go, as in PLAMS."""
    from plams_cli import finish, init

    manager = init(path=str(tmp_path), folder="w", quiet=True)
    job = _ScratchJob(name="s")
    job.run()
    assert job.path is not None
    assert job.ok() and Path(job.path, "scratch", "tmp").is_dir()
    os.mkdir(os.path.join(manager.workdir, "s2"))  # a folder that is no job's, empty
    finish()
    assert not Path(job.path, "scratch").exists() and not Path(manager.workdir, "s2").exists()
    assert Path(job.path, "keep", "x").is_file() and Path(job.path, "s.out").is_file()


def test_get_errormsg_of_successful_job_is_none(run_in: object) -> None:
    job = SingleJob.__new__(EchoJob)
    EchoJob.__init__(job, name="fine")
    job.run()
    assert job.get_errormsg() is None


def test_jobs_waiting_for_later_dependencies_do_not_block_the_script(run_in: object) -> None:
    runner = JobRunner(parallel=True, maxjobs=1)
    jobs = [echo(f"chain{i}", str(i)) for i in range(8)]
    for earlier, later in zip(jobs, jobs[1:], strict=False):
        earlier.depend.append(later)  # each job waits for one submitted after it
    for job in jobs:
        job.run(jobrunner=runner)
    assert all(job.ok() for job in jobs)
    order = sorted(jobs, key=lambda job: job.timestamps["running"])
    assert order == jobs[::-1]


def test_parallel_run_returns_at_once_even_with_maxjobs(run_in: object) -> None:
    runner = JobRunner(parallel=True, maxjobs=1)
    jobs = [ShellJob(name=f"wait{i}", runscript=f"sleep 0.2 # {i}") for i in range(10)]
    start = time.monotonic()
    for job in jobs:
        job.run(jobrunner=runner)
    submitted = time.monotonic() - start
    assert all(job.ok() for job in jobs)
    total = time.monotonic() - start
    assert submitted < total / 4  # the ten runscripts take 2 s one after another


def test_preview_of_a_multijob_writes_its_childrens_inputs(run_in: object) -> None:
    config.preview = True
    job = MultiJob(name="pm", children=[echo("pc1", "1"), echo("pc2", "2")])
    job.run()
    assert job.status == JobStatus.PREVIEW and [c.status for c in job] == [JobStatus.PREVIEW] * 2
    for child in job:
        assert child.path is not None
        assert Path(child.path, f"{child.name}.in").is_file() and Path(child.path, f"{child.name}.run").is_file()


def test_ok_of_a_job_never_run_is_false_at_once() -> None:
    assert echo("never").ok() is False


def test_multijob_run_flags_reach_its_children(run_in: object) -> None:
    child, own = echo("flagged"), echo("own")
    own.settings.run.queue = "mine"
    job = MultiJob(name="mf", children=[child, own])
    job.run(queue="short", nodes=2)
    assert job.ok()
    assert child.settings.run.as_dict() == {"queue": "short", "nodes": 2}
    assert own.settings.run.as_dict() == {"queue": "mine", "nodes": 2}  # the child's own flags win


def test_a_thousand_generations_of_new_children(run_in: object) -> None:
    class Generations(MultiJob):
        def new_children(self):  # type: ignore[no-untyped-def]
            if len(self.children) >= 1200:
                return None
            child = MultiJob(name=f"g{len(self.children)}")  # cheap: no runscript
            return [child]

    job = Generations(name="gens")
    job.run()
    assert job.ok() and len(job.children) == 1200  # a recursive implementation overflows the stack


def test_failed_multijob_names_the_children_that_did_not_end_well(run_in: object) -> None:
    job = MultiJob(name="mfail", children=[echo("fine"), echo("broken", exit=4)])
    job.run()
    message = job.get_errormsg() or ""
    assert job.status == JobStatus.FAILED and "broken (crashed: " in message and "exited with code 4" in message
    assert "fine" not in message


def test_settings_as_a_dict_and_plams_filenames(run_in: object) -> None:
    class Plamsish(SingleJob):
        def get_input(self) -> str:
            return "data"

        def get_runscript(self) -> str:
            return f"cat {self._filename('inp')}"

    job = Plamsish(name="pl", settings={"input": {"x": 1}})
    job.run()
    assert job.ok() and job.settings.input.x == 1
    assert job.results.read_file(job._filename("out")) == "data" and job._filename("err") == "pl.err"
    assert job.results.grep_output("data") == ["data"]


def test_job_named_with_a_leading_dot_lists_its_files(run_in: object) -> None:
    job = ShellJob(name=".dotted", runscript="echo x > out")
    job.run()
    assert job.ok() and {".dotted.out", ".dotted.run", "out"} <= set(job.results.files)


def test_remove_job_removes_a_multijobs_children(run_in: object) -> None:
    job = MultiJob(name="rm", children=[echo("rc1"), echo("rc2", "2")])
    job.run()
    job.ok()
    run_in.remove_job(job)  # type: ignore[attr-defined]
    assert [c.status for c in job] == [JobStatus.DELETED] * 2 and job.status == JobStatus.DELETED
    assert run_in.status_counts() == {}  # type: ignore[attr-defined]
