"""Smoke test of ``bench/run.py``: it completes on plams-cli and the floor, prints the table, writes JSON.

No PLAMS venv, no network: ``--contenders plams-cli,floor``. Times are never asserted (speed
targets live in the figures ``bench/run.py`` prints); only that every workload was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"
TINY = ["--quick", "-n", "8", "--jobs", "4", "--repeats", "2", "--heavy-repeats", "1", "--cache-jobs", "500",
        "--workspace-jobs", "12", "--grid-runs", "1"]
KEYS = {"serial", "parallel", "reuse", "startup_init", "startup_version", "first_run", "restart", "load",
        "memory_restart", "memory_per_job", "load_all", "jobs_list", "workspace_init", "workspace_find",
        "grid_latency"}


def test_quick_run_on_plams_cli_and_floor(tmp_path: Path) -> None:
    out, md = tmp_path / "results.json", tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(RUN), *TINY, "--contenders", "plams-cli,floor", "--json", str(out), "--results", str(md),
         "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = "| workload | unit | plams-cli | floor | plams-cli / floor |"
    assert proc.stdout.startswith(header + "\n"), proc.stdout[:500]
    data = json.loads(out.read_text())
    assert data["contenders"] == ["plams-cli", "floor"]
    assert {w["key"] for w in data["workloads"]} == KEYS
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and line != header]
    assert len(table_rows) == len(KEYS)
    for workload in data["workloads"]:
        assert set(workload["results"]) == {"plams-cli", "floor"}, workload["key"]
        for name, result in workload["results"].items():
            if workload["key"] == "grid_latency" and result.get("text") == "no scheduler":
                continue
            assert result["runs"] and result["min"] <= result["median"] <= result["max"], (workload["key"], name)
            assert "note" not in result or not result["note"].startswith(("ran ", "reran ", "loaded ")), result
        if workload["results"]["floor"].get("median"):
            assert "to_floor" in workload["ratios"]
    assert header in md.read_text()
    assert f"{data['machine']['cores']} cores" in md.read_text()


@pytest.mark.parametrize("contenders", ["floor", "plams-cli,nope"], ids=["without-plams-cli", "unknown"])
def test_bad_contenders_are_a_usage_error(tmp_path: Path, contenders: str) -> None:
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--contenders", contenders, "--results", "-"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--contenders" in proc.stderr
    assert proc.stdout == ""
