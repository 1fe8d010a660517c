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
    targets = md.read_text().split("## Targets of issue 14\n", 1)[1]
    assert targets.count("\n| ") == 9 and "not measured" not in targets  # every target, each measured
    # the reports written again from the JSON alone are the same, byte for byte
    again = tmp_path / "AGAIN.md"
    proc = subprocess.run([sys.executable, str(RUN), "--render", str(out), "--results", str(again)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert again.read_text() == md.read_text()
    assert proc.stdout.startswith(header + "\n")


def test_render_of_a_file_without_the_rows_decimals_is_one_error_line(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"contenders": ["plams-cli"], "workloads": [{"key": "serial", "results": {}}]}))
    proc = subprocess.run([sys.executable, str(RUN), "--render", str(old), "--results", "-"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "older bench/run.py" in proc.stderr


def test_each_target_is_met_missed_or_not_measured_by_plams_clis_median() -> None:
    sys.path.insert(0, str(RUN.parent))
    try:
        from _suite.measure import Figure
        from _suite.targets import targets_md
        from _suite.workloads import Row
    finally:
        sys.path.remove(str(RUN.parent))
    rows = [Row("restart", "r", "s", 2, {"plams-cli": Figure([2.0, 9.0, 2.5])}),  # median 2.5: met
            Row("first_run", "f", "s", 2, {"plams-cli": Figure([30.0])}),  # -r / first run 0.083: missed
            Row("serial", "s", "ms/job", 3, {"plams-cli": Figure([1.4]), "floor": Figure([1.0])})]
    lines = {line.split(" | ")[0][2:]: line for line in targets_md(rows).splitlines()[2:]}
    assert lines["`-r` over N finished jobs, nothing to run"].endswith("| 2.50 s | ≤ 3.00 s | yes |")
    assert lines["`-r` ÷ the first run of the same script"].endswith("| 0.083 | ≤ 0.070 | **no** |")
    assert lines["serial trivial jobs ÷ the bare loop (floor)"].endswith("| 1.40 | ≤ 1.50 | yes |")
    assert lines["`load_all`"].endswith("| not measured | ≤ 0.100 ms/job | – |")


@pytest.mark.parametrize("contenders", ["floor", "plams-cli,nope"], ids=["without-plams-cli", "unknown"])
def test_bad_contenders_are_a_usage_error(tmp_path: Path, contenders: str) -> None:
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--contenders", contenders, "--results", "-"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--contenders" in proc.stderr
    assert proc.stdout == ""
