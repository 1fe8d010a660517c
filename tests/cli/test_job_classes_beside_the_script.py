"""Job classes in a module beside the script: -r and -l load the saved jobs and reuse them (as PLAMS does)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import PLAMS
from tests.conftest import python_env

MODULE = '''
from plams_cli import SingleJob

class CountedJob(SingleJob):
    def get_input(self):
        return self.settings.input.value

    def get_runscript(self):
        return "echo run >> ../../runs.txt; cat " + self.name + ".in"
'''

SCRIPT = '''
from countedjobs import CountedJob

for i in range(3):
    job = CountedJob(name="c")
    job.settings.input.value = str(i)
    job.run()
'''


@pytest.mark.parametrize("how", ["restart", "load"])
def test_saved_jobs_of_a_class_beside_the_script_are_reused(tmp_path: Path, how: str) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "countedjobs.py").write_text(MODULE)
    (scripts / "s.plms").write_text(SCRIPT)
    env = python_env()  # the scripts' folder is NOT on PYTHONPATH: plams must put it on sys.path

    def plams(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*PLAMS, "-q", *args, str(scripts / "s.plms")], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    plams("-f", "w")
    assert (tmp_path / "runs.txt").read_text().count("run") == 3
    second = plams("-r", "-f", "w") if how == "restart" else plams("-l", "w", "-f", "w2")
    assert "unreadable" not in second.stderr and "No module named" not in second.stderr, second.stderr
    assert (tmp_path / "runs.txt").read_text().count("run") == 3  # nothing ran again
