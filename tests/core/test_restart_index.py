"""The restart index (``.plams-index``): ``-r`` and ``-l`` read it instead of unpickling, and never trust it blindly.

Each job's runscript appends its name to a counter file, so a test sees exactly which
jobs ran again. Whatever is done to the index (deleted, garbled, torn, another version)
or to a job folder behind its back, a restart reuses exactly the jobs that are really
finished and runs the rest once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plams_cli import ShellJob, load, load_all
from plams_cli.core import jobindex, jobmanager, pickling
from plams_cli.core.jobindex import INDEX, SavedJob
from plams_cli.core.session import Session
from plams_cli.core.status import JobStatus
from tests.conftest import python_env

NAMES = ("a", "b", "c", "d", "e", "f")


def _run(tmp_path: Path, folder: str, **options: Any) -> Session:
    counter = tmp_path / "counter"
    with Session(str(tmp_path), folder=folder, **options) as session:
        for name in NAMES:
            ShellJob(name=name, runscript=f"echo {name} >> {counter}\necho out-{name}\n").run()
    return session


def _ran(tmp_path: Path) -> Counter[str]:
    counter = tmp_path / "counter"
    return Counter(counter.read_text().split()) if counter.exists() else Counter()


def _status(workdir: Path, name: str) -> str:
    return str(json.loads((workdir / name / f"{name}.job.json").read_text())["status"])


def _saved_ids(workdir: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each job's ``.dill`` in ``workdir``: the same pair after a restart means the very file kept."""
    ids = {}
    for name in NAMES:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(workdir / name / f"{name}.dill")
            ids[name] = (st.st_ino, st.st_mtime_ns)
    return ids


