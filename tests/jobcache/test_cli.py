"""``plams jobs`` through click's CliRunner, and ``plams jobs list`` as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli.cli.main import cli
from plams_cli.jobcache import JobCache

from .conftest import plams_env

HOST = socket.gethostname()


def _fill(cache: str) -> None:
    jc = JobCache(cache)
    jc.record(HOST, [
        {"path": "/w/water", "job_id": "11", "program": "ShellJob", "status": "finished", "mtime": 30.0},
        {"path": "/w/ethanol", "job_id": "12", "program": "AMSJob", "status": "running", "mtime": 10.0,
         "comment": "job ethanol in /w"},
    ])
    jc.record("cluster", [{"path": "/c/water2", "job_id": "9001", "program": "ShellJob", "status": "queueing",
                           "kind": "grid", "grid": "slurm", "mtime": 20.0}])


def _rows(path: str) -> list[tuple[object, ...]]:
    jc = JobCache(path)
    try:
        return jc.store.rows()
    finally:
        jc.close()


def test_list_is_sorted_by_mtime_newest_last(runner: CliRunner, cache_path: str) -> None:
    _fill(cache_path)
    result = runner.invoke(cli, ["jobs", "list"])
    assert not result.exception, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["hostname", "index", "job_id", "program", "path", "status", "comment"]
    assert [line.split()[2] for line in lines[2:]] == ["12", "9001", "11"]


def test_list_json_parses_back_with_every_field(runner: CliRunner, cache_path: str) -> None:
    _fill(cache_path)
    data = json.loads(runner.invoke(cli, ["jobs", "list", "--json"]).stdout)
    assert [d["job_id"] for d in data] == ["12", "9001", "11"]
    assert set(data[0]) == {"hostname", "index", "path", "job_id", "program", "input_fname", "output_fname",
                            "status", "submit", "comment", "mtime", "kind", "grid", "pid_start"}
    assert data[1] == {**data[1], "hostname": "cluster", "index": 0, "path": "/c/water2", "grid": "slurm"}
    assert data[0]["index"] == 1 and data[2]["index"] == 0  # the position on its host, in recording order


@pytest.mark.parametrize(("args", "ids"), [
    (["--pattern", "water"], ["9001", "11"]),
    (["--pattern", "^/w/"], ["12", "11"]),
    (["--pattern", "thanol|9001"], ["12", "9001"]),
    (["--host", "cluster"], ["9001"]),
    (["--host", "cluster", "--host", HOST, "--status", "finished"], ["11"]),
    (["--status", "running", "--status", "queueing"], ["12", "9001"]),
    (["--pattern", "None"], []),
], ids=["literal", "anchored", "alternation", "host", "host-and-status", "two-statuses", "unset-fields"])
def test_list_filters(runner: CliRunner, cache_path: str, args: list[str], ids: list[str]) -> None:
    _fill(cache_path)
    result = runner.invoke(cli, ["jobs", "list", "--json", *args])
    assert not result.exception, result.output
    assert [d["job_id"] for d in json.loads(result.stdout)] == ids


def test_list_short_and_relative_paths(runner: CliRunner, cache_path: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    JobCache(cache_path).record(HOST, [{"path": str(tmp_path / "run" / "job1"), "job_id": "5"}])
    monkeypatch.chdir(tmp_path)
    lines = runner.invoke(cli, ["jobs", "list"]).stdout.splitlines()
    assert lines[2].split()[3] == os.path.join("run", "job1")
    short = runner.invoke(cli, ["jobs", "list", "--short"]).stdout.splitlines()
    assert short[0].split() == ["hostname", "index", "job_id", "status"] and short[2].split() == [HOST, "0", "5",
                                                                                                   "unknown"]


def test_list_of_a_missing_cache_creates_nothing(runner: CliRunner, cache_path: str) -> None:
    result = runner.invoke(cli, ["jobs", "list"])
    assert result.exit_code == 0 and result.stdout == "" and "No jobs recorded yet" in result.stderr
    assert not os.path.exists(os.path.dirname(cache_path))


def test_cache_off(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLAMS_JOBCACHE", "off")
    result = runner.invoke(cli, ["jobs", "add", f"path={tmp_path}"])
    assert result.exit_code == 0 and "off" in result.stderr


def test_add_modify_delete(runner: CliRunner, cache_path: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["jobs", "add", "job_id=7", "program=adf", f"path={tmp_path}", "comment=a b c"])
    assert not result.exception, result.output
    runner.invoke(cli, ["jobs", "add", "job_id=8", "program=adf", "path=/w/second", "--host", "cluster"])
    result = runner.invoke(cli, ["jobs", "modify", "-i", "0", "status=finished", "comment="])
    assert not result.exception, result.output
    jobs = JobCache(cache_path, load=True).job_servers
    assert (jobs[HOST].jobs[0].status.value, jobs[HOST].jobs[0].comment) == ("finished", None)
    result = runner.invoke(cli, ["jobs", "modify", "--host", "cluster", "--pattern", "second", "status=held"])
    assert not result.exception and JobCache(cache_path, load=True).job_servers["cluster"].jobs[0].status == "held"
    result = runner.invoke(cli, ["jobs", "delete", "--pattern", "adf"], input="n\n")
    assert result.exit_code == 2 and "without --yes" in result.stderr  # CliRunner's stdin is not a terminal
    result = runner.invoke(cli, ["jobs", "delete", "--pattern", "adf", "--yes"])
    assert not result.exception and "Deleted 1 job(s)" in result.stderr
    jobs = JobCache(cache_path, load=True).job_servers
    assert HOST not in jobs and len(jobs["cluster"].jobs) == 1


@pytest.mark.parametrize("args", [
    ["add", "colour=red", "path=/w/x"],
    ["add", "status=done", "path=/w/x"],
    ["add", "job_id=1"],
    ["add", "nonsense"],
    ["modify", "-i", "5", "status=finished"],
    ["modify", "--pattern", "(", "status=finished"],
    ["modify", "status=finished"],
    ["delete", "-i", "9", "--yes"],
    ["list", "--pattern", "[a-"],
    ["list", "--status", "done"],
    ["merge", "/no/such/file.sqlite", "other"],
    ["import", "/no/such/folder"],
], ids=["unknown-key", "bad-status", "no-path", "not-key-value", "index-out-of-range", "bad-regex-modify",
        "no-selection", "delete-out-of-range", "bad-regex-list", "bad-status-filter", "missing-cache",
        "missing-folder"])
def test_bad_input_is_one_error_line_exit_2_nothing_written(runner: CliRunner, cache_path: str,
                                                            args: list[str]) -> None:
    _fill(cache_path)
    before = _rows(cache_path)
    result = runner.invoke(cli, ["jobs", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert _rows(cache_path) == before


@pytest.mark.parametrize("content", [b"not a cache at all", b""], ids=["text", "one-byte"])
def test_foreign_cache_file_is_exit_2(runner: CliRunner, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.sqlite"
    path.write_bytes(content * 100 or b"x")
    result = runner.invoke(cli, ["jobs", "list", "--cache", str(path)])
    assert result.exit_code == 2 and result.stderr.startswith("Error: ") and "not a readable plams job cache" in \
        result.stderr
    other = runner.invoke(cli, ["jobs", "merge", str(path), "other"])
    assert other.exit_code == 2 and "Error: " in other.stderr


def test_update_says_when_the_queue_query_fails(runner: CliRunner, cache_path: str,
                                                fake_command: Callable[[str, str], Path]) -> None:
    fake_command("squeue", 'echo "slurm_load_jobs error: Socket timed out" >&2; exit 1')
    JobCache(cache_path).record(HOST, [{"path": "/w/g", "job_id": "4242", "kind": "grid", "grid": "slurm",
                                        "status": "running"}])
    result = runner.invoke(cli, ["jobs", "update"])
    assert result.exit_code == 0
    assert "Warning: queue query failed: slurm:" in result.stderr and "Socket timed out" in result.stderr
    listed = json.loads(runner.invoke(cli, ["jobs", "list", "--json", "--update"]).stdout)
    assert listed[0]["status"] == "running"


def test_list_update_refreshes_first(runner: CliRunner, cache_path: str,
                                     fake_command: Callable[[str, str], Path]) -> None:
    fake_command("squeue", 'echo "4242 R"')
    JobCache(cache_path).record(HOST, [{"path": "/w/g", "job_id": "4242", "kind": "grid", "grid": "slurm",
                                        "status": "queueing"}])
    listed = json.loads(runner.invoke(cli, ["jobs", "list", "--json", "--update"]).stdout)
    assert listed[0]["status"] == "running"


def test_merge_command(runner: CliRunner, cache_path: str, tmp_path: Path) -> None:
    other = JobCache(str(tmp_path / "other.sqlite"))
    other.job_servers["localhost"].add({"job_id": "1", "program": "p", "path": "/o/a"})
    other.dump()
    result = runner.invoke(cli, ["jobs", "merge", other.cache, "remote"])
    assert not result.exception, result.output
    assert [j.path for j in JobCache(cache_path, load=True).job_servers["remote"].jobs] == ["/o/a"]


def test_import_records_the_jobs_of_a_working_folder(runner: CliRunner, cache_path: str, run_in: object) -> None:
    from plams_cli import MultiJob, ShellJob
    from plams_cli.core import finish

    ShellJob(name="ok", runscript="echo hi").run()
    MultiJob(name="multi", children=[ShellJob(name="bad", runscript="exit 1")]).run()
    finish()
    workdir = run_in.workdir  # type: ignore[attr-defined]
    result = runner.invoke(cli, ["jobs", "import", workdir])
    assert not result.exception, result.output
    data = {Path(d["path"]).name: d for d in json.loads(runner.invoke(cli, ["jobs", "list", "--json"]).stdout)}
    assert {name: d["status"] for name, d in data.items()} == {"ok": "finished", "multi": "failed", "bad": "failed"}
    assert data["ok"]["program"] == "ShellJob" and data["ok"]["comment"] == f"job ok in {workdir}"
    assert (data["ok"]["input_fname"], data["ok"]["output_fname"], data["ok"]["submit"]) == ("ok.in", "ok.out",
                                                                                            "ok.run")
    again = runner.invoke(cli, ["jobs", "import", workdir])
    assert not again.exception and len(json.loads(runner.invoke(cli, ["jobs", "list", "--json"]).stdout)) == 3


def test_import_of_a_folder_without_jobs_is_exit_2(runner: CliRunner, cache_path: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["jobs", "import", str(tmp_path)])
    assert result.exit_code == 2 and "holds no saved jobs" in result.stderr and not os.path.exists(cache_path)


def test_plams_jobs_list_as_a_real_process(tmp_path: Path) -> None:
    cache = str(tmp_path / "c.sqlite")
    _fill(cache)
    env = plams_env(tmp_path, cache)
    code = ("import sys; from plams_cli.cli.main import main\n"
            "try:\n    main(['jobs', 'list', '--pattern', 'water'])\n"
            "finally:\n    heavy = ('rich', 'psutil', 'plams_cli.core')\n"
            "    sys.stderr.write(' '.join(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["cluster", HOST] and "\x1b" not in result.stdout
    assert result.stderr == ""  # neither rich, psutil nor the core was imported
    pipe = subprocess.run(f"'{sys.executable}' -m plams_cli jobs list --json | head -c 1", shell=True, env=env,
                          capture_output=True, text=True, timeout=60)
    assert pipe.stdout == "[" and "Traceback" not in pipe.stderr


def _complete(tmp_path: Path, cache: str, words: str) -> list[str]:
    env = {**plams_env(tmp_path, cache), "_PLAMS_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    result = subprocess.run([sys.executable, "-m", "plams_cli"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(("words", "expected"), [
    ("plams jobs li", ["plain,list"]),
    ("plams jobs list --sh", ["plain,--short"]),
    ("plams jobs list --status q", ["plain,queueing"]),
    ("plams jobs list --host clu", ["plain,cluster"]),
    ("plams jobs modify -i 0 stat", ["nospace,status="]),
], ids=["subcommand", "option", "status-values", "host-values", "keys"])
def test_shell_completion(tmp_path: Path, words: str, expected: list[str]) -> None:
    cache = str(tmp_path / "c.sqlite")
    _fill(cache)
    assert _complete(tmp_path, cache, words) == expected


@pytest.mark.parametrize("word", ["plams jobs list", "plams jobs show", "--unsafe", "PLAMS_JOBCACHE",
                                  "plams jobs merge", "plams jobs import"])
def test_man_page_and_readme_document_the_group(word: str) -> None:
    from .conftest import ROOT

    man = (ROOT / "man" / "plams.1").read_text().replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
    assert word in man and word in (ROOT / "README.md").read_text()
