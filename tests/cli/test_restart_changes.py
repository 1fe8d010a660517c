"""``-r`` after the script changed: a job of the same name replaces the old one; NAME.res never piles up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import logged_status

from .conftest import listing

Run = Callable[..., subprocess.CompletedProcess[str]]

# Each runscript appends its name to COUNTER: a line per execution. Only c depends on -v V.
SHELL_JOBS = """\
for name in ("a", "b", "c"):
    text = V if name == "c" else name
    ShellJob(name=name, runscript=f"echo {name} >> '{COUNTER}'; echo {text}").run()
"""
MULTI_JOB = """\
children = [ShellJob(name=name, runscript=f"echo {name} >> '{COUNTER}'; echo {V if name == 'c' else name}")
            for name in ("a", "b", "c")]
MultiJob(name="m", children=children).run()
ShellJob(name="d", runscript=f"echo d >> '{COUNTER}'").run()
"""


def runs(counter: Path) -> Counter[str]:
    return Counter(counter.read_text().split()) if counter.exists() else Counter()


def status(folder: Path) -> str:
    return json.loads((folder / f"{folder.name}.job.json").read_text())["status"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("body", "c_folder", "copied"),
                         [(SHELL_JOBS, "c", ["a", "b"]), (MULTI_JOB, "m/c", ["m/a", "m/b", "d"])],
                         ids=["shell-jobs", "multijob-child"])
def test_restart_after_a_changed_input_replaces_the_job(tmp_path: Path, plams: Run, body: str, c_folder: str,
                                                        copied: list[str]) -> None:
    counter, script = tmp_path / "counter", tmp_path / "s.plms"
    script.write_text(body)
    workdir = tmp_path / "w"
    first = plams("-f", "w", "-v", f"COUNTER={counter}", "-v", "V=1", str(script), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for number, value in enumerate(("2", "3"), start=2):
        result = plams("-r", "-f", "w", "-v", f"COUNTER={counter}", "-v", f"V={value}", str(script), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert listing(tmp_path) == {"counter", "s.plms", "w"}, result.stderr  # w.res is gone
        assert "kept" not in result.stderr and "dropped 1 finished job" in result.stderr
        assert (workdir / c_folder / "c.out").read_text() == f"{value}\n"  # c ran as the script now says
        assert status(workdir / c_folder) == "successful"
        assert all(logged_status(workdir, name) == "copied" for name in copied)
        assert runs(counter)["c"] == number and all(runs(counter)[name.split("/")[-1]] == 1 for name in copied)
        assert not list(workdir.rglob("_interrupted_restart*"))
    history = (workdir / "logfile.previous").read_text()
    assert history.count("Running in") == 2  # the two earlier runs, once each


# Runs plams with remove_tree stubbed to die: a restart killed right after settle appended the old logs.
KILLED_BEFORE_DELETE = """\
import os, sys
import plams_cli.core.restart as restart

def die(path):
    os._exit(137)

restart.remove_tree = die
from plams_cli.cli.main import main
main(sys.argv[1:])
"""


def test_restart_killed_after_appending_the_logs_appends_them_once(tmp_path: Path, plams: Run,
                                                                     env: dict[str, str]) -> None:
    script = tmp_path / "s.plms"
    script.write_text("log(f'this is run {RUN}', 0)\nShellJob(name='a', runscript='echo a').run()\n")
    assert plams("-f", "w", "-v", "RUN=1", str(script), cwd=tmp_path).returncode == 0
    assert plams("-r", "-f", "w", "-v", "RUN=2", str(script), cwd=tmp_path).returncode == 0
    hook = tmp_path / "hook.py"
    hook.write_text(KILLED_BEFORE_DELETE)
    killed = subprocess.run([sys.executable, str(hook), "-r", "-f", "w", "-v", "RUN=3", str(script)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert killed.returncode == 137
    assert (tmp_path / "w.res").is_dir()
    again = plams("-r", "-f", "w", "-v", "RUN=4", str(script), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert listing(tmp_path) == {"hook.py", "s.plms", "w"}
    history = (tmp_path / "w" / "logfile.previous").read_text()
    assert [history.count(f"this is run {number}") for number in (1, 2, 3)] == [1, 1, 1], history
    assert history.index("this is run 1") < history.index("this is run 2") < history.index("this is run 3")
