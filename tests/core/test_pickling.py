"""Saved jobs: dill pickles written atomically, JSON summaries, ``load`` and ``load_all``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import cast

import pytest

from plams_cli import JobStatus, MultiJob, ShellJob, load, load_all
from plams_cli.core.pickling import read_job
from plams_cli.errors import CorruptedJobFileError, FileError
from tests.conftest import python_env
from tests.core.jobkinds import EchoJob


def echo(name: str, value: str = "v") -> EchoJob:
    job = EchoJob(name=name)
    job.settings.input.value = value
    return job


def test_successful_job_is_saved_with_a_summary(run_in: object) -> None:
    job = echo("saved", "42")
    job.run()
    assert job.path is not None
    dill_file = Path(job.path, "saved.dill")
    assert dill_file.is_file()
    summary = json.loads(Path(job.path, "saved.job.json").read_text())
    assert summary["name"] == "saved" and summary["status"] == "successful"
    assert summary["class"] == "tests.core.jobkinds.EchoJob"
    assert summary["hash"] == job._hash and summary["exit_code"] == 0
    assert summary["settings"]["input"]["value"] == "42"
    assert "saved.out" in summary["files"] and "running" in summary["timestamps"]
    again = read_job(str(dill_file))
    assert type(again) is EchoJob and again.name == "saved" and again.status == JobStatus.SUCCESSFUL
    assert again.path == job.path and again.results.read_file("out") == "42"
    assert again.jobmanager is None and again.jobrunner is None and again.parent is None


def test_crashed_job_has_a_summary_but_no_pickle(run_in: object) -> None:
    job = ShellJob(name="crash", runscript="exit 4")
    job.run()
    assert job.path is not None
    assert not Path(job.path, "crash.dill").exists()
    summary = json.loads(Path(job.path, "crash.job.json").read_text())
    assert summary["status"] == "crashed" and "exited with code 4" in summary["error"]


def test_dont_pickle_and_pickle_setting(run_in: object) -> None:
    job = echo("partial")
    job.scratch = lambda: None  # type: ignore[attr-defined]  # unpicklable by the C pickler; dill could, but we drop it
    job.keep_me = [1, 2]  # type: ignore[attr-defined]
    job._dont_pickle = ["scratch"]
    job.run()
    assert job.path is not None
    again = read_job(os.path.join(job.path, "partial.dill"))
    assert not hasattr(again, "scratch") and again.keep_me == [1, 2]  # type: ignore[attr-defined]
    off = echo("off", "other")
    off.settings.pickle = False
    off.run()
    assert off.ok() and not Path(cast(str, off.path), "off.dill").exists()


def test_job_pickle_saves_again(run_in: object) -> None:
    job = echo("resave")
    job.run()
    job.note = "added after the run"  # type: ignore[attr-defined]
    job.pickle()
    assert job.path is not None
    assert read_job(os.path.join(job.path, "resave.dill")).note == "added after the run"  # type: ignore[attr-defined]


def test_multijob_children_are_inside_its_pickle(run_in: object) -> None:
    job = MultiJob(name="multi", children=[echo("c1", "1"), echo("c2", "2")])
    job.run()
    assert job.path is not None
    again = cast(MultiJob, read_job(os.path.join(job.path, "multi.dill")))
    assert [c.name for c in again] == ["c1", "c2"]
    assert all(c.parent is again for c in again)
    assert again.children[1].path == os.path.join(job.path, "c2")
    assert again.children[1].results.read_file("out") == "2"


SCRIPT_CLASS = textwrap.dedent("""
    import sys
    from plams_cli import SingleJob, config, init, finish

    class ScriptJob(SingleJob):
        factor = 7

        def get_input(self):
            return str(self.settings.input.x)

        def get_runscript(self):
            return "expr $(cat {}.in) \\\\* 6".format(self.name)

        def answer(self):
            return int(self.results.read_file("$JN.out")) * self.factor

    config.log.stdout = 0
    init(path=sys.argv[1], folder="w")
    for x in range(3):
        job = ScriptJob(name="s{}".format(x))
        job.settings.input.x = x + 1
        job.run()
        assert job.ok(), job.get_errormsg()
    finish()
""")


def test_script_defined_class_survives_in_a_fresh_process(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT_CLASS)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, env=python_env())
    reader = textwrap.dedent(f"""
        from plams_cli import load_all
        jobs = load_all({str(tmp_path / 'w')!r})
        print(sorted((type(j).__name__, j.name, j.answer()) for j in jobs.values()))
    """)
    out = subprocess.run([sys.executable, "-c", reader], check=True, capture_output=True, text=True,
                         env=python_env()).stdout
    # every job, not only the first (under PLAMS's launcher the later ones failed to pickle)
    assert out.strip() == "[('ScriptJob', 's0', 42), ('ScriptJob', 's1', 84), ('ScriptJob', 's2', 126)]"


KILL_WHILE_PICKLING = textwrap.dedent("""
    import sys
    from plams_cli import ShellJob, config, init
    config.log.stdout = 0
    init(path=sys.argv[1], folder="w")
    job = ShellJob(name="big", runscript="true")
    job.run()
    job.payload = list(range(1_000_000))  # a few MB: each save takes a while
    job.pickle()  # the file holds the payload before any kill can land (the run's own save did not)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        job.generation = n
        job.pickle()
