"""A regex listing asks SQL for the rows holding its required text first: the same rows as a full scan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plams_cli.jobcache import JobCache
from plams_cli.jobcache.table import records_from_rows, required_text

PATTERNS = [
    r"job12\d$", r"^/home", r"ams|shell", r"(?i)AMSJOB", r"job1?2", r"a.b", r"job(12|34)", r"x*",
    r"\.run$", r"running", r"plams\.1/job1[0-9]", r"[j]ob7", r"jo+b", r"\bjob3\b", r"job\d{2}\.in",
    r"finished|running", r"(?:job)5", r"Shell(Job)?", r"^$", r"\d+",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> JobCache:
    path = Path(tmp_path_factory.mktemp("prefilter")) / "cache.sqlite"
    jc = JobCache(str(path))
    jc.record("vm", [{"path": f"/home/u/plams.{i // 10}/job{i}", "job_id": str(100 + i),
                      "program": "ShellJob" if i % 3 else "AMSJob", "status": "finished" if i % 4 else "running",
                      "input_fname": f"job{i}.in", "submit": f"/home/u/plams.{i // 10}/job{i}/job{i}.run",
                      "comment": f"job job{i}", "mtime": 1.0 + i} for i in range(300)])
    return jc


@pytest.mark.parametrize("pattern", PATTERNS, ids=range(len(PATTERNS)))
def test_prefiltered_listing_equals_the_full_scan(cache: JobCache, pattern: str) -> None:
    regex = re.compile(pattern)
    full = records_from_rows(cache.store.rows(order="mtime"), regex)
    text = required_text(regex)
    prefiltered = records_from_rows(cache.store.rows(literal=text, order="mtime"), regex)
    assert prefiltered == full


@pytest.mark.parametrize(("pattern", "text"), [
    (r"job12\d$", "job12"), (r"ams|shell", None), (r"(?i)AMS", None), (r"a?bcd*e", "bc"),
    (r"x*", None), (r"\.run$", ".run"), (r"(job)5", "5"),
], ids=["prefix", "alternatives", "ignorecase", "repeats", "star", "escaped", "group"])
def test_required_text(pattern: str, text: str | None) -> None:
    assert required_text(re.compile(pattern)) == text
