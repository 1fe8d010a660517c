"""``Session``: a run, and a restart, from Python without the ``plams`` command."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from plams_cli import ShellJob, errors, finish
from plams_cli.core.session import Session
from plams_cli.core.workdir import MARKER, lock_for_restart, mark_workdir
from plams_cli.runners.local import JobRunner
from tests.conftest import logged_status


def _status(workdir: Path, name: str) -> str:
    return str(json.loads((workdir / name / f"{name}.job.json").read_text())["status"])


def _run(tmp_path: Path, names: str, **options: Any) -> Session:
    with Session(str(tmp_path), **options) as session:
        for name in names.split():
            ShellJob(name=name, runscript=f"echo {name}").run()
    return session


def test_restart_from_python_reuses_finished_jobs_and_keeps_the_others(tmp_path: Path, fresh_config: Any) -> None:
    """The README's example: the same restart as ``plams -r -f w``, with no command line."""
    first = _run(tmp_path, "a b", folder="w")
    assert first.counts() == {"successful": 2} and not fresh_config.init
    second = _run(tmp_path, "a c", folder="w", restart=True)
    work = tmp_path / "w"
    assert sorted(os.listdir(tmp_path)) == ["w"]  # w.res settled and removed
    assert {name: _status(work, name) for name in "abc"} == dict.fromkeys("abc", "successful")  # a: kept as saved
    assert logged_status(work, "a") == "copied" and logged_status(work, "c") == "successful"
    assert second.counts() == {"copied": 1, "successful": 1}
    assert second.settled is not None and second.settled.removed and len(second.settled.moved) == 1
    assert "Running in" in (work / "logfile.previous").read_text()
    log = (work / "logfile").read_text()
    assert "Restart: loaded 2 jobs from" in log and "Restart: removed" in log
    assert json.loads((work / MARKER).read_text())["folder"] == "w"


def test_restart_without_a_folder_takes_the_most_recent(tmp_path: Path, fresh_config: Any) -> None:
    _run(tmp_path, "a", folder="old")
    _run(tmp_path, "b", folder="new")
    os.utime(tmp_path / "old" / "logfile", (1, 1))
    session = Session(str(tmp_path), restart=True)
    assert session.target == (str(tmp_path / "new"), str(tmp_path / "new.res"))


@pytest.mark.parametrize("make", ["nothing", "user-folder"])
def test_not_restartable_is_a_plams_error_and_changes_nothing(tmp_path: Path, fresh_config: Any, make: str) -> None:
    if make == "user-folder":
        (tmp_path / "w").mkdir()
        (tmp_path / "w" / "notes.txt").write_text("mine\n")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(errors.NotRestartableError) as caught:
        Session(str(tmp_path), "w" if make == "user-folder" else None, restart=True)
    assert isinstance(caught.value, errors.PlamsError) and isinstance(caught.value, ValueError)
    assert caught.value.exit_code == 2
    assert sorted(os.listdir(tmp_path)) == before


def test_a_folder_a_live_run_holds_is_not_taken(tmp_path: Path, fresh_config: Any) -> None:
    _run(tmp_path, "a", folder="w")
    os.remove(tmp_path / "w" / MARKER)
    held = mark_workdir(str(tmp_path / "w"), [])  # as a live run holds it
    assert held is not None
    try:
        session = Session(str(tmp_path), "w", restart=True)
        with pytest.raises(errors.FolderInUseError, match=rf"in use by plams \(pid {os.getpid()}\)"):
            session.start()
        assert errors.FolderInUseError.exit_code == 2
        assert sorted(os.listdir(tmp_path)) == ["w"] and session.manager is None and not fresh_config.init
    finally:
        os.close(held)


def test_the_session_locks_its_folder_until_it_ends(tmp_path: Path, fresh_config: Any) -> None:
    with Session(str(tmp_path), "w") as session:
        assert session.manager is not None
        with pytest.raises(errors.FolderInUseError):
            lock_for_restart(session.manager.workdir, session.manager.workdir + ".res")
    for fd in lock_for_restart(str(tmp_path / "w"), str(tmp_path / "w.res")):
        os.close(fd)


