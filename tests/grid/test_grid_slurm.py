"""GridRunner.call() against the real localhost SLURM (tests/schedulers/slurm_localhost.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plams_cli.errors import GridError, SubmitError
from plams_cli.runners.grid import GridRunner, read_exit_file
from plams_cli.runners.local import cancel_all

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_up")]

Script = Callable[[Path, str, str], str]


def scontrol(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout


def job_id_of(folder: Path, runscript: str) -> str:
    return str(json.loads((folder / f"{runscript}.exitcode").read_text())["job_id"])


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("code", [0, 3], ids=["exit-0", "exit-3"])
def test_exit_code_is_the_runscript_s(jobdir: Path, runscript: Script, unique: str, code: int) -> None:
    name = runscript(jobdir, f"{unique}.run", f"echo out; echo err >&2; exit {code}")
    gr = GridRunner("slurm", sleepstep=1)
    assert gr.call(name, str(jobdir), f"{unique}.out", f"{unique}.err", {"J": unique}) == code
    assert (jobdir / f"{unique}.out").read_text() == "out\n"
    assert (jobdir / f"{unique}.err").read_text() == "err\n"
    record = read_exit_file(str(jobdir / f"{name}.exitcode"))
    assert record is not None
    assert record["exit_code"] == code and record["end"] >= record["start"] > 0
    if code:
        assert "JobState=FAILED" in scontrol(record["job_id"])


def test_special_flags_reach_slurm(jobdir: Path, runscript: Script, unique: str, partition: str) -> None:
    name = runscript(jobdir, "a job.run", "exit 0")
    gr = GridRunner("slurm", sleepstep=1)
    assert gr.call(name, str(jobdir), "a job.out", "a job.err", {"queue": partition, "J": f"{unique} x"}) == 0
    shown = scontrol(job_id_of(jobdir, name))
    assert f"JobName={unique} x" in shown
    assert f"Partition={partition}" in shown
    assert f"WorkDir={jobdir}" in shown  # the folder with a space


def test_stdout_redirect(jobdir: Path, runscript: Script, unique: str) -> None:
    # runscript.stdout_redirect: the runscript writes <name>.out itself, out=None
    name = runscript(jobdir, f"{unique}.run", f"exec >'{unique}.out'\necho live; sleep 1; echo done")
    gr = GridRunner("slurm", sleepstep=1)
    seen_live: list[str] = []

    def watch() -> None:
        path = jobdir / f"{unique}.out"
        for _ in range(100):
            if path.exists() and path.read_text() == "live\n":
                seen_live.append("yes")
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert gr.call(name, str(jobdir), None, f"{unique}.err", {"J": unique}) == 0
    watcher.join()
    assert (jobdir / f"{unique}.out").read_text() == "live\ndone\n"
    assert seen_live, "the output was not written live into the job folder"


def test_refused_submission_is_a_submit_error(jobdir: Path, runscript: Script, unique: str) -> None:
    name = runscript(jobdir, f"{unique}.run", "exit 0")
    gr = GridRunner("slurm", sleepstep=1)
    with pytest.raises(SubmitError, match="invalid partition|Invalid partition") as info:
        gr.call(name, str(jobdir), None, None, {"queue": "nosuchpartition", "J": unique})
    assert "sbatch" in str(info.value)


def test_cancelled_from_outside_reports_the_reason(jobdir: Path, runscript: Script, unique: str) -> None:
    name = runscript(jobdir, f"{unique}.run", "sleep 60")
    gr = GridRunner("slurm", sleepstep=1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            gr.call(name, str(jobdir), f"{unique}.out", f"{unique}.err", {"J": unique})
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: "R" in gr.active_jobs.values())
    (job_id,) = gr.active_jobs
    subprocess.run(["scancel", job_id], check=True)
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], GridError)
    assert "CANCELLED" in str(errors[0]) and job_id in str(errors[0])
    assert "signal 15" in str(errors[0]) or "exit code 143" in str(errors[0])


def test_cancel_all_cancels_queued_and_running(jobdir: Path, runscript: Script, unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    errors: list[BaseException] = []

    def run(i: int, flags: dict[str, object]) -> None:
        name = runscript(jobdir, f"{unique}-{i}.run", "sleep 60")
        try:
            gr.call(name, str(jobdir), None, None, {"J": f"{unique}-{i}", **flags})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    # one running, two held in the queue (-H)
    threads = [threading.Thread(target=run, args=(i, {"H": True} if i else {})) for i in range(3)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sorted(gr.active_jobs.values()) == ["PD", "PD", "R"])
    ids = list(gr.active_jobs)
    lines = [str(record) for record in cancel_all()]
    assert sum(f"cancelled slurm job {i}" in " ".join(lines) for i in ids) == 3
    for thread in threads:
        thread.join(30)
    assert len(errors) == 3 and all("cancelled by plams" in str(e) for e in errors)
    wait_for(lambda: all("JobState=CANCELLED" in scontrol(i) for i in ids))
    with pytest.raises(GridError, match="cancelled"):  # nothing new after a cancel
        gr.call(runscript(jobdir, "late.run", "exit 0"), str(jobdir), None, None, {})


def test_keyboard_interrupt_cancels_the_job(tmp_path: Path, unique: str) -> None:
    folder = tmp_path / "ki"
    folder.mkdir()
    script = folder / "run.run"
    script.write_text("#!/bin/sh\nsleep 60\n")
    script.chmod(0o755)
    driver = textwrap.dedent(
        f"""
        import signal, threading, os
        from plams_cli.runners.grid import GridRunner, read_exit_file
        gr = GridRunner("slurm", sleepstep=1, parallel=False)
        def interrupt():
            import time
            while not gr.active_jobs: time.sleep(0.05)
            print("JOB", list(gr.active_jobs)[0], flush=True)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        gr.call("run.run", {str(folder)!r}, None, None, {{"J": {unique!r}}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    job_id = proc.stdout.split("JOB", 1)[1].split()[0]
    assert f"cancelled slurm job {job_id}" in proc.stderr
    wait_for(lambda: "JobState=CANCELLED" in scontrol(job_id))


def test_broken_squeue_leaves_jobs_unfinished(
    jobdir: Path, runscript: Script, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    broken = tmp_path / "broken"
    broken.touch()
    (shim / "squeue").write_text(
        "#!/bin/sh\n"
        f"if [ -e '{broken}' ]; then echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1; fi\n"
        'exec /usr/bin/squeue "$@"\n'
    )
    (shim / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    name = runscript(jobdir, f"{unique}.run", "exit 0")
    gr = GridRunner("slurm", sleepstep=1)
    returned: list[int] = []
    thread = threading.Thread(target=lambda: returned.append(gr.call(name, str(jobdir), None, None, {"J": unique})))
    thread.start()
    wait_for(lambda: (jobdir / f"{name}.exitcode").exists())  # the job is over...
    time.sleep(3)
    assert thread.is_alive() and not returned  # ...but nobody could tell: still waiting
    assert gr.query_failures > 0
    broken.unlink()
    thread.join(30)
    assert returned == [0]
    assert gr.query_failures == 0


def test_short_job_is_seen_quickly(jobdir: Path, runscript: Script, unique: str) -> None:
    name = runscript(jobdir, f"{unique}.run", "sleep 1")
    gr = GridRunner("slurm", sleepstep=5)
    assert gr.call(name, str(jobdir), None, None, {"J": unique}) == 0
    seen = time.time()
    record = read_exit_file(str(jobdir / f"{name}.exitcode"))
    assert record is not None
    assert record["end"] - record["start"] >= 0.95  # file times: coarser than the 1-s sleep they bracket
    assert seen - record["end"] < 1.0  # PLAMS: 5-6 s


def test_parallel_jobs_share_one_poller(jobdir: Path, runscript: Script, unique: str) -> None:
    gr = GridRunner("slurm", sleepstep=1)
    codes: dict[int, int] = {}
    names = [runscript(jobdir, f"{unique}-{i}.run", f"exit {i}") for i in range(6)]
    threads = [
        threading.Thread(target=lambda i=i: codes.__setitem__(
            i, gr.call(names[i], str(jobdir), None, None, {"J": f"{unique}-{i}"})))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert codes == {i: i for i in range(6)}
    pollers = [t for t in threading.enumerate() if t.name.startswith("plams-grid-poller")]
    assert len(pollers) <= 1


def test_listing_that_misses_a_running_job_does_not_finish_it(
    jobdir: Path, runscript: Script, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """squeue answers (exit 0) but lists nothing: the accounting says RUNNING, so keep waiting."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "squeue").write_text("#!/bin/sh\nexit 0\n")
    (shim / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    name = runscript(jobdir, f"{unique}.run", "sleep 2; exit 5")
    gr = GridRunner("slurm", sleepstep=1)
    assert gr.call(name, str(jobdir), None, None, {"J": unique}) == 5  # not "crashed: left the queue"


def test_cancel_during_submission_cancels_the_job_once_submitted(
    jobdir: Path, runscript: Script, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sbatch").write_text('#!/bin/sh\nsleep 1.5\nexec /usr/bin/sbatch "$@"\n')  # a slow controller
    (shim / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    name = runscript(jobdir, f"{unique}.run", "sleep 60")
    gr = GridRunner("slurm", sleepstep=1)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            gr.call(name, str(jobdir), None, None, {"J": unique})
        except GridError as exc:
            errors.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    time.sleep(0.5)  # sbatch is still running
    assert gr.cancel() == []  # nothing submitted yet
    thread.join(60)
    assert errors and "cancelled by plams" in str(errors[0])
    job_id = str(errors[0]).split("job ")[1].split()[0]
    assert f"cancelled slurm job {job_id}" in capfd.readouterr().err
    wait_for(lambda: "JobState=CANCELLED" in scontrol(job_id))


def test_grid_without_cancel_command_runs_and_says_it_cannot_cancel(
    jobdir: Path, runscript: Script, unique: str
) -> None:
    from plams_cli.runners.grid import grid_settings

    settings = grid_settings("slurm")
    settings = {**settings, "commands": {k: v for k, v in settings["commands"].items() if k != "cancel"}}
    gr = GridRunner(settings, sleepstep=1)  # as PLAMS's grid definitions: no cancel command
    assert gr.call(runscript(jobdir, f"{unique}.run", "exit 4"), str(jobdir), None, None, {"J": unique}) == 4
    slow = runscript(jobdir, f"{unique}-slow.run", "sleep 30")
    thread = threading.Thread(target=lambda: pytest.raises(GridError, gr.call, slow, str(jobdir), None, None,
                                                           {"J": unique}))
    thread.start()
    wait_for(lambda: bool(gr.active_jobs))
    job_id = next(iter(gr.active_jobs))
    lines = [str(record) for record in gr.cancel()]
    assert len(lines) == 1 and lines[0].startswith(f"could not cancel {gr.grid} job {job_id}")
    assert "has no commands.cancel" in lines[0]
    thread.join(30)
    subprocess.run(["scancel", job_id], check=False)  # the test's own clean-up
