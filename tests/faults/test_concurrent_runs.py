"""Eight ``plams`` runs started at the same moment in one folder, all asking for the same working folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import report
from .conftest import PLAMS, tracebacks

FAULT = "8 runs started at once in one folder"
RUNS = 8
SCRIPT = """
import os
for i in range(5):
    ShellJob(name=f"j{i}", runscript=f"echo {i} $PPID").run()
"""


def test_eight_runs_at_once(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    processes = [subprocess.Popen([*PLAMS, "-j", "2", "-f", "w", "s.plms"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                 for _ in range(RUNS)]
    results = [(process.wait(timeout=300), *process.communicate()) for process in processes]
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    running_in = sorted(line.split("Running in ")[1].strip() for _, _, err in results for line in err.splitlines()
                        if "Running in " in line)
    statuses = [json.loads(summary.read_text())["status"]
                for folder in folders for summary in (tmp_path / folder).glob("j*/*.job.json")]
    good = sum(status in ("successful", "copied") for status in statuses)
    seen = tracebacks(*(err for _, _, err in results))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in (*folders, "s.plms")]
    report.record(FAULT, 1, jobs=5 * RUNS, lost=5 * RUNS - good, tracebacks=seen, leftovers=len(leftovers),
                  note="8 runs, each -f w -j 2, started together: all exit 0 in 8 distinct folders "
                       "(w, w.002, …), every job of each successful")
    assert [code for code, _, _ in results] == [0] * RUNS, [err for _, _, err in results]
    assert len(folders) == RUNS and len(set(running_in)) == RUNS
    assert folders[0] == "w" and all(name.startswith("w.") for name in folders[1:])
    assert (good, seen, leftovers) == (5 * RUNS, 0, [])
