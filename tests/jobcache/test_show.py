"""``plams jobs show``: saved jobs inspected without unpickling; ``--unsafe`` to load them."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli import MultiJob, ShellJob
from plams_cli.cli.main import cli
from plams_cli.jobcache.inspect import describe_pickle


@pytest.fixture
def work(run_in: object) -> Path:
    """A finished run: a ShellJob ``single`` and a MultiJob ``multi`` with two children."""
    ShellJob(name="single", runscript="echo hello").run()
    MultiJob(name="multi", children=[ShellJob(name="c1", runscript="echo 1"),
                                     ShellJob(name="c2", runscript="exit 3")]).run()
    from plams_cli.core import finish

    finish()
    folder = Path(run_in.workdir)  # type: ignore[attr-defined]
    assert (folder / "single" / "single.dill").is_file()
    return folder


class Exploit:
    """Creates a folder when unpickled: what a hostile .dill would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


def test_show_job_folder_reads_the_summary(runner: CliRunner, work: Path) -> None:
    result = runner.invoke(cli, ["jobs", "show", str(work / "single"), "--json"])
    assert not result.exception, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "job" and data["summary"]["status"] == "successful"
    assert data["summary"]["class"].endswith("ShellJob") and data["pickle"].endswith("single.dill")
    text = runner.invoke(cli, ["jobs", "show", str(work / "single" / "single.dill")])
    assert not text.exception and "status:    successful" in text.stdout and "duration:" in text.stdout


def test_show_working_folder_is_a_tree_with_multijob_children(runner: CliRunner, work: Path) -> None:
    result = runner.invoke(cli, ["jobs", "show", str(work), "--json"])
    assert not result.exception, result.output
    tree = {node["name"]: node for node in json.loads(result.stdout)["jobs"]}
    assert sorted(tree) == ["multi", "single"]
    children = {c["name"]: c["status"] for c in tree["multi"]["children"]}
    assert children == {"c1": "successful", "c2": "crashed"}
    assert tree["single"]["hash"] and tree["single"]["duration_s"] is not None
    text = runner.invoke(cli, ["jobs", "show", str(work)]).stdout
    lines = text.splitlines()
    assert any(line.startswith("├── multi  MultiJob") or line.startswith("└── multi  MultiJob") for line in lines)
    assert any("c2  ShellJob  crashed" in line and line.startswith(("│   ", "    ")) for line in lines)


def test_dill_without_summary_is_described_from_its_bytes(runner: CliRunner, work: Path) -> None:
    os.remove(work / "single" / "single.job.json")
    result = runner.invoke(cli, ["jobs", "show", str(work / "single" / "single.dill"), "--json"])
    assert not result.exception, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "pickle"
    assert "plams_cli.core.jobs.ShellJob" in data["globals"]
    assert "echo hello" in data["strings"] and "single" in data["strings"]


def test_hostile_dill_is_not_run_by_show(runner: CliRunner, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    job = tmp_path / "evil"
    job.mkdir()
    (job / "evil.dill").write_bytes(pickle.dumps(Exploit(str(marker))))
    for args in (["jobs", "show", str(job / "evil.dill")], ["jobs", "show", str(job), "--json"]):
        result = runner.invoke(cli, args)
        assert not result.exception, result.output
        assert not marker.exists()
    assert "posix.mkdir" in result.stdout
    unsafe = runner.invoke(cli, ["jobs", "show", str(job / "evil.dill"), "--unsafe"])
    assert marker.exists()  # --unsafe does unpickle, as its help says
    assert unsafe.exit_code == 1 and "not a plams job" in unsafe.stderr


def test_unsafe_shows_the_live_job(runner: CliRunner, work: Path) -> None:
    result = runner.invoke(cli, ["jobs", "show", str(work / "single"), "--unsafe", "--json"])
    assert not result.exception, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "live" and data["status"] == "successful" and data["class"].endswith("ShellJob")
    assert "single.out" in data["files"]
    text = runner.invoke(cli, ["jobs", "show", str(work / "single"), "--unsafe"]).stdout
    assert "files:" in text and "single.out" in text


def test_unsafe_help_says_why() -> None:
    result = CliRunner().invoke(cli, ["jobs", "show", "--help"])
    assert "runs code stored in the file" in result.stdout


@pytest.mark.parametrize("make", [
    lambda p: p / "missing",
    lambda p: (p / "notes.txt", (p / "notes.txt").write_text("x"))[0],
    lambda p: (p / "empty", (p / "empty").mkdir())[0],
    lambda p: (p / "bad" / "bad.dill", (p / "bad").mkdir(), (p / "bad" / "bad.dill").write_bytes(b"garbage"))[0],
], ids=["missing", "other-file", "empty-folder", "not-a-pickle"])
def test_show_bad_path_is_one_error_line(runner: CliRunner, tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    result = runner.invoke(cli, ["jobs", "show", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_describe_pickle_reads_memoised_stack_globals() -> None:
    data = pickle.dumps([Exploit("a"), Exploit("b")], protocol=4)
    found = describe_pickle(data)
    assert found["globals"] == ["posix.mkdir"]
    assert {"a", "b"} <= set(found["strings"]) and found["error"] is None
    assert describe_pickle(data[:-5])["error"]
