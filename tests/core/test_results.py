"""Results: the files of a job and the ways to read them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plams_cli import ShellJob
from plams_cli.errors import FileError

OUTPUT = """header
energy = -1.5
BEGIN block
a 1
b 2
END block
BEGIN block
c 3
END block
Energy = -2.5
"""


@pytest.fixture
def done(run_in: object) -> ShellJob:
    job = ShellJob(name="res", runscript=f"cat <<'EOF'\n{OUTPUT}EOF\nmkdir sub; echo deep > sub/inner.txt")
    job.run()
    assert job.ok()
    return job


def test_files_and_paths(done: ShellJob) -> None:
    results = done.results
    assert results.files == sorted(["res.in", "res.run", "res.out", "res.err", os.path.join("sub", "inner.txt")])
    assert results["$JN.out"] == os.path.join(done.path, "res.out")
    assert os.path.isabs(results["sub/inner.txt"])
    assert "res.out" in results and "$JN.err" in results and "absent" not in results
    with pytest.raises(FileError, match="has no file absent"):
        results["absent"]


def test_grep_file_and_grep_output(done: ShellJob) -> None:
    assert done.results.grep_output("energy") == ["energy = -1.5"]
    assert done.results.grep_file("$JN.out", "energy", "-i") == ["energy = -1.5", "Energy = -2.5"]
    assert done.results.grep_file("res.out", "BEGIN", "-A 1") == ["BEGIN block", "a 1", "--", "BEGIN block", "c 3"]
    assert done.results.grep_output("no such line") == []


def test_regex_file(done: ShellJob) -> None:
    assert done.results.regex_file("$JN.out", r"^[Ee]nergy = (\S+)$") == ["-1.5", "-2.5"]


def test_get_file_chunk(done: ShellJob) -> None:
    results = done.results
    # PLAMS's counting (checked against PLAMS in test_plams_compat): match=0 is every block, 1 the first
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END") == ["a 1", "b 2", "c 3"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1) == ["a 1", "b 2"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=2) == ["c 3"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1, inc_begin=True, inc_end=True) == [
        "BEGIN block", "a 1", "b 2", "END block"]
    assert results.get_file_chunk("$JN.out", begin="BEGIN", end="END", match=1,
                                  process=lambda line: line.split()[1]) == ["1", "2"]


def test_rename(done: ShellJob) -> None:
    done.results.rename("$JN.out", "renamed.txt")
    assert "renamed.txt" in done.results and "res.out" not in done.results
    assert Path(done.path, "renamed.txt").read_text().startswith("header")
    assert not Path(done.path, "res.out").exists()


def test_wait_returns_the_results(done: ShellJob) -> None:
    assert done.results.wait() is done.results
