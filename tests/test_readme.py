"""The README's two set-up commands, and .ci/run running the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return blocks[:2]


def test_readme_starts_with_install_and_test_commands() -> None:
    install, test = readme_commands()
    assert "pip install ." in install and "plams examples/" in install
    example = re.search(r"plams (examples/\S+\.plms)", install)
    assert example and (ROOT / example.group(1)).is_file()
    assert "pip install '.[test]'" in test and "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()
    assert ci.index("slurm_localhost.sh start") < ci.index(test)
