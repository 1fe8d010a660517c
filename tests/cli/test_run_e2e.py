"""End to end: the installed ``plams`` command as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psutil
import pytest

from tests.conftest import logged_status

from .conftest import listing, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]

DUPLICATES = """\
for name in ("first", "second", "third"):
    # first and third are identical: the third is copied, not run
    text = "same" if name != "second" else "other"
    ShellJob(name=name, runscript=f"echo {text}; echo {name} >> '{COUNTER}'".replace("{name}", "x")).run()
"""


def counter_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def job_status(folder: Path, name: str) -> str:
    return cast(str, json.loads((folder / name / f"{name}.job.json").read_text())["status"])


# --- the three usage lines ----------------------------------------------------------------
def test_plain_run_makes_plams_pid_folder_and_prints_script_output(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "hello.plms", 'ShellJob(name="hi", runscript="echo hi").run()\nprint("data line")\n')
    result = plams(str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "data line\n"  # the log goes to stderr
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("plams.")]
    assert len(folders) == 1 and folders[0].name.removeprefix("plams.").isdigit()
    workdir = folders[0]
    assert (workdir / "hi" / "hi.out").read_text() == "hi\n"
    assert (workdir / "hello.plms").read_text() == script.read_text()  # a copy of the script is kept
    assert "Running in" in result.stderr and "Finished: 1 successful" in result.stderr
    assert "Finished: 1 successful" in (workdir / "logfile").read_text()


def test_load_reuses_jobs_of_an_earlier_run(tmp_path: Path, plams: Run) -> None:
    counter = tmp_path / "counter"
    script = write(tmp_path / "a.plms", "for i in range(3):\n"
                   "    ShellJob(name=f'j{i}', runscript=f\"echo j{i} >> '{COUNTER}'\").run()\n")
    first = plams("-f", "first", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = plams("-l", "first", "-f", "second", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert counter_lines(counter) == ["j0", "j1", "j2"]  # nothing ran twice
    assert "Loaded 3 jobs from" in second.stderr and "(0 unreadable files)" in second.stderr
    assert all(logged_status(tmp_path / "second", f"j{i}") == "copied" for i in range(3))
    assert (tmp_path / "second" / "j1" / "j1.run").exists()


def test_load_counts_unreadable_files(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "a.plms", "ShellJob(name='x', runscript='echo x').run()\n")
    assert plams("-f", "old", str(script), cwd=tmp_path).returncode == 0
    (tmp_path / "old" / "x" / "x.dill").write_bytes(b"corrupted")
    result = plams("-l", "old", "-f", "new", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Loaded 0 jobs from" in result.stderr and "(1 unreadable file)" in result.stderr
    assert job_status(tmp_path / "new", "x") == "successful"


def test_restart_in_place_reuses_and_removes_res(tmp_path: Path, plams: Run) -> None:
    counter = tmp_path / "counter"
    script = write(tmp_path / "a.plms", "for i in range(3):\n"
                   "    ShellJob(name=f'j{i}', runscript=f\"echo j{i} >> '{COUNTER}'\").run()\n")
    assert plams("-f", "run", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path).returncode == 0
    result = plams("-r", "-f", "run", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert counter_lines(counter) == ["j0", "j1", "j2"]
    assert listing(tmp_path) == {"a.plms", "counter", "run"}  # no run.res, no trash
    assert all(logged_status(tmp_path / "run", f"j{i}") == "copied" for i in range(3))
    assert (tmp_path / "run" / "j2" / "j2.out").exists()


def test_restart_without_folder_takes_the_most_recent(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "a.plms", "ShellJob(name='x', runscript='echo x').run()\n")
    for name in ("older", "newer"):
        assert plams("-f", name, str(script), cwd=tmp_path).returncode == 0
    os.utime(tmp_path / "older" / "logfile", (1, 1))
    result = plams("-r", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"most recent working folder: {tmp_path / 'newer'}" in result.stderr
    assert logged_status(tmp_path / "newer", "x") == "copied"
    assert job_status(tmp_path / "older", "x") == "successful"


def test_restart_moves_unreused_finished_jobs_into_the_new_folder(tmp_path: Path, plams: Run) -> None:
    full = write(tmp_path / "full.plms", "for n in ('a', 'b'):\n    ShellJob(name=n, runscript=f'echo {n}').run()\n")
    part = write(tmp_path / "part.plms", "ShellJob(name='a', runscript='echo a').run()\n")
    assert plams("-f", "run", str(full), cwd=tmp_path).returncode == 0
    result = plams("-r", "-f", "run", str(part), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert logged_status(tmp_path / "run", "a") == "copied"
    assert job_status(tmp_path / "run", "b") == "successful"  # moved back, not lost
    assert not (tmp_path / "run.res").exists()


def test_restart_keeps_res_when_a_finished_job_cannot_be_moved(tmp_path: Path, plams: Run) -> None:
    """The new run put a file of its own where an old job it does not run was: NAME.res stays, nothing is lost."""
    first = write(tmp_path / "first.plms", "for n in ('a', 'b'):\n    ShellJob(name=n, runscript=f'echo {n}').run()\n")
    other = write(tmp_path / "other.plms", "import os\nShellJob(name='a', runscript='echo a').run()\n"
                  "open(os.path.join(config.default_jobmanager.workdir, 'b'), 'w').close()\n")
    assert plams("-f", "run", str(first), cwd=tmp_path).returncode == 0
    result = plams("-r", "-f", "run", str(other), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stderr and "run.res" in result.stderr and "loads its finished jobs again" in result.stderr
    assert (tmp_path / "run.res" / "b" / "b.out").read_text() == "b\n"
    # the next restart reuses the job kept in run.res
    again = plams("-r", "-f", "run", str(first), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert logged_status(tmp_path / "run", "a") == "copied" and logged_status(tmp_path / "run", "b") == "copied"
    assert listing(tmp_path) == {"first.plms", "other.plms", "run"}


def test_taken_folder_gets_next_free_name_and_says_so(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "work").mkdir()
    script = write(tmp_path / "a.plms", "print('ok')\n")
    result = plams("-f", "work", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "work.002" / "logfile").exists()
    assert "work.002" in result.stderr and "exists" in result.stderr


def test_path_option_and_folder_with_subpath(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "runs" / "deep").mkdir(parents=True)
    script = write(tmp_path / "a.plms", "print(config.default_jobmanager.workdir)\n")
    result = plams("-p", str(tmp_path / "runs"), "-f", "deep/w", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "runs" / "deep" / "w")


# --- the script's namespace ---------------------------------------------------------------
def test_script_runs_as_main_module_with_its_own_file_and_folder(tmp_path: Path, plams: Run) -> None:
    lib = tmp_path / "scripts"
    lib.mkdir()
    write(lib / "helper.py", "VALUE = 42\n")
    script = write(lib / "main.plms", (
        "import sys, helper\n"
        "print(__name__, __file__ == sys.argv[0], helper.VALUE, sys.path[0])\n"
        "print(all(n in globals() for n in ('Settings', 'config', 'SingleJob', 'MultiJob', 'JobRunner',"
        " 'GridRunner', 'load', 'load_all', 'log', 'ShellJob', 'JobStatus')))\n"
        "print(__file__)\n"
        "if __name__ == '__main__':\n    print(type(VAR).__name__, VAR)\n"
    ))
    result = plams("-v", "VAR=3=x", str(script.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"__main__ True 42 {lib}", "True", str(script), "str 3=x"]


def test_several_scripts_share_one_namespace(tmp_path: Path, plams: Run) -> None:
    one = write(tmp_path / "one.plms", "shared = ShellJob(name='j', runscript='echo 1').run()\n")
    two = write(tmp_path / "two.plms", "print(shared.ok(), __file__.endswith('two.plms'))\n")
    result = plams("-f", "w", str(one), str(two), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True True\n"
    assert {"one.plms", "two.plms"} <= listing(tmp_path / "w")


def test_quiet_leaves_stderr_empty(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "a.plms", "ShellJob(name='j', runscript='echo 1').run()\nprint('out')\n")
    result = plams("-q", str(script), cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "")


def test_jobs_option_runs_in_parallel(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "a.plms", (
        "r = config.default_jobrunner\nprint(r.parallel, r.maxjobs)\n"
        "jobs = [ShellJob(name=f'p{i}', runscript=f'sleep 1; echo {i}') for i in range(4)]\n"
        "for j in jobs: j.run()\nprint(all(j.ok() for j in jobs))\n"
    ))
    result = plams("-j", "4", "-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True 4\nTrue\n"
    stamps = [json.loads((tmp_path / "w" / f"p{i}" / f"p{i}.job.json").read_text())["timestamps"]
              for i in range(4)]
    assert max(t["running"] for t in stamps) < min(t["successful"] for t in stamps)  # all four at once


def test_weird_paths(weird_tmp_path: Path, plams: Run) -> None:
    script = write(weird_tmp_path / "my script.plms", "ShellJob(name='j', runscript='pwd').run()\n"
                   "print(__file__)\n")
    result = plams("-p", str(weird_tmp_path), "-f", "w 1", str(script), cwd=weird_tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{script}\n"
    workdir = weird_tmp_path / "w 1"
    assert (workdir / "j" / "j.out").read_text() == f"{workdir / 'j'}\n"
    restarted = plams("-r", "-p", str(weird_tmp_path), "-f", "w 1", str(script), cwd=weird_tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert logged_status(workdir, "j") == "copied"
    assert not (weird_tmp_path / "w 1.res").exists()


# --- exit statuses ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "stderr_has"),
    [
        ("print('fine')\n", 0, None),
        ("def f():\n    raise ValueError('boom')\n\nf()\n", 1, "ValueError: boom"),
        ("import json\njson.loads('{')\n", 1, "JSONDecodeError"),
        ("x = (\n", 1, "SyntaxError"),
        ("import sys\nsys.exit(5)\n", 5, None),
        ("import sys\nsys.exit()\n", 0, None),
        ("raise SystemExit('goodbye')\n", 1, "goodbye"),
    ],
    ids=["ok", "raises", "raises-in-stdlib", "syntax-error", "sys-exit-5", "sys-exit-none", "sys-exit-message"],
)
def test_exit_status(tmp_path: Path, plams: Run, body: str, status: int, stderr_has: str | None) -> None:
    script = write(tmp_path / "s.plms", body)
    result = plams("-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == status, result.stderr
    if stderr_has:
        assert stderr_has in result.stderr
    if status == 1 and stderr_has != "goodbye":
        # cut to the user's frames: the script file and line, nothing of plams_cli or the stdlib
        assert f'File "{script}", line' in result.stderr
        assert "plams_cli" not in result.stderr and "json/decoder.py" not in result.stderr
        if stderr_has == "SyntaxError":  # found before anything is made
            assert listing(tmp_path) == {"s.plms"}
        else:
            assert f'File "{script}", line' in (tmp_path / "w" / "logfile").read_text()


def test_script_error_after_jobs_keeps_finished_jobs(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "s.plms", "ShellJob(name='done', runscript='echo 1').run()\nraise RuntimeError('late')\n")
    result = plams("-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == 1
    assert 'line 2, in <module>' in result.stderr and "RuntimeError: late" in result.stderr
    assert (tmp_path / "w" / "done" / "done.dill").exists()


def _signal_after(start_plams: Callable[..., subprocess.Popen[str]], tmp_path: Path, args: list[str],
                  body: str, sig: signal.Signals = signal.SIGINT) -> tuple[subprocess.Popen[str], str, int]:
    pidfile = tmp_path / "pid"
    script = write(tmp_path / "s.plms", body.replace("PIDFILE", str(pidfile)))
    process = start_plams(*args, "-f", "w", str(script), cwd=tmp_path)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the long job to start")
    runscript_pid = int(pidfile.read_text())
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    return process, stderr, runscript_pid


# With -j 2, quick and long run side by side: long says it runs (the signal's cue) only once
# quick is saved, or the signal could catch quick still running.
LONG_JOBS = ("ShellJob(name='quick', runscript='echo quick').run()\n"
             "ShellJob(name='long', runscript=\"i=0; while [ ! -e ../quick/quick.dill ] && [ $i -lt 600 ]; "
             "do sleep 0.05; i=$((i+1)); done; echo $$ > 'PIDFILE'; sleep 60\").run()\n"
             "ShellJob(name='never', runscript='echo never').run()\n")


@pytest.mark.parametrize("args", [[], ["-j", "2"]], ids=["serial", "parallel"])
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_jobs_saves_finished_and_exits_128_plus_signal(
    tmp_path: Path, start_plams: Callable[..., subprocess.Popen[str]], args: list[str], sig: signal.Signals,
    status: int,
) -> None:
    process, stderr, pid = _signal_after(start_plams, tmp_path, args, LONG_JOBS, sig)
    assert process.returncode == status, stderr
    assert "Interrupted" in stderr and "stopped" in stderr and f"pid {pid}" in stderr
    assert "Traceback" not in stderr
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             timeout=10, what="the runscript to end")
    workdir = tmp_path / "w"
    assert (workdir / "quick" / "quick.dill").exists()  # what finished is saved
    assert job_status(workdir, "long") == "crashed"
    if not args:  # serial: the script stopped at the long job
        assert not (workdir / "never").exists()
    if sig == signal.SIGTERM:
        assert "Interrupted (SIGTERM)" in (workdir / "logfile").read_text()


def test_sys_exit_message_goes_to_the_logfile_too(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "s.plms", "import sys\nsys.exit('goodbye: bad input')\n")
    result = plams("-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == 1
    assert "goodbye: bad input" in result.stderr
    assert "goodbye: bad input" in (tmp_path / "w" / "logfile").read_text()


SCRIPT_CLASS = """\
class CountingJob(SingleJob):
    def __init__(self, number, **kwargs):
        super().__init__(name=f"c{number}", **kwargs)
        self.number = number

    def get_runscript(self):
        return f"echo c{self.number} >> '{COUNTER}'"

    def check(self):
        return self.number >= 0

