"""``-r`` never loses what is not a job: files the script or the user put in the folder, the old logs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import logged_status

from .conftest import listing, one_error_line

Run = Callable[..., subprocess.CompletedProcess[str]]

# Writes summary.txt into the working folder (different in each run) and logs which run it is.
SCRIPT = """\
import os
log(f"this is run {RUN}", 0)
ShellJob(name="a", runscript="echo a").run()
with open(os.path.join(config.default_jobmanager.workdir, "summary.txt"), "w") as f:
    f.write(f"summary of run {RUN}\\n")
"""


def run_number(plams: Run, tmp_path: Path, number: int, *options: str) -> subprocess.CompletedProcess[str]:
    result = plams(*options, "-f", "w", "-v", f"RUN={number}", str(tmp_path / "s.plms"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def test_restart_refuses_a_folder_plams_did_not_make(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    data = tmp_path / "mydata"
    data.mkdir()
    (data / "notes.txt").write_text("precious\n")
    result = plams("-r", "-f", "mydata", "-v", "RUN=1", "s.plms", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a plams working folder" in one_error_line(result.stderr)
    assert listing(tmp_path) == {"s.plms", "mydata"} and listing(data) == {"notes.txt"}
    assert (data / "notes.txt").read_text() == "precious\n"


def test_restart_keeps_user_files_and_the_log_history(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    workdir = tmp_path / "w"
    run_number(plams, tmp_path, 1)
    (workdir / "notes.txt").write_text("precious\n")  # the user's own files
    (workdir / "plots").mkdir()
    (workdir / "plots" / "p1.svg").write_text("<svg/>\n")

    second = run_number(plams, tmp_path, 2, "-r")
    assert listing(tmp_path) == {"s.plms", "w"}  # w.res is gone
    assert (workdir / "notes.txt").read_text() == "precious\n"
    assert (workdir / "plots" / "p1.svg").read_text() == "<svg/>\n"
    assert (workdir / "summary.txt").read_text() == "summary of run 2\n"
    assert (workdir / "summary.txt.previous").read_text() == "summary of run 1\n"  # taken name: kept beside
    assert (workdir / "s.plms").read_text() == SCRIPT and not (workdir / "s.plms.previous").exists()  # same copy
    assert "this is run 1" in (workdir / "logfile.previous").read_text()
    assert "this is run 2" in (workdir / "logfile").read_text()
    assert "moved 3 other files and folders" in second.stderr

    (workdir / "plots" / "p2.svg").write_text("<svg/>\n")
    run_number(plams, tmp_path, 3, "-r")
    assert listing(workdir / "plots") == {"p1.svg", "p2.svg"}
    assert (workdir / "summary.txt.previous").read_text() == "summary of run 2\n"
    assert (workdir / "summary.txt.previous.002").read_text() == "summary of run 1\n"
    history = (workdir / "logfile.previous").read_text()
    assert history.index("this is run 1") < history.index("this is run 2")  # the whole chain, oldest first
    assert "this is run 3" not in history and "this is run 3" in (workdir / "logfile").read_text()
    assert logged_status(workdir, "a") == "copied"


def test_restart_after_a_killed_restart_keeps_the_files_of_both(tmp_path: Path, plams: Run) -> None:
    """A killed restart leaves ``w.res`` (the first run) and ``w`` (the killed one); both keep their files."""
    (tmp_path / "s.plms").write_text(SCRIPT)
    workdir = tmp_path / "w"
    run_number(plams, tmp_path, 1)
    (workdir / "notes.txt").write_text("precious\n")
    workdir.rename(tmp_path / "w.res")
    workdir.mkdir()  # what the killed restart had made
    (workdir / "logfile").write_text("the killed restart\n")
    (workdir / "late.txt").write_text("written by the killed restart\n")

    run_number(plams, tmp_path, 2, "-r")
    assert listing(tmp_path) == {"s.plms", "w"}
    assert (workdir / "notes.txt").read_text() == "precious\n"
    assert (workdir / "late.txt").read_text() == "written by the killed restart\n"
    history = (workdir / "logfile.previous").read_text()
    assert history.index("this is run 1") < history.index("the killed restart")
    assert not list(workdir.rglob("_interrupted_restart*"))


def test_restart_alone_takes_a_folder_made_before_the_marker(tmp_path: Path, plams: Run) -> None:
    """Working folders of older plams versions have a logfile and job folders but no ``.plams-run``."""
    (tmp_path / "s.plms").write_text(SCRIPT)
    run_number(plams, tmp_path, 1)
    (tmp_path / "w" / ".plams-run").unlink()
    result = plams("-r", "-v", "RUN=2", "s.plms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"most recent working folder: {tmp_path / 'w'}" in result.stderr
    assert logged_status(tmp_path / "w", "a") == "copied"
    assert (tmp_path / "w" / ".plams-run").exists()


def test_working_folder_has_the_marker(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    run_number(plams, tmp_path, 1)
    marker = json.loads((tmp_path / "w" / ".plams-run").read_text())
    assert marker["made_by"] == "plams-cli" and marker["scripts"] == [str(tmp_path / "s.plms")]
