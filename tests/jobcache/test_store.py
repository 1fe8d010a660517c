"""The SQLite store: one transaction per change, concurrent writers, kills, locks, bad files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plams_cli.errors import CacheVersionError, CorruptedCacheError, JobCacheError, PlamsError
from plams_cli.jobcache import JobCache, LockException, UserError
from plams_cli.jobcache.store import SCHEMA_VERSION

from .conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _paths(cache: str, host: str = "h") -> list[str]:
    jc = JobCache(cache, load=True)
    return [job.path for job in jc.job_servers.get(host, jc.job_servers["localhost"]).jobs]


def test_record_upserts_by_host_and_path(cache_path: str) -> None:
    jc = JobCache(cache_path)
    jc.record("h", [{"path": "/w/a", "job_id": "1", "program": "ShellJob", "status": "queueing", "mtime": 10.0}])
    jc.record("h", [{"path": "/w/a", "status": "running", "mtime": 11.0}])
    jc.record("h", [{"path": "/w/a", "status": "queueing", "comment": "stale", "mtime": 10.5}])  # older: ignored
    jc.record("other", [{"path": "/w/a", "mtime": 12.0}])
    jc.load()
    (job,) = jc.job_servers["h"].jobs
    assert (job.job_id, job.program, job.status.value, job.comment, job.timestamp()) == (
        "1", "ShellJob", "running", None, 11.0)
    assert jc.job_servers["other"].jobs[0].status.value == "unknown"


@pytest.mark.parametrize("most", [7, 2000])
def test_rows_recorded_together_end_as_the_rules_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     most: int) -> None:
    """Many rows per statement (cut into pieces of ``most``), checked against the rules played out in Python.

    The rows repeat paths (a later row meets an earlier one of the same call), leave the
    status or other fields out (the stored value stays), and come older than what is
    stored (they change nothing).
    """
    import random

    from plams_cli.jobcache import store

    monkeypatch.setattr(store, "MAX_ROWS_PER_STATEMENT", most)
    rng = random.Random(14)
    cache = str(tmp_path / "cache.sqlite")
    jc = JobCache(cache)
    expected: dict[str, dict[str, object]] = {}
    for _ in range(4):
        batch = []
        for _ in range(rng.randrange(1, 300)):
            row: dict[str, object] = {"path": f"/w/{rng.randrange(60)}", "mtime": float(rng.randrange(1000))}
            if rng.random() < 0.6:
                row["status"] = rng.choice(["queueing", "running", "finished", "failed"])
            for key in ("job_id", "program", "comment"):
                if rng.random() < 0.5:
                    row[key] = f"{key}-{rng.randrange(5)}"
            batch.append(row)
        jc.record("h", batch)
        for row in batch:  # the rules: insert, or update what is given when not older
            stored = expected.get(str(row["path"]))
            if stored is None:
                expected[str(row["path"])] = {"status": "unknown", **row}
            elif float(row["mtime"]) >= float(stored["mtime"]):  # type: ignore[arg-type]
                stored.update(row)
    with sqlite3.connect(cache) as conn:
        table = conn.execute("SELECT path, status, job_id, program, comment, mtime FROM jobs").fetchall()
    assert len(table) > 40 and {r[1] for r in table} > {"unknown"}  # statuses given, and some never given
    assert sorted(table) == sorted((p, r["status"], r.get("job_id"), r.get("program"), r.get("comment"), r["mtime"])
                                   for p, r in expected.items())


@pytest.mark.parametrize("row", [{"path": "/w/a", "colour": "red"}, {"job_id": "1"}, {"path": "/w/a", "status": "x"}],
                         ids=["unknown-key", "no-path", "bad-status"])
def test_bad_rows_write_nothing(cache_path: str, row: dict[str, str]) -> None:
    jc = JobCache(cache_path)
    jc.record("h", [{"path": "/w/ok"}])
    with pytest.raises(UserError):
        jc.record("h", [{"path": "/w/first"}, row])
    assert _paths(cache_path) == ["/w/ok"]


_ADDER = """
import sys
from plams_cli.jobcache import JobCache
cache, worker = sys.argv[1], int(sys.argv[2])
jc = JobCache(cache, timeout_s=60)
for i in range(10):
    jc.record("h", [{"path": f"/w/{worker}/{i}", "job_id": str(i), "status": "running"}])
"""


def test_twenty_processes_adding_ten_jobs_each_end_with_two_hundred(cache_path: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER, cache_path, str(w)], env=ENV) for w in range(20)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 20
    paths = _paths(cache_path)
    assert len(paths) == 200 and len(set(paths)) == 200


_HOLDER = """
import sys, time
from plams_cli.jobcache import JobCache
jc = JobCache(sys.argv[1])
with jc.store.write() as conn:
    conn.execute("INSERT INTO jobs (hostname, path, mtime) VALUES ('h', '/w/uncommitted', 1)")
    print("holding", flush=True)
    time.sleep(600)
"""


def _holder(cache: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, cache], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_writer_killed_inside_a_transaction_leaves_the_cache_whole(cache_path: str) -> None:
    JobCache(cache_path).record("h", [{"path": "/w/before"}])
    proc = _holder(cache_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stdout is not None
    proc.stdout.close()
    jc = JobCache(cache_path, timeout_s=5)
    jc.record("h", [{"path": "/w/after"}])  # not locked any more
    assert _paths(cache_path) == ["/w/before", "/w/after"]
    conn = sqlite3.connect(cache_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_locked_past_the_timeout_names_the_holder(cache_path: str) -> None:
    JobCache(cache_path).record("h", [{"path": "/w/before"}])
    proc = _holder(cache_path)
    try:
        started = time.monotonic()
        with pytest.raises(LockException, match=f"pid {proc.pid}") as info:
            JobCache(cache_path, timeout_s=0.5).record("h", [{"path": "/w/blocked"}])
        assert time.monotonic() - started < 10
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, PlamsError)
        assert _paths(cache_path) == ["/w/before"]  # reading works while a writer holds it
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def test_wal_mode_and_schema_version(cache_path: str) -> None:
    JobCache(cache_path).record("h", [{"path": "/w/a"}])
    conn = sqlite3.connect(cache_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_a_clear_error(cache_path: str) -> None:
    JobCache(cache_path).record("h", [{"path": "/w/a"}])
    conn = sqlite3.connect(cache_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(CacheVersionError, match="newer plams-cli"):
        JobCache(cache_path, load=True)
    with pytest.raises(CacheVersionError):
        JobCache(cache_path).record("h", [{"path": "/w/b"}])


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make", [
    lambda p: p.write_text("this is not a database, just some text " * 50),
    _foreign,
    lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000),
], ids=["text-file", "foreign-sqlite", "damaged-header"])
def test_foreign_or_corrupt_file_is_one_error_and_untouched(tmp_path: Path, make: object) -> None:
    path = tmp_path / "cache.sqlite"
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    action: Callable[[JobCache], object]
    for action in (lambda jc: jc.load(), lambda jc: jc.record("h", [{"path": "/w/a"}])):
        with pytest.raises(CorruptedCacheError) as info:
            action(JobCache(str(path)))
        assert info.value.exit_code == 2 and str(path) in str(info.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cache.sqlite"]


def test_unwritable_place_is_a_job_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(JobCacheError, match="cannot create the folder") as info:
        JobCache(str(blocker / "cache.sqlite")).record("h", [{"path": "/w/a"}])
    assert info.value.exit_code == 1 and isinstance(info.value, OSError)
