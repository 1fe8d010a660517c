"""MultiJob.walk(): the MultiJob and every descendant, depth first, children as a list or a dict."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

from plams_cli import JobManager, ShellJob, config
from plams_cli.core.jobs import MultiJob, SingleJob


def _tree() -> MultiJob:
    inner = MultiJob(name="inner", children={"y": SingleJob(name="c"), "x": SingleJob(name="d")})
    empty = MultiJob(name="empty", children={})
    return MultiJob(name="outer", children=[SingleJob(name="a"), inner, empty, SingleJob(name="b")])


def test_depth_first_each_before_its_children_in_their_order() -> None:
    # dict children in insertion order (y then x), as iterating the MultiJob gives them
    assert [job.name for job in _tree().walk()] == ["outer", "a", "inner", "c", "d", "empty", "b"]


def test_a_multijob_without_children_yields_itself() -> None:
    job = MultiJob(name="alone")
    assert list(job.walk()) == [job]


def test_deep_nesting_needs_no_recursion() -> None:
    leaf = SingleJob(name="leaf")
    job: MultiJob | SingleJob = leaf
    for depth in range(5000):  # far deeper than the interpreter's recursion limit
        job = MultiJob(name=f"m{depth}", children=[job])
    walked = list(job.walk())  # type: ignore[union-attr]
    assert len(walked) == 5001 and walked[-1] is leaf


def test_the_docstring_example_runs() -> None:
    finder = doctest.DocTestFinder()
    tests = finder.find(MultiJob.walk, "walk", globs={"MultiJob": MultiJob, "SingleJob": SingleJob})
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).attempted == 3
    assert runner.summarize(verbose=False).failed == 0


def test_a_loaded_nested_multijob_makes_every_descendant_known(tmp_path: Path, fresh_config: object) -> None:
    """JobManager.load_job walks the tree: each leaf's hash and folder join the manager."""
    first = JobManager(config.jobmanager, path=str(tmp_path), folder="one")
    inner = MultiJob(name="inner", children={"y": ShellJob(name="c", runscript="echo c"),
                                             "x": ShellJob(name="d", runscript="echo d")})
    outer = MultiJob(name="outer", children=[ShellJob(name="a", runscript="echo a"), inner])
    outer.run(jobmanager=first)
    assert outer.ok()
    second = JobManager(config.jobmanager, path=str(tmp_path), folder="two")
    assert outer.path is not None
    loaded = second.load_job(os.path.join(outer.path, "outer.dill"))
    leaves = [job for job in loaded.walk() if not isinstance(job, MultiJob)]  # type: ignore[attr-defined]
    assert [job.name for job in leaves] == ["a", "c", "d"]
    assert {second.hashes[job.hash()] for job in leaves} == set(leaves)
    assert sorted(os.path.relpath(p, outer.path) for p in second._loaded_paths) == [
        ".", "a", "inner", os.path.join("inner", "c"), os.path.join("inner", "d")]
