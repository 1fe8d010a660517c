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
        (["find", '{"i": {"$near": [1, "x"]}}'], 2, "rel_tol must be a number"),
        (["find", '{"i": {"$near": [1, null]}}'], 2, "rel_tol must be a number"),
        (["find", '{"i": {"$type": []}}'], 2, "$type under 'i' needs one of"),
        (["find", '{"i": {"$gt": "a"}}'], 2, "cannot compare"),
        (["show", "0" * 32], 1, "no job with id"),
        (["show", "xyz"], 1, "not a job id"),
    ],
    ids=[
        "bad-json", "not-object", "bad-operator", "near-string", "near-null", "type-list",
        "gt-mixed-types", "unknown-id", "not-hex",
    ],  # fmt: skip
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


@pytest.mark.parametrize(
    "value",
    ["[bold]x[/bold] :smile:", "[/bold]", "[red]a", "x\\n:thumbs_up: [link=http://x]y[/link]"],
    ids=["markup-and-emoji", "closing-tag", "open-tag", "link"],
)
def test_show_prints_values_verbatim(runner: CliRunner, tmp_path: Path, value: str) -> None:
    ws = Workspace(tmp_path, create=True)
    job = ws.open_job({"s": value}).init()
    job.doc.note = value
    result = runner.invoke(cli, ["workspace", "show", job.id, "-r", str(tmp_path)])
    assert not result.exception, result.output
    assert result.stdout.splitlines() == [
        f"id:         {job.id}",
        f"path:       {job.path}",
        f"statepoint: {json.dumps({'s': value})}",
        f"document:   {json.dumps({'note': value})}",
    ]


def test_show_corrupt_document_is_one_line(runner: CliRunner, root: str) -> None:
    job = Workspace(root).open_job({"i": 1})
    Path(job.fn("signac_job_document.json")).write_text("{not json")
    for extra in ([], ["--json"]):
        result = runner.invoke(cli, ["workspace", "show", job.id, "-r", root, *extra])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "not valid JSON" in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_corrupted_workspace_is_one_line(runner: CliRunner, root: str) -> None:
    job = Workspace(root).open_job({"i": 1})
    Path(job.fn("signac_statepoint.json")).write_text("junk")
    for args in (["find", '{"i": 1}'], ["show", job.id]):
        result = runner.invoke(cli, ["workspace", *args, "-r", root])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert f"corrupted state point file in job(s): {job.id}" in result.stderr
        assert "Traceback" not in result.output
    result = runner.invoke(cli, ["workspace", "find", "-r", root])
    assert result.exit_code == 0 and len(result.stdout.split()) == 3  # listing: all folders


def test_find_in_current_folder(runner: CliRunner, root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    result = runner.invoke(cli, ["workspace", "find", '{"i": {"$lt": 2}}'])
    assert not result.exception, result.output
    assert result.stdout.split() == Workspace(root).find_job_ids({"i": {"$lt": 2}})
    result = runner.invoke(cli, ["workspace", "show", result.stdout.split()[0][:8]])
    assert not result.exception and "statepoint: {\"i\": " in result.stdout


def test_init_without_root_uses_current_folder(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["workspace", "init"])
    assert not result.exception, result.output
    assert (tmp_path / ".signac" / "config").read_text() == "schema_version = 2\n"
    assert result.stdout == "" and str(tmp_path) in result.stderr
    assert len(Workspace(tmp_path)) == 0
