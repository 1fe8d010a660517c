"""The library: JobStatus, Job, JobServer, JobCache (job_manager's API) and the path rules."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

from plams_cli.errors import PlamsError
from plams_cli.jobcache import (
    Job,
    JobCache,
    JobServer,
    JobStatus,
    LockException,
    UserError,
    core_status,
    resolve_cache_path,
)


def test_status_names_are_job_managers_plus_failed() -> None:
    assert [s.value for s in JobStatus] == ["unknown", "held", "queueing", "running", "finished", "analysed",
                                            "failed"]
    assert JobStatus.running == "running"


@pytest.mark.parametrize(("core", "cache"), [
    ("created", "queueing"), ("started", "queueing"), ("registered", "queueing"), ("running", "running"),
    ("finished", "running"), ("crashed", "failed"), ("failed", "failed"), ("successful", "finished"),
    ("copied", "finished"), ("preview", "finished"), ("deleted", "unknown"),
], ids=lambda v: str(v))
def test_core_status_table(core: str, cache: str) -> None:
    assert core_status(core) is JobStatus(cache)


def test_core_status_covers_every_core_status() -> None:
    from plams_cli.core import JobStatus as CoreStatus

    assert {core_status(s).value for s in CoreStatus} <= {s.value for s in JobStatus}
    with pytest.raises(UserError):
        core_status("exploded")


def test_errors_are_plams_errors_with_builtin_categories() -> None:
    assert issubclass(UserError, PlamsError) and issubclass(UserError, ValueError) and UserError.exit_code == 2
    assert issubclass(LockException, PlamsError) and issubclass(LockException, TimeoutError)
    assert LockException.exit_code == 1


def test_job_defaults_and_spec() -> None:
    job = Job(42, "ShellJob", "/w/a")
    assert job.job_id == "42" and job.status is JobStatus.unknown and isinstance(job.timestamp(), float)
    spec = job.job_spec()
    assert spec["status"] == "unknown" and spec["path"] == "/w/a"
    assert Job.from_spec(spec).job_spec() == spec


def test_modify_ignores_none_clears_empty_and_moves_the_time() -> None:
    job = Job("1", "p", "/w/a", comment="old", input_fname="a.in")
    before = job.timestamp()
    job.modify({"comment": None, "input_fname": "", "status": "running"})
    assert job.comment == "old" and job.input_fname is None and job.status is JobStatus.running
    assert job.timestamp() > before


@pytest.mark.parametrize("spec", [{"colour": "red"}, {"status": "done"}, {"path": ""}],
                         ids=["unknown-key", "bad-status", "clear-path"])
def test_modify_rejects_bad_specs_and_changes_nothing(spec: dict[str, str]) -> None:
    job = Job("1", "p", "/w/a")
    before = job.job_spec(), job.timestamp()
    with pytest.raises(UserError):
        job.modify(spec)
    assert (job.job_spec(), job.timestamp()) == before


def test_match_searches_every_field_but_not_unset_ones() -> None:
    job = Job("1234", "ShellJob", "/w/water", comment="a test", status="running")
    assert job.match("wat") and job.match("^12") and job.match("runn") and job.match("a t") and job.match(None)
    assert not job.match("^23") and not job.match("None")
    with pytest.raises(UserError):
        job.match("(")


def _server() -> JobServer:
    server = JobServer("box")
    for i in range(4):
        server.add({"job_id": str(100 + i), "program": "p", "path": f"/w/j{i}", "kind": "grid"})
    return server


def test_server_select_delete_modify() -> None:
    server = _server()
    assert [j.path for j in server.select("j[13]")] == ["/w/j1", "/w/j3"]
    server.modify({"status": "finished"}, indices=[0], pattern="j3")
    assert [j.status.value for j in server.jobs] == ["finished", "unknown", "unknown", "finished"]
    deleted = server.delete(indices=[1], pattern="j2")
    assert [j.path for j in deleted] == ["/w/j1", "/w/j2"]
    assert [j.path for j in server.jobs] == ["/w/j0", "/w/j3"]


@pytest.mark.parametrize("indices", [[4], [-1]], ids=["past-the-end", "negative"])
def test_server_index_out_of_range_changes_nothing(indices: list[int]) -> None:
    server = _server()
    with pytest.raises(UserError, match="no job"):
        server.delete(indices=indices)
    with pytest.raises(UserError, match="no job"):
        server.modify({"status": "failed"}, indices=[0, *indices])
    assert len(server.jobs) == 4 and all(j.status is JobStatus.unknown for j in server.jobs)


def test_add_in_a_known_folder_updates_that_job() -> None:
    server = _server()
    server.add({"job_id": "999", "program": "p", "path": "/w/j0", "status": "running"})
    assert len(server.jobs) == 4 and server.jobs[0].job_id == "999" and server.jobs[0].status is JobStatus.running


def test_add_local_job_records_its_process_start_time() -> None:
    import psutil

    server = JobServer("localhost")
    job = server.add({"job_id": str(os.getpid()), "program": "python", "path": "/w/me"})
    assert job.kind == "local"
    assert job.pid_start == pytest.approx(psutil.Process().create_time())


def test_merge_by_job_id_newer_wins() -> None:
    mine, theirs = _server(), _server()
    theirs.jobs[0].modify({"status": "finished", "path": "/elsewhere/j0"})  # newer, same id
    mine.jobs[1].modify({"status": "running"})  # mine newer than theirs
    theirs.add({"job_id": "777", "program": "q", "path": "/w/new"})
    mine.merge(theirs)
    assert len(mine.jobs) == 5
    assert mine.jobs[0].status is JobStatus.finished and mine.jobs[0].path == "/elsewhere/j0"
    assert mine.jobs[1].status is JobStatus.running
    assert mine.jobs[4].job_id == "777"


def test_merge_does_not_match_local_jobs_by_pid() -> None:
    mine, theirs = JobServer("box"), JobServer("box")
    mine.add({"job_id": "500", "program": "p", "path": "/w/first", "kind": "local"})
    theirs.add({"job_id": "500", "program": "p", "path": "/w/second", "kind": "local"})
    mine.merge(theirs)
    assert [j.path for j in mine.jobs] == ["/w/first", "/w/second"]


def test_cache_dump_and_load_round_trip(cache_path: str) -> None:
    jc = JobCache(cache_path)
    assert not os.path.exists(cache_path)  # nothing is created before it is used
    jc.job_servers["localhost"].add({"job_id": "1", "program": "p", "path": "/w/a", "comment": "x"})
    jc.add_server("remote").add({"job_id": "2", "program": "q", "path": "/r/b", "status": "held"})
    jc.dump()
    other = JobCache(cache_path, load=True)
    assert sorted(other.job_servers) == ["localhost", "remote"]
    assert other.job_servers["remote"].jobs[0].job_spec() == jc.job_servers["remote"].jobs[0].job_spec()
    assert other.job_servers["remote"].jobs[0].timestamp() == jc.job_servers["remote"].jobs[0].timestamp()
    with pytest.raises(UserError):
        other.add_server("remote")


def test_dump_keeps_what_others_recorded_meanwhile(cache_path: str) -> None:
    jc = JobCache(cache_path)
    jc.record("h", [{"path": "/w/a", "status": "running", "mtime": 10.0}, {"path": "/w/b", "mtime": 10.0}])
    jc.load()
    jc.record("h", [{"path": "/w/a", "status": "finished", "mtime": 20.0}, {"path": "/w/c", "mtime": 20.0}])
    jc.job_servers["h"].jobs[1].modify({"comment": "mine"})  # /w/b, edited after its record
    jc.job_servers["h"].jobs[0]._timestamp = 15.0  # an edit older than the other writer's
    jc.job_servers["h"].jobs[0]._edited = True
    jc.dump()
    rows = {job.path: job for job in JobCache(cache_path, load=True).job_servers["h"].jobs}
    assert sorted(rows) == ["/w/a", "/w/b", "/w/c"]
    assert rows["/w/a"].status is JobStatus.finished  # the newer change won
    assert rows["/w/b"].comment == "mine"


def test_delete_through_dump(cache_path: str) -> None:
    jc = JobCache(cache_path)
    jc.record("h", [{"path": f"/w/{i}"} for i in range(3)])
    jc.load()
    jc.job_servers["h"].delete(indices=[1])
    jc.dump()
    assert [j.path for j in JobCache(cache_path, load=True).job_servers["h"].jobs] == ["/w/0", "/w/2"]


def test_merge_caches_renames_the_others_localhost(cache_path: str, tmp_path: Path) -> None:
    other = JobCache(str(tmp_path / "other.sqlite"))
    other.job_servers["localhost"].add({"job_id": "1", "program": "p", "path": "/o/a", "kind": "grid"})
    other.add_server("third").add({"job_id": "2", "program": "p", "path": "/t/b"})
    other.dump()
    mine = JobCache(cache_path)
    mine.add_server("cluster").add({"job_id": "1", "program": "p", "path": "/o/a", "comment": "older",
                                    "kind": "grid"})
    mine.job_servers["cluster"].jobs[0]._timestamp = 1.0
    mine.dump()
    mine.load()
    mine.merge(JobCache(other.cache, load=True), "cluster")
    mine.dump()
    result = JobCache(cache_path, load=True)
    assert not result.job_servers["localhost"].jobs
    assert [(j.path, j.comment) for j in result.job_servers["cluster"].jobs] == [("/o/a", None)]
    assert [j.path for j in result.job_servers["third"].jobs] == ["/t/b"]


def test_pretty_print_leaves_out_empty_columns_and_short(cache_path: str) -> None:
    jc = JobCache(cache_path)
    server = jc.add_server("h")
    server.add({"job_id": "1", "program": "p", "path": "/w/a", "status": "running"})
    server.add({"job_id": "2", "program": "p", "path": "/w/b", "comment": "hello"})
    buffer = io.StringIO()
    jc.pretty_print(pattern="b$", file=buffer)
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["hostname", "index", "job_id", "program", "path", "status", "comment"]
    assert lines[2].split() == ["h", "1", "2", "p", "/w/b", "unknown", "hello"]
    buffer = io.StringIO()
    jc.pretty_print(short=True, file=buffer)
    assert buffer.getvalue().splitlines()[0].split() == ["hostname", "index", "job_id", "status"]
    assert len(buffer.getvalue().splitlines()) == 4


@pytest.mark.parametrize(("option", "env", "expected"), [
    ("/x/opt.sqlite", {"PLAMS_JOBCACHE": "/x/env.sqlite"}, "/x/opt.sqlite"),
    (None, {"PLAMS_JOBCACHE": "/x/env.sqlite"}, "/x/env.sqlite"),
    (None, {"PLAMS_JOBCACHE": "off"}, None),
    ("OFF", {}, None),
], ids=["option-wins", "env", "env-off", "option-off"])
def test_resolve_cache_path(option: str | None, env: dict[str, str], expected: str | None) -> None:
    assert resolve_cache_path(option, env) == expected


def test_resolve_cache_path_default_is_the_user_data_dir() -> None:
    from platformdirs import user_data_dir

    assert resolve_cache_path(None, {}) == os.path.join(user_data_dir("plams-cli", appauthor=False),
                                                        "jobcache.sqlite")


def test_this_hostname_is_local() -> None:
    from plams_cli.jobcache import is_local_host

    assert is_local_host("localhost") and is_local_host(socket.gethostname()) and not is_local_host("elsewhere.x")
