"""``DaskRunner`` on a ``LocalCluster``: the runner contract, resources, cancel, close, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psutil
import pytest

from plams_cli.core.jobs import ShellJob
from plams_cli.core.status import JobStatus
from plams_cli.errors import ConfigError, DaskNotInstalledError, NotStartedError, SchedulerConnectionError
from plams_cli.runners.base import Stopped
from plams_cli.runners.dask import DaskRunner
from plams_cli.runners.launch import Launch, launch_reports_to
from tests.conftest import python_env

Script = Callable[[Path, str, str], str]


def _wait_for(predicate: Callable[[], object], timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(("code", "status"), [(0, JobStatus.SUCCESSFUL), (3, JobStatus.CRASHED)], ids=["0", "3"])
def test_exit_code_and_output_as_with_the_local_runner(run_in: object, code: int, status: JobStatus) -> None:
    dr = DaskRunner("local", jobs=1, cores=2)
    job = ShellJob(name="echo", runscript=f"echo out-$PWD; echo err >&2; exit {code}")
    job.run(jobrunner=dr)
    job.results.wait()
    assert job.status == status
    assert job.results.read_file("$JN.out").strip() == f"out-{job.path}"
    assert job.results.read_file("$JN.err").strip() == "err"
    if code:
        assert f"exited with code {code}" in cast(str, job.get_errormsg())
    assert not os.path.exists(os.path.join(str(job.path), "echo.run.jobid"))  # no record a restart would act on
    assert not os.path.exists(os.path.join(str(job.path), "echo.run.dask"))  # the worker's record is gone


def test_rerun_prevention_and_pickling(run_in: object) -> None:
    dr = DaskRunner("local")
    first, second = (ShellJob(name="same", runscript="echo same") for _ in range(2))
    first.run(jobrunner=dr)
    first.results.wait()
    second.run(jobrunner=dr)
    second.results.wait()
    assert (first.status, second.status) == (JobStatus.SUCCESSFUL, JobStatus.COPIED)
    assert os.path.isfile(os.path.join(str(first.path), "same.dill"))
    from plams_cli.core.pickling import load

    assert load(os.path.join(str(first.path), "same.dill")).status == JobStatus.SUCCESSFUL


def test_many_jobs_in_parallel_on_the_workers_threads(run_in: object) -> None:
    dr = DaskRunner("local", jobs=2, cores=2)
    jobs = [ShellJob(name="n", runscript=f"echo {i}") for i in range(40)]
    for job in jobs:
        job.run(jobrunner=dr)
    assert [job.results.read_file("$JN.out").strip() for job in jobs] == [str(i) for i in range(40)]
    assert all(job.status == JobStatus.SUCCESSFUL for job in jobs)
    assert len(dr.client.scheduler_info()["workers"]) == 2


def test_call_reports_the_local_runscript_process(tmp_path: Path, runscript: Script) -> None:
    dr = DaskRunner("local")
    name = runscript(tmp_path, "pid.run", "echo $$ > pid")
    launches: list[Launch] = []
    try:
        with launch_reports_to(launches.append):
            assert dr.call(name, str(tmp_path), "pid.out", "pid.err") == 0
    finally:
        dr.close()
    pid = (tmp_path / "pid").read_text().strip()
    _wait_for(lambda: launches, what="the launch event")
    [launch] = launches
    assert (launch.kind, launch.job_id, launch.running) == ("local", pid, True)
    assert abs(launch.started - time.time()) < 30


def test_a_job_asking_more_cores_than_a_worker_has_crashes_at_once(run_in: object) -> None:
    dr = DaskRunner("local", cores=2)
    job = ShellJob(name="big", runscript="true")
    job.run(jobrunner=dr, cores=3)
    job.results.wait()
    assert job.status == JobStatus.CRASHED
    assert "asks for 3 cores and each Dask worker has 2" in cast(str, job.get_errormsg())


def test_jobs_taking_all_cores_of_a_worker_run_one_at_a_time(run_in: object, tmp_path: Path) -> None:
    dr = DaskRunner("local", jobs=1, cores=2)
    log = tmp_path / "spans"
    jobs = [ShellJob(name="wide", runscript=f"date +%s.%N >> '{log}'; sleep 0.5; date +%s.%N >> '{log}'; echo {i}")
            for i in range(2)]
    narrow_log = tmp_path / "narrow"
    narrow = [ShellJob(name="narrow", runscript=f"echo start $(date +%s.%N) >> '{narrow_log}'; sleep 0.5; "
                                                 f"echo end $(date +%s.%N) >> '{narrow_log}'; echo {i}")
              for i in range(2)]
    for job in jobs:
        job.run(jobrunner=dr, cores=2)
    for job in jobs:
        job.results.wait()
    start_a, end_a, start_b, end_b = sorted(float(t) for t in log.read_text().split())
    assert end_a <= start_b, "two 2-core jobs overlapped on a 2-core worker"
    for job in narrow:
        job.run(jobrunner=dr)
    for job in narrow:
        job.results.wait()
    marks = [line.split() for line in narrow_log.read_text().splitlines()]
    starts = [float(t) for what, t in marks if what == "start"]
    ends = [float(t) for what, t in marks if what == "end"]
    assert len(starts) == len(ends) == 2
    assert max(starts) < min(ends), "two 1-core jobs did not share the 2-core worker"


def test_maxjobs_bounds_runscripts_at_once(run_in: object, tmp_path: Path) -> None:
    dr = DaskRunner("local", jobs=1, cores=4, maxjobs=1)
    log = tmp_path / "spans"
    jobs = [ShellJob(name="one", runscript=f"date +%s.%N >> '{log}'; sleep 0.3; date +%s.%N >> '{log}'; echo {i}")
            for i in range(3)]
    for job in jobs:
        job.run(jobrunner=dr)
    for job in jobs:
        job.results.wait()
    times = [float(t) for t in log.read_text().split()]
    spans = sorted(zip(times[::2], times[1::2], strict=True))
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))


def test_cancel_stops_running_runscripts_and_refuses_the_rest(run_in: object, tmp_path: Path) -> None:
    dr = DaskRunner("local", jobs=1, cores=1)
    pidfile = tmp_path / "pid"
    running = ShellJob(name="sleepy", runscript=f"echo $$ > '{pidfile}'; sleep 60")
    queued = ShellJob(name="queued", runscript="echo never")
    running.run(jobrunner=dr)
    _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the runscript to start")
    queued.run(jobrunner=dr)
    time.sleep(0.3)  # the second task waits for the only core at the scheduler
    pid = int(pidfile.read_text())
    records = dr.cancel()
    [record] = [r for r in records if r.kind == "dask"]
    assert (record.job_id, record.runscript, record.signals) == (str(pid), "sleepy.run", ("SIGTERM",))
    assert str(record).startswith(f"stopped runscript sleepy.run (pid {pid}): SIGTERM (Dask worker ")
    running.results.wait()
    queued.results.wait()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert running.status == JobStatus.CRASHED
    assert queued.status == JobStatus.CRASHED and queued.not_started
    assert dr.cluster is None  # closed
    late = ShellJob(name="late", runscript="true")
    late.run(jobrunner=dr)
    late.results.wait()
    assert late.not_started


def test_finish_closes_the_cluster_and_the_next_run_starts_another(fresh_config: object, tmp_path: Path) -> None:
    from plams_cli.core.runtime import finish, init

    dr = DaskRunner("local")
    for folder in ("one", "two"):
        init(path=str(tmp_path), folder=folder, quiet=True)
        job = ShellJob(name="j", runscript=f"echo {folder}")
        job.run(jobrunner=dr)
        job.results.wait()
        cluster = dr.cluster
        assert cluster is not None and cluster.status.name == "running"
        finish()
        assert dr.cluster is None and cluster.status.name == "closed"
        assert job.status == JobStatus.SUCCESSFUL


def test_clients_and_schedulers_of_the_user_are_used_and_left_running(run_in: object) -> None:
    from distributed import Client, LocalCluster

    with (LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,  # type: ignore[no-untyped-call]
          Client(cluster, set_as_default=False) as client):  # type: ignore[no-untyped-call]
        for how, runner in (("client", DaskRunner(client=client)),
                            ("address", DaskRunner(scheduler_address=cluster.scheduler_address))):
            job = ShellJob(name="theirs", runscript=f"echo {how}")
            job.run(jobrunner=runner)
            job.results.wait()
            assert job.status == JobStatus.SUCCESSFUL
            runner.close()
            assert client.status == "running" and cluster.status.name == "running"
        assert client.submit(sum, [1, 2]).result() == 3


def test_a_scheduler_that_does_not_answer_is_an_error_not_a_hang(run_in: object) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dr = DaskRunner(scheduler_address=f"tcp://127.0.0.1:{port}", connect_timeout_s=1)
    job = ShellJob(name="nobody", runscript="true")
    started = time.monotonic()
    job.run(jobrunner=dr)
    job.results.wait()
    assert time.monotonic() - started < 30
    assert job.status == JobStatus.CRASHED
    assert f"no answer from the Dask scheduler at tcp://127.0.0.1:{port} within 1 s" in cast(str, job.get_errormsg())
    with pytest.raises(SchedulerConnectionError):
        dr.client  # noqa: B018 - the property connects


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cluster": "slrum"}, "did you mean 'slurm'?"),
    ({"cluster": "local", "jobs": -1}, "jobs = -1"),
    ({"cluster": "local", "adaptive": {"minimum": 0, "most": 3}}, "adaptive"),
    ({"cluster": "local", "connect_timeout_s": 0}, "connect_timeout_s"),
], ids=["typo", "jobs", "adaptive", "timeout"])
def test_bad_settings_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="daskrunner") as caught:
        DaskRunner(**kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(DaskNotInstalledError, match=r"needs distributed, .*pip install 'plams-cli\[dask\]'"):
        DaskRunner("local")
    with pytest.raises(ImportError):  # it is one, for code written against the built-ins
        DaskRunner("local")


def test_adaptive_scaling_starts_workers_for_the_load(run_in: object) -> None:
    dr = DaskRunner("local", adaptive={"minimum": 0, "maximum": 2})
    jobs = [ShellJob(name="a", runscript=f"echo {i}") for i in range(4)]
    for job in jobs:
        job.run(jobrunner=dr)
    assert [job.results.read_file("$JN.out").strip() for job in jobs] == ["0", "1", "2", "3"]


def test_neither_plams_cli_nor_a_runner_imports_dask_before_the_first_job(tmp_path: Path) -> None:
    code = ("import sys, plams_cli\nfrom plams_cli import *\ndr = DaskRunner('local')\n"
            "print(sorted(m for m in ('dask', 'distributed', 'dask_jobqueue') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env(),
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_grid_detect_reports_the_extra() -> None:
    from click.testing import CliRunner

    from plams_cli.cli.main import cli

    result = CliRunner().invoke(cli, ["grid", "detect", "--json"])
    data = json.loads(result.stdout)
    import dask
    import distributed

    assert data["dask"] == {"installed": True, "extra": "plams-cli[dask]",
                            "versions": {"dask": dask.__version__, "distributed": distributed.__version__,  # type: ignore[attr-defined]
                                         "dask_jobqueue": data["dask"]["versions"]["dask_jobqueue"]}}
    assert data["dask"]["versions"]["dask_jobqueue"]


def test_not_started_error_when_cancelled_before_the_first_job() -> None:
    dr = DaskRunner("local")
    assert dr.cancel() == []
    with pytest.raises(NotStartedError):
        dr.call("x.run", "/nonexistent", None, None)
    assert isinstance(Stopped("dask", "1", "x"), Stopped)


def test_jobs_from_threads_share_one_cluster(tmp_path: Path, runscript: Script) -> None:
    dr = DaskRunner("local", cores=4)
    codes: list[int] = []
    folders = []
    for i in range(8):
        folder = tmp_path / f"j{i}"
        folder.mkdir()
        runscript(folder, "r.run", f"exit {i % 2 * 3}")
        folders.append(folder)
    threads = [threading.Thread(target=lambda f=f: codes.append(dr.call("r.run", str(f), None, None)))
               for f in folders]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        dr.close()
    assert sorted(codes) == [0, 0, 0, 0, 3, 3, 3, 3]


@pytest.mark.parametrize(("kind", "directive"), [("slurm", "#SBATCH -p short"), ("pbs", "#PBS -q short"),
                                                 ("sge", "#$ -q short")], ids=["slurm", "pbs", "sge"])
def test_batch_clusters_get_the_settings_and_the_cores_resource(kind: str, directive: str, tmp_path: Path) -> None:
    from plams_cli.runners.dask._cluster import make_cluster
    from plams_cli.runners.dask._settings import DaskSettings

    settings = DaskSettings.resolve({"cluster": kind, "cores": 4, "processes": 2, "memory": "8GB", "queue": "short",
                                     "walltime": "00:20:00", "interface": "lo", "log_directory": str(tmp_path),
                                     "job_extra_directives": ["--extra-flag"]})
    cluster = make_cluster(settings, kind)  # no batch job yet: scale() submits them
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert directive in script and "--extra-flag" in script
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script
    assert "--resources cores=2" in script  # 4 cores shared by 2 worker processes
    assert "--interface lo" in script


def test_unknown_cluster_settings_are_config_errors(tmp_path: Path) -> None:
    from plams_cli.runners.dask._cluster import make_cluster
    from plams_cli.runners.dask._settings import DaskSettings

    settings = DaskSettings.resolve({"cluster": "slurm", "wall_time": "1:00:00"})
    with pytest.raises(ConfigError, match="the slurm cluster has no setting 'wall_time' .did you mean 'walltime'") \
            as caught:
        make_cluster(settings, "slurm")
    assert "\n" not in str(caught.value)  # one line for the user
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as seen:  # the half-made cluster left no warning behind
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)], [str(w.message) for w in seen]


def test_batch_clusters_fork_one_worker_process_holding_all_cores(tmp_path: Path) -> None:
    from plams_cli.runners.dask._cluster import make_cluster
    from plams_cli.runners.dask._settings import DaskSettings

    settings = DaskSettings.resolve({"cluster": "slurm", "cores": 2, "queue": "short", "interface": "lo",
                                     "log_directory": str(tmp_path), "job_script_prologue": ["module load chem"]})
    cluster = make_cluster(settings, "slurm")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    fork = lines.index("export DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork")
    assert lines.index("module load chem") == fork + 1  # the user's prologue kept, after ours
    worker = next(line for line in lines if "distributed.cli.dask_worker" in line).split()
    assert worker[worker.index("--nthreads") + 1] == "2" and "--nworkers" not in worker
    assert worker[worker.index("--resources") + 1] == "cores=2"
    assert worker[worker.index("--preload") + 1] == "plams_cli.runners.dask._worker"


def test_the_worker_preload_gives_a_forked_worker_the_default_signal_handlers() -> None:
    # the handlers a worker forked by its nanny inherits, then the preload's setup
    code = ("import signal; from plams_cli.runners.dask._worker import dask_setup\n"
            "signal.signal(signal.SIGTERM, lambda *a: None); signal.signal(signal.SIGINT, lambda *a: None)\n"
            "dask_setup(None)\n"
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,"
            " signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env(), timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_runscript_whose_end_never_reached_the_runner_crashes_and_never_runs_twice(
        run_in: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plams_cli.runners.dask import _worker

    real = _worker._announce

    def lose_ends(message: dict[str, object], topic: str = _worker.LAUNCH_TOPIC) -> None:
        if topic != _worker.END_TOPIC:  # as from a worker lost between the runscript's end and its word
            real(message, topic)

    monkeypatch.setattr(_worker, "_announce", lose_ends)
    counter = tmp_path / "counter"
    dr = DaskRunner("local", jobs=1, cores=1)
    job = ShellJob(name="silent", runscript=f"echo ran >> '{counter}'")
    job.run(jobrunner=dr)
    _wait_for(lambda: job.status in (JobStatus.CRASHED, JobStatus.SUCCESSFUL), 30, "the job to end")
    assert job.status == JobStatus.CRASHED
    assert "lost after its runscript ended" in cast(str, job.get_errormsg()), job.get_errormsg()
    time.sleep(0.5)  # a second run would come now
    dr.close()
    assert counter.read_text().splitlines() == ["ran"]


@pytest.mark.parametrize("sleep_s", [0, 1], ids=["quick", "long"])
def test_each_runscript_start_is_reported_once_and_a_long_one_while_it_runs(tmp_path: Path, runscript: Script,
                                                                           sleep_s: float) -> None:
    dr = DaskRunner("local")
    name = runscript(tmp_path, "pid.run", f"echo $$ > pid; sleep {sleep_s}")
    launches: list[Launch] = []
    codes: list[int] = []

    def call() -> None:
        with launch_reports_to(launches.append):
            codes.append(dr.call(name, str(tmp_path), "pid.out", "pid.err"))

    try:
        caller = threading.Thread(target=call)
        caller.start()
        if sleep_s:  # said before it ends (after the worker's QUICK_S)
            _wait_for(lambda: launches, what="the launch of a running runscript")
            assert not codes
        caller.join(30)
    finally:
        dr.close()
    assert codes == [0]
    [launch] = launches
    assert (launch.kind, launch.job_id) == ("local", (tmp_path / "pid").read_text().strip())
