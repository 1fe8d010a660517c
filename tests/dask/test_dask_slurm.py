"""``DaskRunner`` on the localhost SLURM (``SLURMCluster``): each worker is a batch job on this machine.

Under ``CI=true`` these fail, not skip, without SLURM or the extra. Every test names its
worker batch jobs after itself (``job_name``), checks ``squeue`` for them, and cancels
whatever is left of them (only its own) at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import psutil
import pytest

from plams_cli.core.jobs import ShellJob
from plams_cli.core.observers import subscribe, unsubscribe
from plams_cli.core.status import JobStatus
from plams_cli.runners.dask import DaskRunner
from tests.conftest import python_env
from tests.core.observing import Recorder
from tests.dask.conftest import my_batch_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_up")]

_SCRIPT = Path(sys.executable).with_name("plams")
PLAMS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "plams_cli"]


def wait_until(predicate: Callable[[], object], timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def slurm_settings(name: str, partition: str, logs: Path, **more: Any) -> dict[str, Any]:
    """The settings of a one-machine SLURMCluster named ``name``."""
    return {"cluster": "slurm", "jobs": 1, "cores": 2, "memory": "1GB", "walltime": "00:10:00", "queue": partition,
            "interface": "lo", "log_directory": str(logs), "job_name": name, "death_timeout": 30, **more}


@pytest.fixture
def settings(scancel_mine: str, partition: str, tmp_path: Path) -> dict[str, Any]:
    return slurm_settings(scancel_mine, partition, tmp_path / "logs")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(("code", "status"), [(0, JobStatus.SUCCESSFUL), (3, JobStatus.CRASHED)], ids=["0", "3"])
def test_exit_codes_and_the_worker_batch_job_recorded(run_in: object, settings: dict[str, Any], code: int,
                                                      status: JobStatus) -> None:
    dr = DaskRunner(**settings)
    recorder = Recorder()
    subscribe(recorder)
    try:
        job = ShellJob(name="code", runscript=f"echo $SLURM_JOB_ID; exit {code}")
        job.run(jobrunner=dr)
        job.results.wait()
        batch_ids = set(dr.worker_batch_jobs().values())
    finally:
        unsubscribe(recorder)
    assert job.status == status
    batch = job.results.read_file("$JN.out").strip()
    assert batch_ids == {batch}
    assert batch in my_batch_jobs(settings["job_name"])
    launches = [launch for seen, launch in recorder.launches if seen is job]
    assert [(launch.kind, launch.job_id, launch.grid) for launch in launches] == [("dask", batch, "slurm")]
    if code:
        assert "exited with code 3" in cast(str, job.get_errormsg())


def test_the_job_cache_records_dask_jobs_with_their_workers_batch_job(
        fresh_config: object, settings: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plams_cli.core import cache_recorder
    from plams_cli.core.runtime import finish, init
    from plams_cli.jobcache import JobCache

    cache = str(tmp_path / "cache.sqlite")
    monkeypatch.setenv("PLAMS_JOBCACHE", cache)
    init(path=str(tmp_path), folder="cached", quiet=True)
    dr = DaskRunner(**settings)
    job = ShellJob(name="cached", runscript="echo $SLURM_JOB_ID; sleep 3")
    job.run(jobrunner=dr)

    def row() -> dict[str, Any]:
        recorder = cache_recorder.current_recorder()
        if recorder is not None:
            recorder.flush()
        jobs = JobCache(cache, load=True)
        try:
            return next((j.job_spec() for server in jobs.job_servers.values() for j in server.jobs
                         if j.path == job.path), {})
        finally:
            jobs.close()

    wait_until(lambda: row().get("kind") == "dask", 60, "the cache to get the worker's batch job")
    running = row()
    job.results.wait()
    finish()
    batch = job.results.read_file("$JN.out").strip()
    assert (running["kind"], running["job_id"], running["grid"]) == ("dask", batch, "slurm")
    assert running["status"] == "running"
    assert row()["status"] == "finished"  # the cache's name of a job that ended well


def test_a_runscript_writing_many_files_in_a_folder_with_spaces(fresh_config: object, settings: dict[str, Any],
                                                                tmp_path: Path) -> None:
    from plams_cli.core.runtime import finish, init

    (tmp_path / "with space").mkdir()
    init(path=str(tmp_path / "with space"), folder="work dir", quiet=True)
    dr = DaskRunner(**settings)
    job = ShellJob(name="many", runscript="for i in $(seq 300); do echo $i > \"file $i.txt\"; done; pwd")
    job.run(jobrunner=dr)
    job.results.wait()
    finish()
    assert job.status == JobStatus.SUCCESSFUL
    folder = Path(str(job.path))
    assert " " in str(folder.parent.parent) and job.results.read_file("$JN.out").strip() == str(folder)
    assert sorted(int(p.stem.split()[1]) for p in folder.glob("file *.txt")) == list(range(1, 301))
    assert (folder / "file 300.txt").read_text() == "300\n"
    wait_until(lambda: not my_batch_jobs(settings["job_name"]), 30, "finish() to cancel the worker batch job")


def test_a_worker_killed_mid_job_crashes_the_job_with_the_reason(run_in: object, settings: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    dr = DaskRunner(**settings)
    pidfile = tmp_path / "pid"
    job = ShellJob(name="victim", runscript=f"echo $$ > '{pidfile}'; sleep 120")
    job.run(jobrunner=dr)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 60, "the runscript to start")
    [batch] = dr.worker_batch_jobs().values()
    subprocess.run(["scancel", batch], check=True, timeout=30)
    job.results.wait()
    assert job.status == JobStatus.CRASHED
    message = job.get_errormsg()
    assert message is not None
    assert "Dask worker" in message and batch in message and "mid-job" in message, message
    wait_until(lambda: not _alive(int(pidfile.read_text())), 30, "the runscript to die with its worker")


def test_with_retries_a_job_whose_worker_was_killed_runs_again_elsewhere(run_in: object, settings: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    dr = DaskRunner(**{**settings, "jobs": 2, "retries": 1})
    counter, marker, pid = tmp_path / "counter", tmp_path / "marker", tmp_path / "pid"
    # The first attempt ignores the batch job's SIGTERM, which reaches every process of the
    # job: it ends only with its worker (not by its sleep dying first and the script going on).
    job = ShellJob(name="again", runscript=f"echo $SLURM_JOB_ID >> '{counter}'; if [ ! -e '{marker}' ]; then "
                                            f"trap '' TERM; echo $$ > '{pid}'; touch '{marker}'; sleep 120; fi; "
                                            "echo done")
    try:
        job.run(jobrunner=dr)
        wait_until(lambda: marker.exists(), 60, "the first attempt to start")
        first = counter.read_text().split()[0]
        subprocess.run(["scancel", first], check=True, timeout=30)
        job.results.wait()
        assert job.status == JobStatus.SUCCESSFUL, job.get_errormsg()
        attempts = counter.read_text().split()
        assert len(attempts) == 2 and attempts[0] == first and attempts[1] != first
        assert job.results.read_file("$JN.out").strip() == "done"
    finally:  # a worker that died of the SIGTERM at once left the first attempt to the batch job's SIGKILL
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(pid.read_text()), signal.SIGKILL)


def _defaults(tmp_path: Path, settings: dict[str, Any]) -> dict[str, str]:
    """An environment whose YAML defaults make every job of a plain PLAMS script run on Dask."""
    lines = ["default_jobrunner: dask", "daskrunner:"]
    lines += [f"  {key}: {value!r}" if isinstance(value, str) else f"  {key}: {value}"
              for key, value in settings.items()]
    path = tmp_path / "defaults.yaml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return {**python_env(), "PLAMS_DEFAULTS": str(path)}


# A PLAMS script that knows nothing of Dask. Each job appends "<name> <batch id>" to COUNTER.
SCRIPT = """\
for name in ("quick1", "quick2"):
    ShellJob(name=name, runscript=f"echo {name} $SLURM_JOB_ID >> '{COUNTER}'").run()
