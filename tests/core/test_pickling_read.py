"""The read path of saved jobs (``read_job``, ``load_all``, ``load_tree``) gives what dill gives.

The fast path (the C unpickler, one read per file, no collector while loading) is checked
side by side against the plain way: ``dill.loads`` of every ``.dill`` found by walking
the folder as ``load_tree`` documents it.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, cast

import dill
import pytest

from plams_cli import MultiJob, ShellJob, load_all
from plams_cli.core import pickling
from plams_cli.core.job import Job
from plams_cli.core.pickling import load_tree, read_job
from plams_cli.errors import FileError
from tests.conftest import python_env
from tests.core.jobkinds import EchoJob


def echo(name: str, value: str) -> EchoJob:
    job = EchoJob(name=name)
    job.settings.input.value = value
    return job


def _reference(root: str) -> tuple[dict[str, Job], list[str]]:
    """The jobs under ``root`` the plain way: ``os.path.isfile`` then ``dill.loads``, folder by folder."""
    loaded: dict[str, Job] = {}
    bad: list[str] = []

    def visit(folder: str) -> None:
        for name in sorted(os.listdir(folder)):
            sub = os.path.join(folder, name)
            if not os.path.isdir(sub) or os.path.islink(sub):
                continue
            dill_file = os.path.join(sub, name + ".dill")
            if os.path.isfile(dill_file):
                try:
                    with open(dill_file, "rb") as handle:
                        job = dill.loads(handle.read())
                    assert isinstance(job, Job)
                except Exception:  # noqa: BLE001 - any unreadable file counts as bad
                    bad.append(dill_file)
                    visit(sub)
                    continue
                loaded[dill_file] = job
            else:
                visit(sub)

    visit(root)
    return loaded, bad


def _fingerprint(job: Job, path: str | None = None) -> dict[str, Any]:
    """What a loaded job is: class, state, settings, results, its children the same way."""
    state = {k: (f"function {v.__qualname__}" if isinstance(v, types.FunctionType) else v)
             for k, v in job.__getstate__().items() if k not in ("settings", "results", "children", "path")}
    data: dict[str, Any] = {
        "class": type(job), "state": state, "settings": job.settings.as_dict(),
        "files": list(job.results.files), "path": job.path if path is None else path,
        "done": job.results.done.is_set() and job.results.finished.is_set(), "results_job": job.results.job is job,
    }
    if isinstance(job, MultiJob):
        data["children"] = [_fingerprint(child, os.path.join(data["path"], child.name)) for child in job]
        assert all(child.parent is job for child in job)
    return data


@pytest.fixture
def workdir(tmp_path: Path, fresh_config: object) -> Path:
    """A finished run: single jobs, nested MultiJobs, a dill-only job, then damage of every kind."""
    from plams_cli import finish, init

    manager = init(path=str(tmp_path), folder="run", quiet=True)
    for i in range(4):
        echo(f"e{i}", str(i)).run()
    inner = MultiJob(name="inner", children=[echo("deep0", "d0"), echo("deep1", "d1")])
    MultiJob(name="outer", children={"a": echo("a", "a"), "inner": inner}).run()
    odd = ShellJob(name="odd", runscript="echo odd")
    odd.transform = lambda x: 2 * x  # type: ignore[attr-defined]  # the C pickler cannot: dill saves the job
    odd.run()
    assert odd.ok()
    finish()
    run = Path(manager.workdir)
    (run / "e1" / "e1.dill").write_bytes(b"\x80\x05garbage")  # corrupt beside good ones
    cut = (run / "e2" / "e2.dill").read_bytes()
    (run / "e2" / "e2.dill").write_bytes(cut[: len(cut) // 2])  # truncated
    (run / "loose" / "kept").mkdir(parents=True)  # a folder without a job, a saved one inside
    (run / "loose" / "kept" / "kept.dill").write_bytes((run / "e0" / "e0.dill").read_bytes())
    (run / "folder" / "folder.dill").mkdir(parents=True)  # a folder named like a saved job
    (run / "pipe").mkdir()
    os.mkfifo(run / "pipe" / "pipe.dill")  # would block a plain open()
    (run / "dangling").mkdir()
    (run / "dangling" / "dangling.dill").symlink_to(run / "nowhere")
    (run / "linked").symlink_to(run / "e3")  # a link to a job folder is not followed
    return run


def test_load_tree_gives_the_jobs_dill_gives(workdir: Path) -> None:
    ours, bad = load_tree(str(workdir))
    reference, reference_bad = _reference(str(workdir))
    assert sorted(bad) == sorted(reference_bad) == [str(workdir / "e1" / "e1.dill"), str(workdir / "e2" / "e2.dill")]
    assert sorted(ours) == sorted(reference)
    assert {os.path.relpath(k, workdir) for k in ours} == {
        "e0/e0.dill", "e3/e3.dill", "outer/outer.dill", "odd/odd.dill", "loose/kept/kept.dill"}
    for key, job in ours.items():
        assert _fingerprint(job) == _fingerprint(reference[key], os.path.dirname(key)), key
    outer = ours[str(workdir / "outer" / "outer.dill")]
    deep = cast(dict[str, MultiJob], cast(MultiJob, outer).children)["inner"].children[1]
    assert deep.path == str(workdir / "outer" / "inner" / "deep1") and cast(MultiJob, deep.parent).parent is outer
    assert deep.results.read_file("out") == "d1"
    assert ours[str(workdir / "odd" / "odd.dill")].transform(21) == 42  # type: ignore[attr-defined]


def test_load_all_registers_every_job_with_the_manager(workdir: Path, run_in: object) -> None:
    from plams_cli import config

    jobs = load_all(str(workdir))
    manager = config.default_jobmanager
    assert all(job.jobmanager is manager for job in jobs.values())
    # a duplicate of any of them is not run again (loose/kept is a copy of e0: e0 comes first)
    hashed = [job for job in jobs.values() if job._hash is not None]  # a MultiJob has none
    assert len(hashed) == len(jobs) - 1
    assert all(manager.hashes[job._hash]._hash == job._hash for job in hashed)
    assert manager.hashes[jobs[str(workdir / "e0" / "e0.dill")]._hash] is jobs[str(workdir / "e0" / "e0.dill")]


@pytest.mark.parametrize("collecting", [True, False], ids=["gc-on", "gc-off"])
def test_the_collector_is_as_it_was_after_loading(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                  collecting: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if collecting else gc.disable)()
        load_tree(str(workdir))
        assert gc.isenabled() is collecting

        def boom(filename: str) -> Job:
            raise RuntimeError("interrupted")

        monkeypatch.setattr(pickling, "read_job", boom)
        monkeypatch.setattr(pickling, "_default_manager", lambda: None)
        with pytest.raises(RuntimeError, match="interrupted"):
            load_tree(str(workdir))
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()


def test_read_job_says_what_is_there_instead(workdir: Path) -> None:
    with pytest.raises(FileError, match="is a folder"):
        read_job(str(workdir / "folder" / "folder.dill"))
    with pytest.raises(FileError, match="not a regular file"):
        read_job(str(workdir / "pipe" / "pipe.dill"))
    with pytest.raises(FileError, match="no saved job at"):
        read_job(str(workdir / "dangling" / "dangling.dill"))
    assert read_job(str(workdir / "e0" / "e0.dill")).name == "e0"


def test_a_file_that_grows_while_read_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:  # the size fstat saw before the file grew
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 3, *info[7:]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fstat", stale_fstat)
        assert pickling._read_regular(str(path)) == b"x" * 10


SAVE = textwrap.dedent("""
    import sys
    from plams_cli import SingleJob, config, init, finish

    class ScriptJob(SingleJob):
        def get_input(self):
            return ""
        def get_runscript(self):
            return "echo 6"
        def answer(self):
            return "saved"

    config.log.stdout = 0
    init(path=sys.argv[1], folder="w")
    ScriptJob(name="s").run()
    finish()