jobs = [CountingJob(i) for i in range(3)]
for job in jobs:
    job.run()
print([type(job).__name__ for job in jobs], [job.status.value for job in jobs])
"""


def test_load_reuses_jobs_of_a_class_defined_in_the_script(tmp_path: Path, plams: Run) -> None:
    counter = tmp_path / "counter"
    script = write(tmp_path / "a.plms", SCRIPT_CLASS)
    first = plams("-f", "first", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = plams("-l", "first", "-f", "second", "-v", f"COUNTER={counter}", str(script), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Loaded 3 jobs from" in second.stderr and "(0 unreadable files)" in second.stderr
    assert counter_lines(counter) == ["c0", "c1", "c2"]  # nothing ran twice
    assert second.stdout == "['CountingJob', 'CountingJob', 'CountingJob'] ['copied', 'copied', 'copied']\n"
    assert all(logged_status(tmp_path / "second", f"c{i}") == "copied" for i in range(3))


def test_files_a_script_leaves_open_are_written_when_plams_exits(tmp_path: Path, plams: Run,
                                                                 env: dict[str, str]) -> None:
    # plams skips the last garbage collection at exit (cli.main.program): what it would
    # have flushed, a file left open in the script's namespace or held in a cycle, is still written.
    script = write(tmp_path / "s.plms", (
        "import atexit, sys\n"
        "ShellJob(name='j', runscript='echo 1').run()\n"
        "plain = open('plain.txt', 'w'); plain.write('plain data')\n"
        "binary = open('binary.bin', 'wb'); binary.write(b'binary data')\n"
        "class Holder: pass\n"
        "held = Holder(); held.me = held; held.file = open('held.txt', 'w'); held.file.write('held data')\n"
        "atexit.register(lambda: open('atexit.txt', 'w').write('at exit'))\n"
        "sys.exit(3)\n"))
    for command in (None, [sys.executable, "-m", "plams_cli"]):
        for name in ("plain.txt", "binary.bin", "held.txt", "atexit.txt"):
            (tmp_path / name).unlink(missing_ok=True)
        if command is None:
            result = plams("-q", str(script), cwd=tmp_path)
        else:
            result = subprocess.run([*command, "-q", str(script)], cwd=tmp_path, env=env, capture_output=True,
                                    text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert (tmp_path / "plain.txt").read_text() == "plain data"
        assert (tmp_path / "binary.bin").read_bytes() == b"binary data"
        assert (tmp_path / "held.txt").read_text() == "held data"
        assert (tmp_path / "atexit.txt").read_text() == "at exit"


def test_python_dash_m_plams_cli(tmp_path: Path, env: dict[str, str]) -> None:
    script = write(tmp_path / "a.plms", "print('m')\n")
    result = subprocess.run([sys.executable, "-m", "plams_cli", "-q", str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "m\n")


# --- the examples -------------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_duplicates(tmp_path: Path, plams: Run) -> None:
    result = plams("-f", "w", str(EXAMPLES / "duplicates.plms"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hello_again  copied" in result.stdout and "words        successful 3" in result.stdout


def test_example_sweep(tmp_path: Path, plams: Run) -> None:
    result = plams("-j", "4", "-v", "POINTS=4", str(EXAMPLES / "sweep.plms"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["x\tx**2", "0\t0", "1\t1", "2\t4", "3\t9"]


def test_example_crash_and_restart(tmp_path: Path, plams: Run) -> None:
    script = str(EXAMPLES / "crash_and_restart.plms")
    crashed = plams("-f", "demo", script, cwd=tmp_path)
    assert crashed.returncode == 1 and "RuntimeError: step 3 needs" in crashed.stderr
    restarted = plams("-r", "-f", "demo", "-v", "FIXED=yes", script, cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.splitlines() == ["step 1: copied", "step 2: copied", "step 3: successful",
                                             "step 4: successful", "total 100"]
    assert listing(tmp_path) == {"demo"}


def test_a_script_that_imports_and_calls_finish_does_not_end_the_run(tmp_path: Path, plams: Run) -> None:
    script = write(tmp_path / "own.plms", "from plams_cli import *\ninit()\n"
                   "ShellJob(name='a', runscript='echo a').run()\nfinish()\n"
                   "ShellJob(name='b', runscript='echo b').run()\nfinish()\n")
    result = plams("-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "w" / "a" / "a.out").exists() and (tmp_path / "w" / "b" / "b.out").exists()
    assert not (tmp_path / "plams_workdir").exists()
    assert result.stderr.count("Finished:") == 1 and "Finished: 2 successful" in result.stderr
