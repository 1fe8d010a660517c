"""plams workspace init / find / show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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
    result = runner.invoke(cli, ["workspace", "find", '{"i": {"$gte": 1}}', "--root", root])
    assert not result.exception
    ws = Workspace(root)
    assert result.stdout.split() == ws.find_job_ids({"i": {"$gte": 1}})


def test_find_json(runner: CliRunner, root: str) -> None:
    result = runner.invoke(cli, ["workspace", "find", '{"doc.score": 20}', "--root", root, "--json"])
    assert not result.exception
    assert [row["statepoint"] for row in json.loads(result.stdout)] == [{"i": 2}]


def test_show_json_by_prefix(runner: CliRunner, root: str) -> None:
    job_id = Workspace(root).open_job({"i": 1}).id
    result = runner.invoke(cli, ["workspace", "show", job_id[:10], "--root", root, "--json"])
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
        (["show", "0" * 32], 2, "no job with id"),
        (["show", "xyz"], 2, "not a job id"),
    ],
    ids=[
        "bad-json", "not-object", "bad-operator", "near-string", "near-null", "type-list",
        "gt-mixed-types", "unknown-id", "not-hex",
    ],  # fmt: skip
)
def test_errors_are_one_line(runner: CliRunner, root: str, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(cli, ["workspace", *args, "--root", root])
    assert result.exit_code == code
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr and "Traceback" not in result.output


def test_not_a_workspace(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["workspace", "find", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "not a workspace" in result.stderr  # wrong input: 2 (issue 11)


def test_ambiguous_prefix(runner: CliRunner, tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    ids = sorted(ws.open_job({"k": i}).init().id for i in range(40))
    prefix = next(a[0] for a, b in zip(ids, ids[1:], strict=False) if a[0] == b[0])
    result = runner.invoke(cli, ["workspace", "show", prefix, "--root", str(tmp_path)])
    assert result.exit_code == 2 and "matches" in result.stderr  # wrong input: 2 (issue 11)


@pytest.mark.parametrize(
    "value",
    ["[bold]x[/bold] :smile:", "[/bold]", "[red]a", "x\\n:thumbs_up: [link=http://x]y[/link]"],
    ids=["markup-and-emoji", "closing-tag", "open-tag", "link"],
)
def test_show_prints_values_verbatim(runner: CliRunner, tmp_path: Path, value: str) -> None:
    ws = Workspace(tmp_path, create=True)
    job = ws.open_job({"s": value}).init()
    job.doc.note = value
    result = runner.invoke(cli, ["workspace", "show", job.id, "--root", str(tmp_path)])
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
        result = runner.invoke(cli, ["workspace", "show", job.id, "--root", root, *extra])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "not valid JSON" in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_corrupted_workspace_is_one_line(runner: CliRunner, root: str) -> None:
    job = Workspace(root).open_job({"i": 1})
    Path(job.fn("signac_statepoint.json")).write_text("junk")
    for args in (["find", '{"i": 1}'], ["show", job.id]):
        result = runner.invoke(cli, ["workspace", *args, "--root", root])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert f"corrupted state point file in job(s): {job.id}" in result.stderr
        assert "Traceback" not in result.output
    result = runner.invoke(cli, ["workspace", "find", "--root", root])
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


@pytest.fixture
def nan_root(tmp_path: Path) -> str:
    ws = Workspace(tmp_path / "nan", create=True)
    job = ws.open_job({"x": float("nan"), "y": [float("inf"), 1.5], "u": "ü"}).init()
    job.doc.e = float("-inf")
    return ws.root


@pytest.mark.parametrize("command", ["find", "show"], ids=["find", "show"])
def test_json_output_is_valid_json_with_nan_as_null(runner: CliRunner, nan_root: str, command: str) -> None:
    args = ["find"] if command == "find" else ["show", Workspace(nan_root).find_job_ids()[0]]
    result = runner.invoke(cli, ["workspace", *args, "--root", nan_root, "--json"])
    assert not result.exception, result.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    data = json.loads(result.stdout, parse_constant=refuse)
    row = data[0] if command == "find" else data
    assert row["statepoint"] == {"x": None, "y": [None, 1.5], "u": "ü"}
    if command == "show":
        assert data["document"] == {"e": None}


def test_json_help_says_how_nan_is_printed(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["workspace", "find", "--help"])
    assert "NaN and infinite numbers are printed as null" in " ".join(result.stdout.split())


def test_show_prints_unicode_as_is(runner: CliRunner, nan_root: str) -> None:
    job_id = Workspace(nan_root).find_job_ids()[0]
    result = runner.invoke(cli, ["workspace", "show", job_id, "--root", nan_root])
    assert not result.exception, result.output
    assert '"u": "ü"' in result.stdout and "\\u00fc" not in result.stdout


_MAIN = "from plams_cli.cli.main import cli; cli()"


@pytest.mark.parametrize(
    "args", [["find"], ["find", "--json"], ["show", "ID"]], ids=["find", "find-json", "show"]
)
def test_closed_stdout_pipe_ends_quietly(root: str, args: list[str]) -> None:
    # The reader of the pipe is gone before the first write, as with '| head' that
    # exits early: the write fails with EPIPE.
    args = [Workspace(root).find_job_ids()[0] if arg == "ID" else arg for arg in args]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _MAIN, "workspace", *args, "--root", root],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


def test_broken_pipe_in_process_is_exit_141(
    runner: CliRunner, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("plams_cli.cli.workspace.click.echo", echo)
    result = runner.invoke(cli, ["workspace", "find", "--root", root])
    assert result.exit_code == 141 and result.stderr == "" and "Broken pipe" not in result.output


def test_check_names_what_it_removed(runner: CliRunner, root: str) -> None:
    ws = Workspace(root)
    job = ws.find_jobs()[0]
    leftover = Path(job.fn(f"signac_job_document.json.{os.getpid()}.99.tmp"))
    leftover.write_text("{}")
    old = time.time() - 120
    os.utime(leftover, (old, old))
    result = runner.invoke(cli, ["workspace", "check", "--root", root])
    assert not result.exception, result.output
    assert f"removed {leftover}" in result.stderr and "3 jobs checked" in result.stderr
    assert not leftover.exists() and result.stdout == ""


def test_check_reports_corruption_in_one_line(runner: CliRunner, root: str) -> None:
    job = Workspace(root).find_jobs()[0]
    Path(job.fn("signac_statepoint.json")).write_text("junk")
    result = runner.invoke(cli, ["workspace", "check", "--root", root])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"corrupted state point file in job(s): {job.id}" in result.stderr