""")

LOAD = textwrap.dedent("""
    import json, sys
    import plams_cli
    from plams_cli.core.pickling import load_tree
    {define}
    jobs, _ = load_tree(sys.argv[1])
    fast = jobs[sys.argv[1] + "/s/s.dill"]
    imported = "dill" in sys.modules  # before the reference below imports it
    import dill
    plain = dill.loads(open(sys.argv[1] + "/s/s.dill", "rb").read())
    print(json.dumps({{"same_class": type(fast) is type(plain), "main_class": type(fast) is globals().get("ScriptJob"),
                      "answer": fast.answer(), "plain_answer": plain.answer(), "dill_imported": imported}}))
""")

OWN_CLASS = """
class ScriptJob(plams_cli.SingleJob):
    def answer(self):
        return "the loader's"
"""


@pytest.mark.parametrize(("define", "expected"), [
    ("", {"same_class": True, "main_class": False, "answer": "saved", "plain_answer": "saved"}),
    (OWN_CLASS, {"same_class": True, "main_class": True, "answer": "the loader's", "plain_answer": "the loader's"}),
], ids=["loader-without-the-class", "loader-with-a-class-of-that-name"])
def test_a_script_class_loads_as_dill_loads_it(tmp_path: Path, define: str, expected: dict[str, object]) -> None:
    """dill gives a job of a ``__main__`` class the class of that name in the loading ``__main__``; so do we."""
    (tmp_path / "save.py").write_text(SAVE)
    subprocess.run([sys.executable, str(tmp_path / "save.py"), str(tmp_path)], check=True, env=python_env(),
                   timeout=60)
    (tmp_path / "load.py").write_text(LOAD.format(define=define))
    out = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(tmp_path / "w")], check=True,
                         capture_output=True, text=True, env=python_env(), timeout=60)
    result = json.loads(out.stdout)
    assert result.pop("dill_imported") is True  # the class was saved by value: dill rebuilds it
    assert result == expected


def test_ordinary_jobs_load_without_importing_dill(workdir: Path) -> None:
    code = ("import sys\nfrom plams_cli import load_all\n"
            f"jobs = load_all({str(workdir)!r})\n"
            "print(len(jobs), sorted(m for m in sys.modules if m.split('.')[0] == 'dill'))\n")
    shutil_free = workdir.parent / "plain"
    shutil_free.mkdir()
    for name in ("e0", "e3", "outer"):
        os.rename(workdir / name, shutil_free / name)
    out = subprocess.run([sys.executable, "-c", code.replace(str(workdir), str(shutil_free))], check=True,
                         capture_output=True, text=True, env=python_env(), timeout=60)
    assert out.stdout.split(maxsplit=1) == ["3", "[]\n"]


def test_a_read_that_stops_short_is_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 40)
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 1000)))  # as Linux stops at 2 GiB
    assert pickling._read_regular(str(path)) == bytes(range(256)) * 40
