"""The defects of issue 11 that are no bad-input table row: each test fails on the code before the fix."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli.cli.main import cli

from .conftest import Call, tracebacks

GOOD = "ShellJob(name='x', runscript='echo x').run()\n"


def test_non_utf8_folder_name_runs_without_a_traceback(tmp_path: Path, plams_env: Call) -> None:
    (tmp_path / "s.plms").write_text(GOOD)
    result = plams_env("-f", b"w\xff", "s.plms", cwd=tmp_path)
    assert result.returncode == 0 and tracebacks(result.stderr) == 0, result.stderr
    folder = tmp_path / os.fsdecode(b"w\xff")
    assert (folder / "x" / "x.dill").is_file()
    assert b"Running in " + os.fsencode(folder) in (folder / "logfile").read_bytes()


@pytest.mark.parametrize("source", [b"# caf\xe9\nprint(1)\n", b"x = '\xe9'\n", b"# -*- coding: nosuch -*-\nx = 1\n"],
                         ids=["latin1-comment", "latin1-string", "unknown-coding"])
def test_script_python_would_not_decode_is_refused_before_anything_is_made(tmp_path: Path, plams_env: Call,
                                                                           source: bytes) -> None:
    (tmp_path / "s.plms").write_bytes(source)
    result = plams_env("s.plms", cwd=tmp_path)
    assert result.returncode == 1 and "SyntaxError" in result.stderr and result.stdout == ""
    assert tracebacks(result.stderr) == 0
    assert os.listdir(tmp_path) == ["s.plms"]


def test_latin1_script_with_its_coding_line_runs(tmp_path: Path, plams_env: Call) -> None:
    (tmp_path / "s.plms").write_bytes(b"# -*- coding: latin-1 -*-\nprint('caf\xe9')\n")
    result = plams_env("-q", "s.plms", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "caf\u00e9\n"), result.stderr


def test_jobs_named_like_files_of_the_working_folder_are_renamed(tmp_path: Path, plams_env: Call) -> None:
    (tmp_path / "s.plms").write_text(
        "for name in ('logfile', 's.plms', '.plams-run'):\n"
        "    job = ShellJob(name=name, runscript=f'echo {name}')\n"
        "    job.run()\n"
        "    print(job.name, job.status)\n")
    result = plams_env("-f", "w", "s.plms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["logfile.002 successful", "s.plms.002 successful",
                                             ".plams-run.002 successful"]
    assert (tmp_path / "w" / "logfile").is_file() and (tmp_path / "w" / "s.plms").read_text() == (
        tmp_path / "s.plms").read_text()


@pytest.mark.parametrize("name", [".", ".."], ids=["dot", "dotdot"])
def test_job_named_dot_is_refused_for_that_reason(name: str) -> None:
    from plams_cli import ShellJob
    from plams_cli.errors import JobError

    with pytest.raises(JobError, match=r"nor be '\.' or '\.\.'"):
        ShellJob(name=name, runscript="true")


EIGHT = """
import os, time
jobs = [ShellJob(name=f"j{i}", runscript="true" if i == 0 else f"touch {TMP}/started.{i}; sleep 30")
        for i in range(8)]
for job in jobs:
    job.run()
