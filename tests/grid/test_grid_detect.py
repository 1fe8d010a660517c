"""Autodetection and ``plams grid``: SLURM alone, PBS wrappers alone, both, none."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli.cli.main import cli
from plams_cli.errors import SchedulerNotFoundError
from plams_cli.runners.detect import detect, detect_grid
from plams_cli.runners.grid import GridRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.slurm
@pytest.mark.usefixtures("pbs_up")
def test_both_slurm_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    found = detect()
    assert found.grid == "slurm" and found.version and found.version[0].isdigit()
    by_name = {c.name: c for c in found.candidates}
    assert by_name["pbs"].found and not by_name["pbs"].chosen
    assert "slurm is preferred" in by_name["pbs"].reason
    assert GridRunner().grid == "slurm"


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_slurm_alone(path_without: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without("pbs"))
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    found = detect()
    assert found.grid == "slurm"
    assert {c.name: c.found for c in found.candidates} == {"slurm": True, "pbs": False, "sge": False}


@pytest.mark.pbs
@pytest.mark.usefixtures("pbs_up")
def test_pbs_wrappers_alone(path_without: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without("slurm"))
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    found = detect()
    assert found.grid == "pbs"
    slurm = next(c for c in found.candidates if c.name == "slurm")
    assert not slurm.found and "sbatch not found" in slurm.reason


def test_none_is_fast(path_without: Callable[..., str], monkeypatch: pytest.MonkeyPatch, runner: CliRunner) -> None:
    monkeypatch.setenv("PATH", path_without("slurm", "pbs"))
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    start = time.monotonic()
    found = detect()
    assert time.monotonic() - start < 0.5
    assert found.grid is None and not any(c.found for c in found.candidates)
    with pytest.raises(SchedulerNotFoundError, match="no queueing system found"):
        detect_grid()
    result = runner.invoke(cli, ["grid", "detect", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert json.loads(result.stdout)["grid"] is None
    assert "Error: no queueing system found" in result.stderr and "Traceback" not in result.output


def test_plams_grid_override(monkeypatch: pytest.MonkeyPatch, path_without: Callable[..., str]) -> None:
    monkeypatch.setenv("PATH", path_without("slurm", "pbs"))
    monkeypatch.setenv("PLAMS_GRID", "sge")
    found = detect()
    assert found.grid == "sge" and found.override == "sge"
    monkeypatch.setenv("PLAMS_GRID", "nosuch")
    with pytest.raises(SchedulerNotFoundError, match="valid names: pbs, sge, slurm"):
        detect()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_up")
def test_cli_detect(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    result = runner.invoke(cli, ["grid", "detect"])
    assert not result.exception
    assert result.stdout.startswith("slurm ")
    assert "candidates" in result.stderr
    data = json.loads(runner.invoke(cli, ["grid", "detect", "--json"]).stdout)
    assert data["grid"] == "slurm" and [c["name"] for c in data["candidates"]] == ["slurm", "pbs", "sge"]


def test_cli_list_and_show(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "defaults.yaml"
    user.write_text(
        "gridrunner:\n  mycluster:\n    commands:\n      submit: [sbatch, --parsable, -A, proj]\n"
        "  slurm:\n    special:\n      gpus: '--gpus='\n"
    )
    monkeypatch.setenv("PLAMS_DEFAULTS", str(user))
    result = runner.invoke(cli, ["grid", "list", "--json"])
    assert not result.exception
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["mycluster"]["source"] == "user"
    assert rows["slurm"]["source"] == "builtin, changed by user"
    assert rows["pbs"]["source"] == "builtin"
    shown = runner.invoke(cli, ["grid", "show", "slurm"])
    assert not shown.exception
    assert "submit: [sbatch, --parsable]" in shown.stdout and "gpus: --gpus=" in shown.stdout
    bad = runner.invoke(cli, ["grid", "show", "slrum"])
    # an unknown grid name is wrong input: 2 (issue 11)
    assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit)
    assert "Did you mean 'slurm'" in bad.stderr and "Traceback" not in bad.output
