"""Bad input: one ``Error:`` line, exit status 2, and no working folder left behind."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import PLAMS, listing

Run = Callable[..., subprocess.CompletedProcess[str]]

# (arguments, words the Error line must hold); {tmp} is the test's folder, s.plms a good script
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
    (["-j", "0", "s.plms"], ["'-j' / '--jobs'", "0"]),
    ([], ["plams --help"]),
]
IDS = ["missing-script", "script-is-folder", "path-missing", "path-is-file", "folder-parent-missing",
       "folder-empty", "var-no-equals", "var-bad-name", "var-keyword", "load-missing", "load-is-file",
       "restart-nothing", "restart-folder-missing", "jobs-zero", "no-arguments"]


@pytest.mark.parametrize(("args", "words"), CASES, ids=IDS)
def test_bad_input_exits_2_with_one_error_line_and_no_folder(tmp_path: Path, plams: Run, args: list[str],
                                                             words: list[str]) -> None:
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    (tmp_path / "adir").mkdir()
    before = listing(tmp_path)
    result = plams(*(a.replace("{tmp}", str(tmp_path)) for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout in ("", result.stdout)
    if args:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, result.stderr
        for word in words:
            assert word in errors[0], errors[0]
    assert listing(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_script(tmp_path: Path, plams: Run) -> None:
    script = tmp_path / "s.plms"
    script.write_text("print(1)\n")
    script.chmod(0)
    result = plams(str(script), cwd=tmp_path)
    assert result.returncode == 2 and "is not readable" in result.stderr
    assert listing(tmp_path) == {"s.plms"}


def test_mistyped_command_suggests_the_close_name(tmp_path: Path, plams: Run) -> None:
    result = plams("gird", "detect", cwd=tmp_path)
    assert result.returncode == 2
    assert "Error: No such command or script 'gird'. Did you mean 'grid'?" in result.stderr
    assert listing(tmp_path) == set()


def test_existing_file_named_like_a_typo_is_run(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "gird").write_text("print('ran gird')\n")
    result = plams("-q", "gird", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "ran gird\n")


@pytest.mark.parametrize("content", ["a: [unclosed\n", "- 1\n", "log: {stdout: [\n"], ids=["bad-yaml", "not-a-mapping", "unclosed"])
def test_broken_defaults_file_is_one_error_line(tmp_path: Path, env: dict[str, str], content: str) -> None:
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(content)
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    before = listing(tmp_path)
    result = subprocess.run([*PLAMS, "s.plms"], cwd=tmp_path, env=env | {"PLAMS_DEFAULTS": str(defaults)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: defaults file "), result.stderr
    assert str(defaults) in result.stderr
    assert listing(tmp_path) == before