""")


def test_sigkill_during_pickling_leaves_no_truncated_file(tmp_path: Path) -> None:
    script = tmp_path / "kill.py"
    script.write_text(KILL_WHILE_PICKLING)
    dill_file = tmp_path / "w" / "big" / "big.dill"
    generations = set()
    for attempt in range(6):
        work = tmp_path / "w"
        if work.exists():
            shutil.rmtree(work)
        with subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env=python_env()) as proc:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(0.05 + 0.07 * attempt)  # kill at different moments of a save
            proc.send_signal(signal.SIGKILL)
        job = read_job(str(dill_file))  # never truncated: the old file or the new one
        assert len(job.payload) == 1_000_000  # type: ignore[attr-defined]
        generations.add(getattr(job, "generation", 0))
    assert len(generations) > 1  # the kills did land while saves were going on


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="no saved job at"):
        load(str(tmp_path / "missing.dill"))
    with pytest.raises(FileError, match="is a folder"):
        load(str(tmp_path))
    garbage = tmp_path / "garbage.dill"
    garbage.write_bytes(b"this is not a pickle")
    with pytest.raises(CorruptedJobFileError, match="garbage.dill is not a readable saved job"):
        load(str(garbage))
    foreign = tmp_path / "foreign.dill"
    import pickle

    foreign.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CorruptedJobFileError, match="holds a dict, not a plams job"):
        load(str(foreign))


def test_truncated_file_is_a_corrupted_job_file(run_in: object) -> None:
    job = echo("cut")
    job.run()
    assert job.path is not None
    path = Path(job.path, "cut.dill")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptedJobFileError, match="truncated"):
        load(str(path))


def test_load_all_skips_bad_files_with_one_line_each(tmp_path: Path, fresh_config: object,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from plams_cli import config, finish, init

    init(path=str(tmp_path), folder="run", quiet=True)
    good = [echo(f"g{i}", str(i)) for i in range(3)]
    for job in good:
        job.run()
    finish()
    bad = tmp_path / "run" / "g1" / "g1.dill"
    bad.write_bytes(b"\x80\x04garbage")
    config.log.stdout = 1
    loaded = load_all(str(tmp_path / "run"))
    assert sorted(j.name for j in loaded.values()) == ["g0", "g2"]
    lines = [line for line in capsys.readouterr().out.splitlines() if "Skipping" in line]
    assert len(lines) == 1 and "g1.dill" in lines[0]


def test_load_all_path_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileError, match=f"{tmp_path / 'nope'}: it does not exist"):
        load_all(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileError, match=f"{tmp_path / 'file'}: it is not a folder"):
        load_all(str(tmp_path / "file"))


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_settings_with_keys_json_cannot_sort_are_summarised(run_in: object, parallel: bool) -> None:
    from plams_cli import JobRunner

    job = ShellJob(name="mixed", runscript="echo ok")
    job.settings.input.atoms[1] = "H"
    job.settings.input.atoms["x"] = "y"
    job.settings.input[("a", "b")] = 3  # a tuple key is a nested path in Settings
    job.settings.input.obj = object()
    job.run(jobrunner=JobRunner(parallel=parallel))
    assert job.ok()  # the job is not crashed by its summary, and nobody hangs
    assert job.path is not None
    summary = json.loads(Path(job.path, "mixed.job.json").read_text())
    assert summary["settings"]["input"]["atoms"] == {"1": "H", "x": "y"}
    assert summary["settings"]["input"]["a"]["b"] == 3 and summary["settings"]["input"]["obj"].startswith("<object")


def test_script_function_kept_on_a_job_loads_in_a_fresh_process(tmp_path: Path) -> None:
    script = tmp_path / "fn.py"
    script.write_text(textwrap.dedent(f"""
        from plams_cli import ShellJob, config, init, finish
        def scale(x):
            return 3 * x
        config.log.stdout = 0
        init(path={str(tmp_path)!r}, folder="w")
        job = ShellJob(name="f", runscript="echo 14")
        job.transform = scale
        job.run()
        assert job.ok()
        finish()
    """))
    subprocess.run([sys.executable, str(script)], check=True, env=python_env())
    reader = f"from plams_cli import load\nj = load({str(tmp_path / 'w' / 'f' / 'f.dill')!r})\n" \
             "print(j.transform(int(j.results.read_file('f.out'))))"
    out = subprocess.run([sys.executable, "-c", reader], check=True, capture_output=True, text=True, env=python_env())
    assert out.stdout.strip() == "42"