def test_jobs_runs_in_parallel_with_a_runner_of_its_own(tmp_path: Path, fresh_config: Any) -> None:
    default = fresh_config.default_jobrunner
    with Session(str(tmp_path), "w", jobs=3):
        runner = fresh_config.default_jobrunner
        assert isinstance(runner, JobRunner) and runner.parallel and runner.maxjobs == 3
        jobs = [ShellJob(name=f"j{number}", runscript="sleep 0.3").run() for number in range(3)]
    assert fresh_config.default_jobrunner is default
    assert all(job.ok() for job in jobs)


def test_finish_inside_only_waits(tmp_path: Path, fresh_config: Any) -> None:
    with Session(str(tmp_path), "w") as session:
        ShellJob(name="a", runscript="echo a").run()
        finish()
        assert fresh_config.init  # the run goes on
        ShellJob(name="b", runscript="echo b").run()
    assert session.counts() == {"successful": 2} and not fresh_config.init
    assert "Finished: 2 successful" in (tmp_path / "w" / "logfile").read_text()


def test_ctrl_c_inside_cancels_the_jobs_then_ends_the_run(tmp_path: Path, fresh_config: Any) -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Session(str(tmp_path), "w", jobs=2) as session:
        job = ShellJob(name="slow", runscript="echo started > mark; exec sleep 30")
        job.run()
        while not (tmp_path / "w" / "slow" / "mark").exists():
            time.sleep(0.02)
        raise KeyboardInterrupt
    assert time.monotonic() - started < 20
    assert job.status == "crashed" and session.counts() == {"crashed": 1} and not fresh_config.init
    log = (tmp_path / "w" / "logfile").read_text()
    assert "Interrupted: stopping running jobs and cancelling queued ones" in log
    assert "stopped runscript" in log and "(pid " in log


def test_on_signal_names_the_signal(tmp_path: Path) -> None:
    session = Session(str(tmp_path), "w")
    assert session.reason == ""
    with pytest.raises(KeyboardInterrupt) as caught:
        session.on_signal(signal.SIGTERM, None)
    assert caught.value.args == ("SIGTERM",) and session.signal == signal.SIGTERM and session.reason == " (SIGTERM)"
    with pytest.raises(KeyboardInterrupt) as caught:
        session.on_signal(signal.SIGINT, None)
    assert caught.value.args == () and session.reason == ""


def test_a_session_does_not_start_inside_another_run(tmp_path: Path, run_in: Any) -> None:
    session = Session(str(tmp_path), "other")
    with pytest.raises(errors.SessionError, match="a run is going on"):
        session.start()
    assert not (tmp_path / "other").exists()


def test_scripts_are_kept_in_the_folder_and_named_in_the_marker(tmp_path: Path, fresh_config: Any) -> None:
    script = tmp_path / "calc.plms"
    script.write_text(textwrap.dedent("print('hi')\n"))
    with Session(str(tmp_path), "w", scripts=[str(script), str(script)]):
        pass
    assert sorted(p.name for p in (tmp_path / "w").glob("calc*")) == ["calc.002.plms", "calc.plms"]
    assert json.loads((tmp_path / "w" / MARKER).read_text())["scripts"] == [str(script)] * 2


def test_the_readme_example_restarts_a_run(tmp_path: Path) -> None:
    """The README's code block, run as it is in a folder holding a run ``calc``: its job is reused."""
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT, python_env

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Restarting from Python.**"):]
    code = re.search(r"```python\n(.*?)\n```", section, flags=re.S)
    assert code is not None
    first = "from plams_cli import ShellJob, config, init, finish\ninit(folder='calc')\n" \
            "ShellJob(name='a', runscript='echo a').run()\nfinish()\n"
    for body in (first, code.group(1)):
        result = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=python_env(), capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "{'copied': 1}"
    assert sorted(os.listdir(tmp_path)) == ["calc"]
