"""Restarts after SIGKILL: finished jobs are reused (proven by a counter file), never rerun."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import logged_status

from .conftest import listing, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]
Start = Callable[..., subprocess.Popen[str]]

NJOBS = 50
# Each runscript appends its name to a counter file outside the working folder first: a
# line per execution, so a job that ran twice shows twice.
FIFTY = f"""\
for i in range({NJOBS}):
    ShellJob(name=f"j{{i:02d}}", runscript=f"echo j{{i:02d}} >> '{{COUNTER}}'\\nsleep 0.05").run()
"""

SCRIPT_CLASS = f"""\
class CountingJob(SingleJob):
    def __init__(self, number, **kwargs):
        super().__init__(name=f"j{{number:02d}}", **kwargs)
        self.number = number

    def get_runscript(self):
        return f"echo j{{self.number:02d}} >> '{{COUNTER}}'\\nsleep 0.05"

    def check(self):
        return self.number >= 0

for i in range({NJOBS}):
    CountingJob(i).run()
"""


def runs(counter: Path) -> Counter[str]:
    return Counter(counter.read_text().split()) if counter.exists() else Counter()


def finished(*folders: Path) -> set[str]:
    """Names of the jobs saved (finished) anywhere under ``folders``."""
    return {dill.stem for folder in folders if folder.exists() for dill in folder.rglob("*.dill")}


def kill_after(process: subprocess.Popen[str], counter: Path, lines: int) -> None:
    wait_for(lambda: sum(runs(counter).values()) >= lines or process.poll() is not None,
             what=f"{lines} runscripts to start")
    assert process.poll() is None, "the run ended before it could be killed; make the jobs slower"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def check_complete(workdir: Path, reused: set[str], before: Counter[str], counter: Path) -> None:
    after = runs(counter)
    names = {f"j{i:02d}" for i in range(NJOBS)}
    assert set(after) == names
    for name in reused:
        assert after[name] == before[name], f"{name} finished before the restart but ran again"
    for name in names:
        assert json.loads((workdir / name / f"{name}.job.json").read_text())["status"] == "successful", name
        assert logged_status(workdir, name) == ("copied" if name in reused else "successful"), name
    assert finished(workdir) == names
    assert listing(workdir.parent) == {"counter", "s.plms", workdir.name}  # .res and trash gone


@pytest.mark.parametrize("body", [FIFTY, SCRIPT_CLASS], ids=["shell-jobs", "script-defined-class"])
def test_kill_then_restart_reuses_every_finished_job(tmp_path: Path, start_plams: Start, plams: Run,
                                                     body: str) -> None:
    counter = tmp_path / "counter"
    script = tmp_path / "s.plms"
    script.write_text(body)
    args = ("-f", "run", "-v", f"COUNTER={counter}", str(script))
    kill_after(start_plams(*args, cwd=tmp_path), counter, 15)
    workdir = tmp_path / "run"
    done = finished(workdir)
    assert 5 <= len(done) < NJOBS
    before = runs(counter)

    result = plams("-r", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Restart: loaded {len(done)} job" in result.stderr
    check_complete(workdir, done, before, counter)


@pytest.mark.parametrize("body", [FIFTY, SCRIPT_CLASS], ids=["shell-jobs", "script-defined-class"])
def test_second_kill_during_restart_loses_nothing(tmp_path: Path, start_plams: Start, plams: Run,
                                                  body: str) -> None:
    counter = tmp_path / "counter"
    script = tmp_path / "s.plms"
    script.write_text(body)
    args = ("-f", "run", "-v", f"COUNTER={counter}", str(script))
    kill_after(start_plams(*args, cwd=tmp_path), counter, 12)
    first_done = finished(tmp_path / "run")

    kill_after(start_plams("-r", *args, cwd=tmp_path), counter, sum(runs(counter).values()) + 12)
    workdir, res = tmp_path / "run", tmp_path / "run.res"
    assert res.is_dir() and workdir.is_dir()  # killed mid-restart: both folders hold finished jobs
    done = finished(workdir, res)
    assert first_done < done < {f"j{i:02d}" for i in range(NJOBS)}
    before = runs(counter)

    result = plams("-r", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_complete(workdir, done, before, counter)


def test_restart_after_kill_between_move_and_start(tmp_path: Path, plams: Run) -> None:
    """Killed right after NAME became NAME.res: only NAME.res exists; -r still finds it."""
    counter = tmp_path / "counter"
    script = tmp_path / "s.plms"
    script.write_text(FIFTY.replace(str(NJOBS), "3"))
    args = ("-f", "run", "-v", f"COUNTER={counter}", str(script))
    assert plams(*args, cwd=tmp_path).returncode == 0
    (tmp_path / "run").rename(tmp_path / "run.res")
    result = plams("-r", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert runs(counter) == Counter({"j00": 1, "j01": 1, "j02": 1})
    assert listing(tmp_path) == {"counter", "s.plms", "run"}
