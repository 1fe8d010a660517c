"""Bad input: one ``Error:`` line, exit status 2, and no working folder left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import PLAMS, listing, one_error_line

Run = Callable[..., subprocess.CompletedProcess[str]]

# (arguments, words the Error line must hold); {tmp} is the test's folder, s.plms a good script,
# adir an empty folder, mydata a folder of the user's, with notes.txt
CASES = [
    (["missing.plms"], ["'SCRIPT...'", "missing.plms", "does not exist"]),
    (["{tmp}/adir"], ["'SCRIPT...'", "is a directory"]),
    (["-p", "{tmp}/nowhere", "s.plms"], ["'-p' / '--path'", "nowhere", "does not exist"]),
    (["-p", "{tmp}/s.plms", "s.plms"], ["'-p' / '--path'", "is a file"]),
    (["-f", "no/such/parent/w", "s.plms"], ["'-f' / '--folder'", "parent folder", "does not exist"]),
    (["-f", "", "s.plms"], ["'-f' / '--folder'", "does not name a folder"]),
    (["-v", "NOEQUALS", "s.plms"], ["'-v' / '--var'", "no '='"]),
    (["-v", "1x=2", "s.plms"], ["'-v' / '--var'", "'1x'", "not a valid Python variable name"]),
    (["-v", "class=2", "s.plms"], ["'-v' / '--var'", "'class'"]),
    (["-l", "{tmp}/gone", "s.plms"], ["'-l' / '--load'", "gone", "does not exist"]),
    (["-l", "{tmp}/s.plms", "s.plms"], ["'-l' / '--load'", "is a file"]),
    (["-r", "s.plms"], ["'-r' / '--restart'", "nothing to restart in", "-f"]),
    (["-r", "-f", "never_ran", "s.plms"], ["'-r' / '--restart'", "never_ran", "does not exist"]),
    (["-r", "-f", "s.plms", "s.plms"], ["'-r' / '--restart'", "s.plms", "not a folder"]),
    (["-r", "-f", "mydata", "s.plms"], ["'-r' / '--restart'", "mydata", "not a plams working folder"]),
    (["-r", "-f", "adir", "s.plms"], ["'-r' / '--restart'", "adir", "not a plams working folder"]),
    (["-j", "0", "s.plms"], ["'-j' / '--jobs'", "0"]),
    (["--no-such-option", "s.plms"], ["No such option", "--no-such-option"]),
    (["-q"], ["Missing argument", "SCRIPT"]),
    (["run"], ["Missing argument", "SCRIPT"]),
]
IDS = ["missing-script", "script-is-folder", "path-missing", "path-is-file", "folder-parent-missing",
       "folder-empty", "var-no-equals", "var-bad-name", "var-keyword", "load-missing", "load-is-file",
       "restart-nothing", "restart-folder-missing", "restart-file", "restart-user-folder", "restart-empty-folder",
       "jobs-zero", "unknown-option", "options-without-script", "run-without-script"]


def _bad_input_folder(tmp_path: Path) -> None:
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "notes.txt").write_text("precious\n")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (p.read_text() if p.is_file() else "/") for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("args", "words"), CASES, ids=IDS)
def test_bad_input_exits_2_with_one_error_line_and_no_folder(tmp_path: Path, plams: Run, args: list[str],
                                                             words: list[str]) -> None:
    _bad_input_folder(tmp_path)
    before = _tree(tmp_path)
    result = plams(*(a.replace("{tmp}", str(tmp_path)) for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    error = one_error_line(result.stderr)
    for word in words:
        assert word in error, error
    assert _tree(tmp_path) == before  # nothing made, moved or deleted


def test_no_arguments_shows_help_and_exits_2(tmp_path: Path, plams: Run) -> None:
    result = plams(cwd=tmp_path)
    assert result.returncode == 2 and "Usage: plams" in result.stdout + result.stderr
    assert listing(tmp_path) == set()


def test_restart_alone_does_not_pick_a_user_folder_with_a_logfile(tmp_path: Path, plams: Run) -> None:
    """A folder holding a file called ``logfile`` is not a plams run; ``-r`` without ``-f`` leaves it alone."""
    _bad_input_folder(tmp_path)
    (tmp_path / "mydata" / "logfile").write_text("my own log\n")
    before = _tree(tmp_path)
    result = plams("-r", "s.plms", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "nothing to restart in" in one_error_line(result.stderr)
    assert _tree(tmp_path) == before


def test_unreadable_script(tmp_path: Path, plams_unprivileged: Run) -> None:
    script = tmp_path / "s.plms"
    script.write_text("print(1)\n")
    script.chmod(0)
    result = plams_unprivileged(str(script), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is not readable" in one_error_line(result.stderr)
    assert listing(tmp_path) == {"s.plms"}


@pytest.mark.parametrize(("args", "hint"), [(["-p", "ro"], "'-p' / '--path'"), (["-f", "ro/w"], "'-f' / '--folder'"),
                                            ([], "-p")], ids=["path", "folder-with-parent", "current-folder"])
def test_folder_that_cannot_be_written_to(tmp_path: Path, plams_unprivileged: Run, args: list[str],
                                          hint: str) -> None:
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        result = plams_unprivileged(*args, str(tmp_path / "s.plms"), cwd=readonly if not args else tmp_path)
        assert result.returncode == 2, result.stderr
        error = one_error_line(result.stderr)
        assert hint in error and str(readonly) in error and "not writable" in error
        assert listing(readonly) == set() and listing(tmp_path) == {"s.plms", "ro"}
    finally:
        readonly.chmod(0o755)


def test_mistyped_command_suggests_the_close_name(tmp_path: Path, plams: Run) -> None:
    result = plams("gird", "detect", cwd=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == "Error: No such command or script 'gird'. Did you mean 'grid'?"
    assert listing(tmp_path) == set()


def test_existing_file_named_like_a_typo_is_run(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "gird").write_text("print('ran gird')\n")
    result = plams("-q", "gird", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "ran gird\n")


@pytest.mark.parametrize("content", ["a: [unclosed\n", "- 1\n", "log: {stdout: [\n"],
                         ids=["bad-yaml", "not-a-mapping", "unclosed"])
def test_broken_defaults_file_is_one_error_line(tmp_path: Path, env: dict[str, str], content: str) -> None:
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(content)
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    before = listing(tmp_path)
    result = subprocess.run([*PLAMS, "s.plms"], cwd=tmp_path, env=env | {"PLAMS_DEFAULTS": str(defaults)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert one_error_line(result.stderr).startswith("Error: defaults file ")
    assert str(defaults) in result.stderr
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [(["grid", "show"], ["Missing argument", "NAME"]), (["grid", "nosuch"], ["No such command", "nosuch"]),
     (["grid", "detect", "--bad"], ["No such option", "--bad"]),
     (["workspace", "show"], ["Missing argument", "ID"]), (["workspace", "find", "{bad"], ["not valid JSON"])],
    ids=["grid-show-no-name", "grid-unknown", "grid-bad-option", "workspace-show-no-id", "workspace-bad-json"],
)
def test_subcommand_usage_errors_are_one_line(tmp_path: Path, plams: Run, args: list[str], words: list[str]) -> None:
    result = plams(*args, cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert all(word in line for word in words), line
