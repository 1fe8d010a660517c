"""plams workspace init / find / show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli.cli.main import cli
from plams_cli.workspace import Workspace


@pytest.fixture
def root(tmp_path: Path) -> str:
    ws = Workspace(tmp_path / "p", create=True)
    for i in range(3):
        ws.open_job({"i": i}).init().doc.score = i * 10
    return ws.root


def test_init_creates_workspace(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["workspace", "init", str(tmp_path / "new")])
    assert not result.exception, result.output
    assert (tmp_path / "new" / ".signac" / "config").read_text() == "schema_version = 2\n"


def test_find_prints_ids(runner: CliRunner, root: str) -> None:
    result = runner.invoke(cli, ["workspace", "find", '{"i": {"$gte": 1}}', "-r", root])
    assert not result.exception
    ws = Workspace(root)
    assert result.stdout.split() == ws.find_job_ids({"i": {"$gte": 1}})


def test_find_json(runner: CliRunner, root: str) -> None:
    result = runner.invoke(cli, ["workspace", "find", '{"doc.score": 20}', "-r", root, "--json"])
    assert not result.exception
    assert [row["statepoint"] for row in json.loads(result.stdout)] == [{"i": 2}]


def test_show_json_by_prefix(runner: CliRunner, root: str) -> None:
    job_id = Workspace(root).open_job({"i": 1}).id
    result = runner.invoke(cli, ["workspace", "show", job_id[:10], "-r", root, "--json"])
    assert not result.exception
    data = json.loads(result.stdout)
    assert data["id"] == job_id and data["statepoint"] == {"i": 1} and data["document"] == {"score": 10}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["find", "{bad"], 2, "not valid JSON"),
        (["find", "[1]"], 2, "JSON object"),
        (["find", '{"i": {"$nope": 1}}'], 2, "unknown operator"),
        (["show", "0" * 32], 1, "no job with id"),
        (["show", "xyz"], 1, "not a job id"),
    ],
    ids=["bad-json", "not-object", "bad-operator", "unknown-id", "not-hex"],
)
def test_errors_are_one_line(runner: CliRunner, root: str, args: list, code: int, message: str) -> None:
    result = runner.invoke(cli, ["workspace", *args, "-r", root])
    assert result.exit_code == code
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr and "Traceback" not in result.output


def test_not_a_workspace(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["workspace", "find", "-r", str(tmp_path)])
    assert result.exit_code == 1 and "not a workspace" in result.stderr


def test_ambiguous_prefix(runner: CliRunner, tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    ids = sorted(ws.open_job({"k": i}).init().id for i in range(40))
    prefix = next(a[0] for a, b in zip(ids, ids[1:]) if a[0] == b[0])
    result = runner.invoke(cli, ["workspace", "show", prefix, "-r", str(tmp_path)])
    assert result.exit_code == 1 and "matches" in result.stderr