def _check_saved(workdir: Path, before: dict[str, tuple[int, int]], again: set[str], all_kept: bool) -> None:
    """After a reuse, each job's saved state is true: a job run again saved anew (``successful``); a reused one
    kept the very files of its finished job (``successful``, as saved) or, when the index could not vouch for
    them, was pickled anew (``copied``). With ``all_kept`` every reused job kept its files."""
    after = _saved_ids(workdir)
    for name in NAMES:
        if name in again:
            assert after[name] != before.get(name) and _status(workdir, name) == "successful", name
        elif after[name] == before.get(name):
            assert _status(workdir, name) == "successful", name
        else:
            assert not all_kept and _status(workdir, name) == "copied", name


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``.dill`` files read during the test (the index's whole point is that there are none)."""
    seen: list[str] = []
    real = pickling.read_job

    def counting(filename: str) -> Any:
        seen.append(os.path.basename(filename))
        return real(filename)

    monkeypatch.setattr(pickling, "read_job", counting)
    monkeypatch.setattr(jobmanager, "read_job", counting)
    return seen


# --- what is done to the first run's folder, and which jobs must run again -----------------
def _rewrite_index(work: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    entries = [json.loads(line) for line in (work / INDEX).read_text().splitlines() if line]
    change(entries)
    (work / INDEX).write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def _other_version(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        entry["v"] = 2


def _torn(work: Path) -> None:
    data = (work / INDEX).read_bytes()
    (work / INDEX).write_bytes(data[: len(data) - 40])  # the last line cut short, as by a kill


def _replace_dill(work: Path) -> None:
    """``d.dill`` is rewritten in place (same inode) with ``d`` failed: ``d`` is not finished any more."""
    job = pickling.read_job(str(work / "d" / "d.dill"))
    job._status = JobStatus.FAILED
    (work / "d" / "d.dill").write_bytes(pickling._dumps(job))


def _summary_edited(work: Path) -> None:
    """``e.job.json`` says ``failed`` now; its ``.dill`` (the truth) still holds a successful job."""
    summary = json.loads((work / "e" / "e.job.json").read_text())
    summary["status"] = "failed"
    (work / "e" / "e.job.json").write_text(json.dumps(summary))


SABOTAGE: list[tuple[Callable[[Path], object], set[str], bool]] = [
    # (what is done to the folder, the jobs that must run again, whether no .dill may be read)
    (lambda work: None, set(), True),
    (lambda work: (work / INDEX).unlink(), set(), True),
    (lambda work: (work / INDEX).write_bytes(b"\x00garbage\xff{not json\n" * 50), set(), True),
    (_torn, set(), True),
    (lambda work: _rewrite_index(work, _other_version), set(), True),
    (lambda work: shutil.rmtree(work / "b"), {"b"}, True),
    (lambda work: (work / "c" / "c.dill").unlink(), {"c"}, True),
    (_replace_dill, {"d"}, False),
    (_summary_edited, set(), False),
    (lambda work: (work / "f" / "f.job.json").unlink(), set(), False),
]
IDS = ["intact", "index-missing", "index-garbage", "index-torn", "index-other-version",
       "job-folder-deleted", "dill-deleted", "dill-replaced", "summary-edited", "summary-deleted"]


@pytest.mark.parametrize(("sabotage", "again", "lazy"), SABOTAGE, ids=IDS)
def test_restart_reuses_exactly_the_finished_jobs(tmp_path: Path, fresh_config: Any, unpickled: list[str],
                                                  sabotage: Callable[[Path], None], again: set[str],
                                                  lazy: bool) -> None:
    _run(tmp_path, "w")
    work = tmp_path / "w"
    assert (work / INDEX).is_file() and _ran(tmp_path) == Counter(NAMES)
    sabotage(work)
    before = _saved_ids(work)
    unpickled.clear()
    session = _run(tmp_path, "w", restart=True)
    assert _ran(tmp_path) - Counter(NAMES) == Counter(again)  # each job that was not finished ran once more
    assert session.counts() == {"copied": len(NAMES) - len(again), **({"successful": len(again)} if again else {})}
    _check_saved(work, before, again, all_kept=lazy)
    assert sorted(os.listdir(tmp_path)) == ["counter", "w"]  # w.res settled and gone
    if lazy:
        assert unpickled == []
    # The new index holds every job again: the next restart reads no .dill at all, and keeps every one.
    before = _saved_ids(work)
    unpickled.clear()
    session = _run(tmp_path, "w", restart=True)
    assert _ran(tmp_path) - Counter(NAMES) == Counter(again) and unpickled == []
    assert session.counts() == {"copied": len(NAMES)} and _saved_ids(work) == before


@pytest.mark.parametrize(("sabotage", "again", "lazy"), SABOTAGE, ids=IDS)
def test_load_reuses_exactly_the_finished_jobs_and_leaves_the_folder_alone(
        tmp_path: Path, fresh_config: Any, unpickled: list[str], sabotage: Callable[[Path], None], again: set[str],
        lazy: bool) -> None:
    _run(tmp_path, "w")
    work = tmp_path / "w"
    sabotage(work)
    before = {str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*") if p.is_file()}
    unpickled.clear()
    session = _run(tmp_path, "w2", load=[str(work)])
    assert _ran(tmp_path) - Counter(NAMES) == Counter(again)
    assert session.counts().get("copied") == len(NAMES) - len(again)
    assert {str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*") if p.is_file()} == before
    if lazy:
        assert unpickled == []
    for name in set(NAMES) - again:  # hard links of the old job's files, renamed for nothing (same names)
        assert os.path.samefile(work / name / f"{name}.out", tmp_path / "w2" / name / f"{name}.out")


def test_restart_moves_each_reproduced_job_folder_whole(tmp_path: Path, fresh_config: Any) -> None:
    """``-r`` in place: the job folder itself moves (one rename), hidden leftovers of killed writes are dropped."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    folders = {name: os.stat(work / name).st_ino for name in NAMES}
    (work / "a" / ".a.dill.host.1.abc.tmp").write_bytes(b"half a pickle")
    (work / "a" / "notes.txt").write_text("mine\n")
    _run(tmp_path, "w", restart=True)
    assert {name: os.stat(work / name).st_ino for name in NAMES} == folders
    assert (work / "a" / "notes.txt").read_text() == "mine\n"
    assert not list(work.rglob(".*.tmp"))
    again = load(str(work / "a" / "a.dill"))
    assert again.status == JobStatus.SUCCESSFUL and again.results.read_file("$JN.out") == "out-a\n"


def test_restart_keeps_the_saved_files_of_a_job_reused_in_place(tmp_path: Path, fresh_config: Any,
                                                                unpickled: list[str]) -> None:
    """``-r`` in place keeps the moved ``.dill`` and ``.job.json`` as they are: loading gives the first run's job."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    kept = {name: [os.stat(work / name / f"{name}{suffix}") for suffix in (".dill", ".job.json")] for name in NAMES}
    summaries = {name: (work / name / f"{name}.job.json").read_bytes() for name in NAMES}
    _run(tmp_path, "w", restart=True)
    assert unpickled == []
    for name in NAMES:
        for suffix, before in zip((".dill", ".job.json"), kept[name], strict=True):
            now = os.stat(work / name / f"{name}{suffix}")
            assert (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), (name, suffix)
        assert (work / name / f"{name}.job.json").read_bytes() == summaries[name]
    job = load(str(work / "a" / "a.dill"))
    summary = json.loads(summaries["a"])
    assert job.status == JobStatus.SUCCESSFUL and job.timestamps == summary["timestamps"]
    assert {j.name: j.status.value for j in load_all(str(work)).values()} == dict.fromkeys(NAMES, "successful")
    unpickled.clear()
    _run(tmp_path, "w", restart=True)  # and again: still nothing runs, nothing is unpickled
    assert _ran(tmp_path) == Counter(NAMES) and unpickled == []


def test_a_folder_changed_behind_the_index_is_listed(tmp_path: Path, fresh_config: Any) -> None:
    """A job folder whose index entry no longer matches it (a file added, or one removed) is listed, not believed."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    time.sleep(jobindex.SETTLED_NS / 1e9)
    _run(tmp_path, "w", restart=True)  # the index now has each folder's time (the first run's last ones may not)
    assert all('"t":' in line for line in (work / INDEX).read_text().splitlines())
    (work / "a" / "notes.txt").write_text("mine\n")
    (work / "b" / "b.out").unlink()
    with Session(str(tmp_path), folder="w2", load=[str(work)]):
        jobs = {name: ShellJob(name=name, runscript=f"echo {name} >> {tmp_path / 'counter'}\necho out-{name}\n")
                for name in NAMES}
        for job in jobs.values():
            job.run()
    assert _ran(tmp_path) == Counter(NAMES)
    assert "notes.txt" in jobs["a"].results.files and (tmp_path / "w2" / "a" / "notes.txt").read_text() == "mine\n"
    assert "b.out" not in jobs["b"].results.files and not (tmp_path / "w2" / "b" / "b.out").exists()
    for name in NAMES:
        assert sorted(os.listdir(tmp_path / "w2" / name)) == jobs[name].results.files


@pytest.mark.parametrize("link", [True, False], ids=["hard-links", "copies"])
def test_load_links_the_saved_files_of_a_job_it_reuses(tmp_path: Path, fresh_config: Any, link: bool) -> None:
    """``-l`` hard-links the vouched ``.dill`` and ``.job.json`` with the other files; copies pickle the job anew."""
    _run(tmp_path, "w")
    time.sleep(jobindex.SETTLED_NS / 1e9)
    _run(tmp_path, "w", restart=True)  # an index that knows each folder's time: -l links from its file lists
    work, new = tmp_path / "w", tmp_path / "w2"
    before = {name: (work / name / f"{name}.dill").read_bytes() for name in NAMES}
    with Session(str(tmp_path), folder="w2", load=[str(work)]):
        for name in NAMES:
            job = ShellJob(name=name, runscript=f"echo {name} >> {tmp_path / 'counter'}\necho out-{name}\n")
            job.settings.link_files = link
            job.run()
            assert job.status == JobStatus.COPIED
            saved = {f"{name}.dill", f"{name}.job.json"}
            assert set(job.results.files) - saved == set(os.listdir(new / name)) - saved
    assert _ran(tmp_path) == Counter(NAMES)
    for name in NAMES:
        for suffix in (".dill", ".job.json", ".out", ".run"):
            old, copy = work / name / f"{name}{suffix}", new / name / f"{name}{suffix}"
            assert os.path.samefile(old, copy) is link, (name, suffix)
        assert (work / name / f"{name}.dill").read_bytes() == before[name]
        assert _status(new, name) == ("successful" if link else "copied") and _status(work, name) == "successful"
    assert load(str(new / "a" / "a.dill")).status == (JobStatus.SUCCESSFUL if link else JobStatus.COPIED)
    assert load(str(work / "a" / "a.dill")).status == JobStatus.SUCCESSFUL


def test_a_job_class_with_its_own_pickle_is_pickled_when_reused_in_place(tmp_path: Path, fresh_config: Any) -> None:
    """A class overriding ``pickle()`` (PLAMS's API) gets it called, as for any other copied job."""
    _run(tmp_path, "w")
    calls: list[str] = []

    class Counting(ShellJob):
        def pickle(self, filename: str | None = None) -> None:
            calls.append(self.name)
            super().pickle(filename)

    with Session(str(tmp_path), folder="w", restart=True):
        job = Counting(name="a", runscript=f"echo a >> {tmp_path / 'counter'}\necho out-a\n")
        job.run()
        assert job.status == JobStatus.COPIED
    assert calls == ["a"] and _ran(tmp_path) == Counter(NAMES)


def test_a_reused_job_answers_the_script_and_loads(tmp_path: Path, fresh_config: Any) -> None:
    """After ``-r`` the copied jobs read their results; ``load``/``load_all`` give them back."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    with Session(str(tmp_path), folder="w", restart=True):
        job = ShellJob(name="a", runscript=f"echo a >> {tmp_path / 'counter'}\necho out-a\n")
        job.run()
        assert job.ok() and job.status == JobStatus.COPIED
        assert job.results.read_file("$JN.out") == "out-a\n" and "a.out" in job.results.files
        assert job.results.grep_output("out-") == ["out-a"]
    loaded = load_all(str(work))
    assert sorted(j.name for j in loaded.values()) == sorted(NAMES)
    assert {j.name: j.status.value for j in loaded.values()} == dict.fromkeys(NAMES, "successful")  # as saved
    assert _ran(tmp_path) == Counter(NAMES)


def test_a_saved_job_is_unpickled_only_when_something_needs_it(tmp_path: Path, fresh_config: Any,
                                                             unpickled: list[str]) -> None:
    _run(tmp_path, "w")
    work = tmp_path / "w"
    with Session(str(tmp_path), folder="w2", load=[str(work)]) as session:
        assert session.manager is not None
        saved = [job for job in session.manager.hashes.values() if isinstance(job, SavedJob)]
        assert sorted(job.name for job in saved) == sorted(NAMES) and unpickled == []
        first = min(saved, key=lambda job: job.name)
        assert first.ok() and first.status == JobStatus.SUCCESSFUL and first.results.done.is_set()
        assert first.registered_hash and not first.loaded and "(saved)" in repr(first)
        assert unpickled == []
        assert first.results.read_file("$JN.out") == "out-a\n"  # reading results needs the object
        assert unpickled == ["a.dill"] and first.loaded
        assert first.settings.runscript.shebang == "#!/bin/sh"  # anything else too, from the same object
        assert unpickled == ["a.dill"]


def test_index_lines_are_appended_and_a_torn_line_does_not_hide_the_next(tmp_path: Path, fresh_config: Any) -> None:
    """A killed writer leaves a line without its end; the next entry, appended to it, is still read."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    lines = (work / INDEX).read_bytes().splitlines(keepends=True)
    assert len(lines) == len(NAMES) and all(json.loads(line)["v"] == 1 for line in lines)
    (work / INDEX).write_bytes(b"".join(lines[:-1]) + lines[-1][:30] + lines[-1])  # torn, then whole again
    known: dict[str, Any] = {}
    jobindex._read_index(str(work), known)
    assert sorted(os.path.basename(path) for path in known) == sorted(f"{name}.dill" for name in NAMES)


@pytest.mark.parametrize("garbage", [b"[1, 2]\n3,4\n{}\n", b"\xff\xfe not json\n"], ids=["ascii", "not-ascii"])
def test_each_whole_index_line_is_read_with_its_own_bytes(tmp_path: Path, fresh_config: Any, garbage: bytes) -> None:
    """Lines that are not one entry (other JSON values, bytes that are not ASCII, spaces) leave the others alone."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    lines = (work / INDEX).read_bytes().splitlines(keepends=True)
    first, second, *rest = lines
    spaced = second[:-1] + b"  \n"  # still an entry, parsed alone
    (work / INDEX).write_bytes(garbage + first + b"\n" + spaced + first[:-1] + first + b"".join(rest))
    known: dict[str, Any] = {}
    jobindex._read_index(str(work), known)
    assert sorted(os.path.basename(path) for path in known) == sorted(f"{name}.dill" for name in NAMES)
    by_line = {json.loads(line)["p"]: line.rstrip(b"\n") for line in [first, spaced, *rest]}
    assert {entry["p"]: entry[jobindex._LINE] for entry in known.values()} == by_line


def test_restart_after_a_killed_restart_reads_both_indexes(tmp_path: Path, fresh_config: Any,
                                                          unpickled: list[str]) -> None:
    """``w.res`` (the first run) with the killed restart's ``w`` nested in it: each has its index."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    work.rename(tmp_path / "w.res")
    counter = tmp_path / "counter"
    with Session(str(tmp_path), folder="w"):  # what the killed restart had finished: g
        ShellJob(name="g", runscript=f"echo g >> {counter}\n").run()
    unpickled.clear()
    with Session(str(tmp_path), folder="w", restart=True) as session:
        for name in (*NAMES, "g"):
            ShellJob(name=name, runscript=f"echo {name} >> {counter}\n" + ("" if name == "g" else
                                                                            f"echo out-{name}\n")).run()
    assert _ran(tmp_path) == Counter((*NAMES, "g")) and unpickled == []
    assert session.counts() == {"copied": len(NAMES) + 1}
    assert sorted(os.listdir(tmp_path)) == ["counter", "w"]


def test_jobs_a_restart_did_not_reproduce_keep_their_entries(tmp_path: Path, fresh_config: Any,
                                                             unpickled: list[str]) -> None:
    """Moved into the new folder when a restart ends, they get a line in its index: the next -r reads no .dill."""
    _run(tmp_path, "w")
    work = tmp_path / "w"
    with Session(str(tmp_path), folder="w", restart=True) as session:
        ShellJob(name="a", runscript=f"echo a >> {tmp_path / 'counter'}\necho out-a\n").run()
    assert session.settled is not None and len(session.settled.moved) == len(NAMES) - 1
    entries = [json.loads(line) for line in (work / INDEX).read_text().splitlines()]
    assert sorted(entry["p"] for entry in entries) == sorted(f"{name}/{name}.dill" for name in NAMES)
    moved = {entry["n"]: entry for entry in entries if entry["n"] != "a"}
    assert all(entry["s"] == "successful" and f"{name}.out" in entry["f"] for name, entry in moved.items())
    unpickled.clear()
    _run(tmp_path, "w", restart=True)
    assert unpickled == [] and _ran(tmp_path) == Counter(NAMES)


_KILLED_RESTART = """
import os, signal, sys
from plams_cli import ShellJob, config
from plams_cli.core.session import Session

path, counter, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
session = Session(path, folder="w", restart=True)
session.__enter__()
config.log.stdout = 0
for name in names:
    ShellJob(name=name, runscript=f"echo {name} >> {counter}\\necho out-{name}\\n").run()
os.kill(os.getpid(), signal.SIGKILL)  # the jobs are copied and saved; the index batch is not written yet
"""


def test_a_restart_killed_before_its_index_batch_loses_nothing(tmp_path: Path, fresh_config: Any,
                                                               unpickled: list[str]) -> None:
    """Index entries of saved jobs go out in batches; a kill loses the batch, never a finished job.

    The killed restart leaves whole files only (no temporary file, every ``.dill`` loads as the
    copied job it saved), an index without their entries, and the next ``-r`` reuses every
    job from the summaries, reading no ``.dill`` and running nothing again.
    """
    _run(tmp_path, "w")
    work = tmp_path / "w"
    first_index = (work / INDEX).read_bytes()
    assert len(first_index.splitlines()) == len(NAMES) and len(NAMES) < jobindex.BATCH
    done = subprocess.run([sys.executable, "-c", _KILLED_RESTART, str(tmp_path), str(tmp_path / "counter"),
                           ",".join(NAMES)], env=python_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (tmp_path / "w.res").is_dir() and not (work / INDEX).exists()  # the batch died with the process
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    for name in NAMES:  # kept as the first run saved them
        assert _status(work, name) == "successful"
        assert pickling.read_job(str(work / name / f"{name}.dill")).status == JobStatus.SUCCESSFUL
    unpickled.clear()
    session = _run(tmp_path, "w", restart=True)
    assert _ran(tmp_path) == Counter(NAMES) and unpickled == []
    assert session.counts() == {"copied": len(NAMES)}
    assert sorted(os.listdir(tmp_path)) == ["counter", "w"]
    assert sorted(json.loads(line)["n"] for line in (work / INDEX).read_text().splitlines()) == sorted(NAMES)


def test_index_entries_are_written_in_batches_and_at_finish(tmp_path: Path, fresh_config: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobindex, "BATCH", 4)
    counter = tmp_path / "counter"
    with Session(str(tmp_path), folder="w") as session:
        assert session.manager is not None
        index = Path(session.manager.workdir) / INDEX
        for number, name in enumerate(NAMES, 1):
            ShellJob(name=name, runscript=f"echo {name} >> {counter}\n").run()
            lines = index.read_text().splitlines() if index.exists() else []
            assert len(lines) == (4 if number >= 4 else 0)  # a full batch goes out at once
    assert sorted(json.loads(line)["n"] for line in index.read_text().splitlines()) == sorted(NAMES)


def test_loaded_jobs_are_frozen_for_the_garbage_collector_while_the_session_lasts(tmp_path: Path,
                                                                                 fresh_config: Any) -> None:
    import gc

    _run(tmp_path, "w")
    before = gc.get_freeze_count()
    with Session(str(tmp_path), folder="w2", load=[str(tmp_path / "w")]) as session:
        assert session.manager is not None
        saved = [job for job in session.manager.hashes.values() if isinstance(job, SavedJob)]
        assert len(saved) == len(NAMES) and gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0  # all of it is back in view


@pytest.mark.parametrize("path", ["/a/b", "/a//b", "/a/./b", "/a/../b", "/a/b/", "/a/.hidden", "/a/b/..", "a/b", "/",
                                  "//a"], ids=lambda p: p)
def test_normal_path_is_normpath(path: str) -> None:
    from plams_cli.core._files import normal_path

    assert normal_path(path) == os.path.normpath(path)


def test_a_folder_time_goes_into_the_index_only_once_it_is_settled(tmp_path: Path) -> None:
    """A time younger than SETTLED_NS could miss a change made in the same clock tick: it is left out."""
    folder = tmp_path / "job"
    folder.mkdir()
    line = b'{"v":1,"p":"job/job.dill"}'
    now = time.time_ns()
    assert jobindex._timed(line, str(folder), now) == line  # just made: not settled
    old = now - 2 * jobindex.SETTLED_NS
    os.utime(folder, ns=(old, old))
    assert json.loads(jobindex._timed(line, str(folder), now))["t"] == old
    assert jobindex._timed(line, str(tmp_path / "gone"), now) == line
    assert jobindex._timed(line, None, now) == line


def test_a_session_collects_garbage_less_often_and_puts_the_thresholds_back(tmp_path: Path,
                                                                            fresh_config: Any) -> None:
    import gc

    from plams_cli.core import session as session_module

    before = gc.get_threshold()
    with Session(str(tmp_path), folder="w"):
        during = gc.get_threshold()
        wanted = zip(before[:2], session_module.GC_THRESHOLD, strict=True)
        assert during[:2] == tuple(max(old, new) for old, new in wanted)
        assert during[2:] == before[2:]
    assert gc.get_threshold() == before


def test_a_folder_changed_just_now_is_not_even_looked_at_until_its_time_can_be_settled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines of folders the run just filled (a save, -l's links) get no time when written at once, without a stat."""
    old = time.time_ns() - 2 * jobindex.SETTLED_NS
    folders = []
    for name in ("fresh", "moved"):
        folder = tmp_path / name
        folder.mkdir()
        os.utime(folder, ns=(old, old))  # settled, as far as the file system tells
        folders.append(str(folder))
    index = str(tmp_path / jobindex.INDEX)
    statted: list[str] = []
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        statted.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr("plams_cli.core.jobindex.os.stat", stat)
    jobindex._queue(index, b'{"v":1,"p":"fresh/x.dill"}', folders[0], fresh=True)
    jobindex._queue(index, b'{"v":1,"p":"moved/y.dill"}', folders[1])  # (carried in: its time is old)
    jobindex.flush()
    fresh, moved = (json.loads(line) for line in Path(index).read_bytes().splitlines())
    assert "t" not in fresh and moved["t"] == old
    assert statted == [folders[1]]