"""


def test_ctrl_c_counts_jobs_that_never_started_and_makes_no_folder_for_them(tmp_path: Path, start_plams: object,
                                                                           plams_env: Call) -> None:
    (tmp_path / "s.plms").write_text(EIGHT)
    process = start_plams("-j", "2", "-f", "w", "-v", f"TMP={tmp_path}", "s.plms", cwd=tmp_path)  # type: ignore[operator]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and tracebacks(stderr) == 0, stderr
    assert "Finished: 1 successful, 2 crashed, 5 not started" in stderr
    made = sorted(p.name for p in (tmp_path / "w").iterdir() if p.is_dir())
    assert len(made) == 3 and "j0" in made  # the job that ran and the two that were stopped
    (tmp_path / "s.plms").write_text(EIGHT.replace("sleep 30", "true"))
    result = plams_env("-r", "-f", "w", "-v", f"TMP={tmp_path}", "s.plms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Finished: 1 copied, 7 successful" in result.stderr or "Finished: 7 successful, 1 copied" in result.stderr


def test_bare_groups_print_their_help_as_bare_plams_does(tmp_path: Path, plams_env: Call) -> None:
    for group in ("grid", "workspace"):
        result = plams_env(group, cwd=tmp_path)
        shown = result.stdout + result.stderr
        assert result.returncode == 2 and shown.startswith(f"Usage: plams {group} [OPTIONS] COMMAND"), shown
        assert "Error" not in shown


def test_a_file_named_like_a_command_runs_as_dot_slash(tmp_path: Path, plams_env: Call) -> None:
    (tmp_path / "grid").write_text("print('the script grid')\n")
    result = plams_env("-q", "./grid", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "the script grid\n"), result.stderr


def test_folder_taken_by_a_file_is_called_a_file(tmp_path: Path, plams_env: Call) -> None:
    (tmp_path / "s.plms").write_text(GOOD)
    (tmp_path / "afile.txt").write_text("mine\n")
    result = plams_env("-f", "afile.txt", "s.plms", cwd=tmp_path)
    assert result.returncode == 0
    assert f"A file named {tmp_path / 'afile.txt'} exists: working in {tmp_path / 'afile.txt.002'}" in result.stderr


def test_workspace_wording_and_options(tmp_path: Path) -> None:
    from plams_cli.workspace import Workspace

    Workspace(tmp_path, create=True).open_job({"a": 1}).init()
    runner = CliRunner()
    checked = runner.invoke(cli, ["workspace", "check", "-w", str(tmp_path)])
    assert checked.exit_code == 0 and checked.stderr == "1 job checked\n"
    found = runner.invoke(cli, ["workspace", "find", "--workspace", str(tmp_path), "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)[0]["statepoint"] == {"a": 1}
    helped = runner.invoke(cli, ["workspace", "--help"])
    # the short help is whole (it was cut at "e.g."), however wide the command column is
    assert re.search(r"\n  find +Print the ids of the jobs matching a filter\.\n", helped.stdout), helped.stdout


def test_fifo_script_is_refused_at_once(tmp_path: Path, plams_env: Call) -> None:
    os.mkfifo(tmp_path / "f.plms")
    started = time.monotonic()
    result = plams_env("f.plms", cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and time.monotonic() - started < 20
    assert "is a FIFO" in result.stderr


def test_a_fifo_swapped_in_after_the_check_does_not_hang(tmp_path: Path, child_env: dict[str, str]) -> None:
    os.mkfifo(tmp_path / "f.plms")
    code = ("import click, sys\nfrom plams_cli.cli._script import read_script\n"
            "try:\n    read_script(sys.argv[1])\nexcept click.BadParameter as exc:\n    print(exc.message)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.plms")], capture_output=True, text=True,
                          timeout=20, env=child_env)  # the old code blocked in open() for good
    assert "is a FIFO, not a regular file" in done.stdout, done.stderr


def test_grid_missing_message_is_plural_safe() -> None:
    from tests.grid import conftest

    source = Path(conftest.__file__).read_text()
    assert "is not available" not in source and "not available:" in source


def test_unknown_word_suggests_nothing_when_nothing_is_close(tmp_path: Path, plams_env: Call) -> None:
    result = plams_env("frobnicate", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: No such command or script 'frobnicate': no file of that name")



def test_a_logfile_on_a_full_disk_does_not_crash_who_logs(capsys: pytest.CaptureFixture[str]) -> None:
    from plams_cli.core import logger

    logger.open_logfile("/dev/full")  # every write fails with ENOSPC
    try:
        logger.log("one", 0)
        logger.log("two", 0)
    finally:
        logger.close_logfile()
    out = capsys.readouterr().out
    assert out.count("WARNING: cannot write to the logfile (No space left on device)") == 1
    assert "one" in out and "two" in out
