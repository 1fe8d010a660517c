"""The man page renders and covers the options; shell completion answers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

MAN = Path(__file__).resolve().parents[2] / "man" / "plams.1"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings() -> None:
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(MAN)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    text = re.sub(".\x08", "", result.stdout)  # grotty's overstrike bold and underline
    for heading in ("SYNOPSIS", "OPTIONS", "RESTART", "COMMANDS", "FILES", "EXIT STATUS"):
        assert heading in text


@pytest.mark.parametrize("option", ["--path", "--folder", "--var", "--load", "--restart", "--jobs", "--quiet",
                                    "--version", "_PLAMS_COMPLETE"])
def test_man_page_documents(option: str) -> None:
    assert option.replace("-", "\\-") in MAN.read_text()


def test_bash_completion_lists_commands(env: dict[str, str], tmp_path: Path) -> None:
    from .conftest import PLAMS

    env = {**env, "_PLAMS_COMPLETE": "bash_complete", "COMP_WORDS": "plams gr", "COMP_CWORD": "1"}
    result = subprocess.run(PLAMS, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "plain,grid" in result.stdout.split()


@pytest.mark.parametrize(("words", "cword", "expected"),
                         [("plams q", "1", ["file,q"]), ("plams gr", "1", ["file,gr", "plain,grid"]),
                          ("plams -q q", "2", ["file,q"]), ("plams -", "1", None)],
                         ids=["no-command-matches", "command-matches", "after-an-option", "option"])
def test_bash_completion_offers_files_for_the_first_word(env: dict[str, str], tmp_path: Path, words: str,
                                                         cword: str, expected: list[str] | None) -> None:
    """``plams SCRIPT`` runs a file, so the first word completes to file names as well as commands."""
    from .conftest import PLAMS

    env = {**env, "_PLAMS_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = subprocess.run(PLAMS, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if expected is None:
        assert not any(item.startswith("file,") for item in result.stdout.split())
        assert "plain,--path" in result.stdout.split()
    else:
        assert result.stdout.split() == expected