ShellJob(name="long", runscript=f"echo long $SLURM_JOB_ID >> '{COUNTER}'; sleep {SLEEP}").run()
ShellJob(name="last", runscript=f"echo last $SLURM_JOB_ID >> '{COUNTER}'").run()
"""


def _lines(counter: Path) -> list[list[str]]:
    return [line.split() for line in counter.read_text().splitlines()] if counter.exists() else []


# The second job is handed to Dask once the first runs, and waits there for the only core.
CTRL_C_SCRIPT = """\
import os, time
ShellJob(name="long", runscript=f"echo long $SLURM_JOB_ID >> '{COUNTER}'; sleep 120").run()
while not os.path.exists(COUNTER):
    time.sleep(0.05)
ShellJob(name="last", runscript=f"echo last $SLURM_JOB_ID >> '{COUNTER}'").run()
"""


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_jobs_and_leaves_no_batch_job(settings: dict[str, Any], tmp_path: Path, sig: int,
                                                       status: int) -> None:
    counter, script = tmp_path / "counter", tmp_path / "s.plms"
    script.write_text(CTRL_C_SCRIPT)
    env = _defaults(tmp_path, {**settings, "cores": 1})
    live = subprocess.Popen([*PLAMS, "-f", "w", "-v", f"COUNTER={counter}", str(script)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _lines(counter), 90, "the long job to start")
        wait_until(lambda: (tmp_path / "w" / "last").is_dir(), 30, "the second job to be handed to Dask")
        time.sleep(0.5)
        [[name, batch]] = _lines(counter)
        assert name == "long" and my_batch_jobs(settings["job_name"]) == [batch]
        live.send_signal(sig)
        out, err = live.communicate(timeout=60)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == status, err
    assert "stopped runscript long.run (pid " in err and f"batch job {batch}" in err, err
    assert f"cancelled slurm job {batch}" in err, err
    assert _lines(counter) == [["long", batch]]
    assert not (tmp_path / "w" / "last").exists()  # not started: its folder is gone
    wait_until(lambda: not my_batch_jobs(settings["job_name"]), 30, "the worker batch job to leave the queue")


def test_restart_after_a_kill_reuses_finished_jobs_and_cancels_the_old_worker(settings: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    counter, script = tmp_path / "counter", tmp_path / "s.plms"
    script.write_text(SCRIPT)
    env = _defaults(tmp_path, settings)
    args = [*PLAMS, "-f", "w", "-v", f"COUNTER={counter}"]
    live = subprocess.Popen([*args, "-v", "SLEEP=120", str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: all((tmp_path / "w" / name / f"{name}.dill").exists()
                               for name in ("quick1", "quick2", "last")), 90, "the short jobs to be saved")
        wait_until(lambda: any(line[0] == "long" for line in _lines(counter)), 30, "the long job to start")
        [old_batch] = {line[1] for line in _lines(counter)}
        live.send_signal(signal.SIGKILL)
        live.wait(30)
    finally:
        if live.poll() is None:
            live.kill()
    assert my_batch_jobs(settings["job_name"]) == [old_batch]  # the killed run's worker lives on
    restart = subprocess.run([*args, "-r", "-v", "SLEEP=0", str(script)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
    assert restart.returncode == 0, restart.stderr
    names = [line[0] for line in _lines(counter)]
    assert names.count("quick1") == names.count("quick2") == 1  # reused, not run again
    assert names.count("long") == 2 and names.count("last") == 1
    log = (tmp_path / "w" / "logfile").read_text()
    assert f"Restart: cancelled slurm job {old_batch}" in log, log
    assert not (tmp_path / "w.res").exists()
    wait_until(lambda: not my_batch_jobs(settings["job_name"]), 30, "every worker batch job to leave the queue")
