"""Unit tests of the restart steps and the working folders' marker, lock and trash (moved from tests/cli)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plams_cli import errors
from plams_cli.core import restart, workdir


# --- restart steps --------------------------------------------------------------------
def _workdir(path: Path, *jobs: str) -> Path:
    path.mkdir()
    (path / "logfile").write_text("")
    for job in jobs:
        (path / job).mkdir()
        (path / job / f"{job}.dill").write_bytes(b"x")
    return path


def test_find_latest_prefers_newest_logfile_and_maps_res(tmp_path: Path) -> None:
    old = _workdir(tmp_path / "old", "a")
    _workdir(tmp_path / "new.res", "b")
    (tmp_path / "plain").mkdir()
    os.utime(old / "logfile", (1, 1))
    assert workdir.find_latest(str(tmp_path)) == "new"
    assert workdir.find_latest(str(tmp_path / "plain")) is None


@pytest.mark.parametrize(
    ("entries", "expected"),
    [(["logfile", ".plams-run"], True), (["logfile", "job/job.dill"], True), (["logfile", "job/job.run"], True),
     (["logfile"], False), (["logfile", "notes.txt", "sub/data.txt"], False), ([".plams-run"], False)],
    ids=["marker", "legacy-saved-job", "legacy-failed-job", "logfile-only", "user-folder", "no-logfile"],
)
def test_is_plams_run(tmp_path: Path, entries: list[str], expected: bool) -> None:
    for entry in entries:
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry).write_text("x")
    assert workdir.is_plams_run(str(tmp_path)) is expected


def test_find_latest_skips_user_folders_even_newer_ones(tmp_path: Path) -> None:
    run = _workdir(tmp_path / "run", "a")
    os.utime(run / "logfile", (1, 1))
    user = tmp_path / "mine"
    user.mkdir()
    (user / "logfile").write_text("my notes\n")
    assert workdir.find_latest(str(tmp_path)) == "run"


def test_set_aside_moves_then_nests_when_res_exists(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "w", "a")
    res = str(work) + ".res"
    assert restart.set_aside(str(work), res) == res
    assert not work.exists() and (tmp_path / "w.res" / "a" / "a.dill").exists()
    _workdir(work, "b")
    nested = restart.set_aside(str(work), res)
    assert nested == str(tmp_path / "w.res" / "_interrupted_restart")
    assert (tmp_path / "w.res" / "_interrupted_restart" / "b" / "b.dill").exists()
    assert restart.set_aside(str(work), res) is None  # nothing left to move


def test_target_strips_interrupted_levels(tmp_path: Path) -> None:
    res = str(tmp_path / "w.res")
    inner = os.path.join(res, "_interrupted_restart", "_interrupted_restart.002", "m", "c")
    assert restart._target(str(tmp_path / "w"), res, inner) == str(tmp_path / "w" / "m" / "c")


def test_remove_tree_renames_before_deleting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _workdir(tmp_path / "w.res", "a")
    seen: list[str] = []
    monkeypatch.setattr("plams_cli.core.workdir.shutil.rmtree", lambda path, ignore_errors=False: seen.append(path))
    workdir.remove_tree(str(res))
    assert not res.exists() and seen and os.path.basename(seen[0]) == f".plams-trash.{os.getpid()}.w.res"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_clear_trash_deletes_only_what_dead_processes_left(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    for name in (f".plams-trash.{dead}.w.res", f".plams-trash.{alive}.v.res", ".plams-trash.old.res", "w.res"):
        _workdir(tmp_path / name, "a")
    removed = workdir.clear_trash(str(tmp_path))
    assert {os.path.basename(path) for path in removed} == {".plams-trash.old.res", f".plams-trash.{dead}.w.res"}
    assert set(os.listdir(tmp_path)) == {f".plams-trash.{alive}.v.res", "w.res"}


def _marked(path: Path, made_as: str) -> Path:
    _workdir(path, "a")
    (path / ".plams-run").write_text(json.dumps({"made_by": "plams-cli", "folder": made_as}))
    return path


def test_a_folder_the_user_named_res_is_no_restart_leftover(tmp_path: Path) -> None:
    """``calc.res`` made by ``plams -f calc.res`` is a run of its own; ``w.res`` made as ``w`` is a leftover."""
    _marked(tmp_path / "calc.res", "calc.res")
    assert workdir.find_latest(str(tmp_path)) == "calc.res"
    with pytest.raises(errors.NotRestartableError, match="working folder of its own"):
        restart.restart_target(str(tmp_path), "calc")
    _marked(tmp_path / "w.res", "w")
    os.utime(tmp_path / "calc.res" / "logfile", (1, 1))
    assert workdir.find_latest(str(tmp_path)) == "w"
    assert restart.restart_target(str(tmp_path), "w") == (str(tmp_path / "w"), str(tmp_path / "w.res"))


def test_restart_lock(tmp_path: Path) -> None:
    """A run's lock on its marker keeps -r off; it goes with the descriptor (or the process)."""
    work = tmp_path / "w"
    _workdir(work)
    held = workdir.mark_workdir(str(work), [])
    assert held is not None
    assert json.loads((work / ".plams-run").read_text())["folder"] == "w"
    with pytest.raises(errors.FolderInUseError, match=rf"is in use by plams \(pid {os.getpid()}\)"):
        workdir.lock_for_restart(str(work), str(work) + ".res")
    os.close(held)
    locks = workdir.lock_for_restart(str(work), str(work) + ".res")
    assert len(locks) == 1
    for fd in locks:
        os.close(fd)


def test_log_history_is_appended_once_after_a_killed_settle(tmp_path: Path) -> None:
    """A settle killed after appending left ``w/logfile.previous``; the next one must not append the same logs again."""
    res = tmp_path / "w.res"
    res.mkdir()
    (res / "logfile.previous").write_text("run 1\n")
    (res / "logfile").write_text("run 2\n")
    nested = res / "_interrupted_restart"
    nested.mkdir()
    (nested / "logfile.previous").write_text("run 1\nrun 2\n")  # what the killed settle wrote
    (nested / "logfile").write_text("run 3\n")
    work = tmp_path / "w"
    work.mkdir()
    report = restart.SettleReport()
    restart._keep_other_entries(str(res), str(work), set(), report)
    assert (work / "logfile.previous").read_text() == "run 1\nrun 2\nrun 3\n"
    assert report.logs == 2 and set(os.listdir(work)) == {"logfile.previous"}


def test_restart_target(tmp_path: Path) -> None:
    _workdir(tmp_path / "w.res")
    assert restart.restart_target(str(tmp_path), "w") == (str(tmp_path / "w"), str(tmp_path / "w.res"))
    (tmp_path / "w").mkdir()  # a restart killed before its logfile was made
    assert restart.restart_target(str(tmp_path), "w") == (str(tmp_path / "w"), str(tmp_path / "w.res"))
    _workdir(tmp_path / "v")
    assert restart.restart_target(str(tmp_path), "v") == (str(tmp_path / "v"), str(tmp_path / "v.res"))


@pytest.mark.parametrize(
    ("make", "message"),
    [((), "does not exist"), (("w",), "not a plams working folder"), (("w/notes.txt",), "not a plams working folder"),
     (("w!",), "is not a folder"), (("w/logfile", "w.res/"), "w.res is in the way"),
     (("w/logfile", "w.res!"), "w.res is in the way (it is not a folder)"), (("w.res/logfile", "w!"), "not a folder")],
    ids=["missing", "empty-folder", "user-folder", "file", "res-user-folder", "res-file", "res-and-file"],
)
def test_restart_target_refuses(tmp_path: Path, make: tuple[str, ...], message: str) -> None:
    """``w/`` a folder, ``w!`` a file, ``w/x`` a file in folder ``w``."""
    for item in make:
        path = tmp_path / item.rstrip("/!")
        if item.endswith("!"):
            path.write_text("x")
        elif item.endswith("/") or "/" not in item:
            path.mkdir()
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text("x")
    with pytest.raises(errors.NotRestartableError, match=re.escape(message)):
        restart.restart_target(str(tmp_path), "w")
    with pytest.raises(ValueError):
        restart.restart_target(str(tmp_path), "w")


def _res_with_history(tmp_path: Path, history: str, log: str) -> tuple[Path, Path]:
    res = tmp_path / "w.res"
    res.mkdir()
    (res / workdir.MARKER).write_text("{}\n")
    (res / "logfile.previous").write_text(history)
    if log:
        (res / "logfile").write_text(log)
    work = tmp_path / "w"
    work.mkdir()
    return res, work


def test_a_history_moves_whole_with_the_last_log_appended_in_place(tmp_path: Path) -> None:
    """The common settle: not the whole history written again, only the last log appended; the history moves."""
    res, work = _res_with_history(tmp_path, "run 1\n", "run 2\n")
    inode = os.stat(res / "logfile.previous").st_ino
    report = restart.SettleReport()
    restart._keep_other_entries(str(res), str(work), set(), report)
    assert (work / "logfile.previous").read_text() == "run 1\nrun 2\n"
    assert os.stat(work / "logfile.previous").st_ino == inode  # the very file, not a copy
    assert report.logs == 2 and set(os.listdir(work)) == {"logfile.previous"}
    assert set(os.listdir(res)) == {workdir.MARKER}


@pytest.mark.parametrize(("history", "log"), [("run 1\nrun 2 cut", "run 2\n"), ("run 1\nrun 2\n", "")],
                         ids=["cut-short", "log-deleted"])
def test_an_append_a_kill_cut_short_is_undone_once_and_the_history_is_whole(tmp_path: Path, history: str,
                                                                             log: str) -> None:
    """Killed mid-append (the log still there) or after the log went (the note not yet): the history holds each
    log once."""
    res, work = _res_with_history(tmp_path, history, log)
    (res / restart._APPENDING).write_text(str(len("run 1\n")))
    report = restart.SettleReport()
    restart._keep_other_entries(str(res), str(work), set(), report)
    assert (work / "logfile.previous").read_text() == "run 1\nrun 2\n"
    assert not (res / restart._APPENDING).exists() and not (work / restart._APPENDING).exists()


def test_a_settle_killed_right_after_its_first_deletion_leaves_each_log_once(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    res, work = _res_with_history(tmp_path, "run 1\n", "run 2\n")
    real = os.unlink

    def unlink_then_die(path: str) -> None:
        real(path)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "unlink", unlink_then_die)
        with pytest.raises(KeyboardInterrupt):
            restart._keep_other_entries(str(res), str(work), set(), restart.SettleReport())
    restart._keep_other_entries(str(res), str(work), set(), restart.SettleReport())
    assert (work / "logfile.previous").read_text() == "run 1\nrun 2\n"
