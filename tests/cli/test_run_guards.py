"""The run's edges: a folder in use, threads the scripts leave, Ctrl-C at the end, stubborn runscripts, -q."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from plams_cli.runners.local import STOP_GRACE_S
from tests.conftest import logged_status

from .conftest import listing, one_error_line, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]
Start = Callable[..., subprocess.Popen[str]]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def job_json(folder: Path, name: str) -> dict[str, object]:
    return json.loads((folder / name / f"{name}.job.json").read_text())  # type: ignore[no-any-return]


def gone(pid: int) -> bool:
    """The process ended (a zombie waiting for its parent counts as ended)."""
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# --- a folder in use ----------------------------------------------------------------------
# The job runs until the test creates the file GO (at most a minute: a failed test leaves no endless loop).
WAITING = ("ShellJob(name='a', runscript=\"echo $$ > '{pid}'; n=0; "
           "while [ ! -e '{go}' ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\").run()\n")


@pytest.mark.parametrize("folder_option", [["-f", "w"], []], ids=["named", "most-recent"])
def test_restart_of_a_folder_a_live_run_uses_is_refused(tmp_path: Path, start_plams: Start, plams: Run,
                                                        folder_option: list[str]) -> None:
    pidfile, go = tmp_path / "pid", tmp_path / "go"
    script = write(tmp_path / "s.plms", WAITING.format(pid=pidfile, go=go))
    live = start_plams("-f", "w", str(script), cwd=tmp_path)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the live run's job to start")
    before = listing(tmp_path), listing(tmp_path / "w")

    refused = plams("-r", *folder_option, str(script), cwd=tmp_path)
    assert refused.returncode == 2
    assert one_error_line(refused.stderr) == (f"Error: {tmp_path / 'w'} is in use by plams (pid {live.pid}); "
                                              "wait for it or stop it")
    assert (listing(tmp_path), listing(tmp_path / "w")) == before  # nothing changed

    go.touch()
    _, stderr = live.communicate(timeout=60)
    assert live.returncode == 0, stderr
    restarted = plams("-r", *folder_option, str(script), cwd=tmp_path)  # free again
    assert restarted.returncode == 0, restarted.stderr
    assert logged_status(tmp_path / "w", "a") == "copied"


def test_a_live_restart_keeps_its_folder_locked_too(tmp_path: Path, start_plams: Start, plams: Run) -> None:
    """While a restart runs, both NAME and NAME.res are its own: a second -r is refused."""
    pidfile, go = tmp_path / "pid", tmp_path / "go"
    script = write(tmp_path / "s.plms", "ShellJob(name='a', runscript='echo a').run()\n"
                   "ShellJob(name='b', runscript='echo b').run()\n")
    assert plams("-f", "w", str(script), cwd=tmp_path).returncode == 0
    changed = write(tmp_path / "t.plms", "ShellJob(name='a', runscript='echo a').run()\n"
                    + WAITING.format(pid=pidfile, go=go).replace("name='a'", "name='b'"))
    live = start_plams("-r", "-f", "w", str(changed), cwd=tmp_path)  # a is copied, b (changed) waits
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the restart to run b")
    assert (tmp_path / "w.res").is_dir()
    refused = plams("-r", "-f", "w", str(changed), cwd=tmp_path)
    assert refused.returncode == 2 and f"(pid {live.pid})" in one_error_line(refused.stderr)
    go.touch()
    _, stderr = live.communicate(timeout=60)
    assert live.returncode == 0, stderr
    assert listing(tmp_path) == {"go", "pid", "s.plms", "t.plms", "w"}  # w.res gone: b was replaced


# --- threads the scripts leave running ----------------------------------------------------
LATE_THREAD = """\
import os, threading, time

def work():
    while not os.path.exists(GO):
        time.sleep(0.02)
    job = ShellJob(name="late", runscript="echo late")
    job.run()
    print("late:", job.status.value)

threading.Thread(target=work, name="worker").start()
ShellJob(name="early", runscript="echo early").run()
open(BODY_DONE, "w").close()
"""


def test_jobs_of_threads_the_script_left_belong_to_the_run(tmp_path: Path, start_plams: Start) -> None:
    go, done = tmp_path / "go", tmp_path / "body-done"
    script = write(tmp_path / "s.plms", LATE_THREAD)
    process = start_plams("-f", "w", "-v", f"GO={go}", "-v", f"BODY_DONE={done}", str(script), cwd=tmp_path)
    wait_for(done.exists, what="the script body to end")
    time.sleep(0.7)  # the run now waits for the thread, and says so
    go.touch()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout == "late: successful\n"
    assert "waiting for 1 thread they started: 'worker'" in stderr
    assert "Finished: 2 successful" in stderr and stderr.index("JOB late SUCCESSFUL") < stderr.index("Finished:")
    assert job_json(tmp_path / "w", "late")["status"] == "successful"
    assert not (tmp_path / "plams_workdir").exists()


def test_ctrl_c_while_waiting_for_threads_stops_the_run(tmp_path: Path, start_plams: Start) -> None:
    go, done = tmp_path / "go", tmp_path / "body-done"
    script = write(tmp_path / "s.plms", LATE_THREAD)
    process = start_plams("-f", "w", "-v", f"GO={go}", "-v", f"BODY_DONE={done}", str(script), cwd=tmp_path)
    wait_for(done.exists, what="the script body to end")
    time.sleep(0.7)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    go.touch()  # the thread goes on after the Ctrl-C: its job is refused, in this run's folder
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted: stopping running jobs" in stderr and "Traceback" not in stderr
    assert stdout == "late: crashed\n"
    # never started: no folder, "not started" in the summary, the reason in the log (issue 11)
    assert not (tmp_path / "w" / "late").exists()
    log = (tmp_path / "w" / "logfile").read_text()
    assert "not started: the run was cancelled" in log and "1 not started" in log
    assert not (tmp_path / "plams_workdir").exists()


# --- Ctrl-C while the run ends ------------------------------------------------------------
# Runs plams with a hook that sends SIGINT to itself at one moment of the end of the run.
INTERRUPT_AT = """\
import os, signal, sys
import plams_cli.core.restart as restart
import plams_cli.core.runtime as runtime

def interrupt():
    os.kill(os.getpid(), signal.SIGINT)

where = os.environ["INTERRUPT_AT"]
if where == "settle":  # after the first finished job moved back
    settle, rename = restart.settle, os.rename
    def patched_settle(*args, **kwargs):
        def moved(source, target):
            rename(source, target)
            interrupt()
        restart.os.rename = moved
        try:
            return settle(*args, **kwargs)
        finally:
            restart.os.rename = rename
    restart.settle = patched_settle
else:
    finish = runtime.finish
    def patched_finish(*args, **kwargs):
        interrupt()
        return finish(*args, **kwargs)
    runtime.finish = patched_finish

from plams_cli.cli.main import main
main(sys.argv[1:])
"""

THREE = "for name in NAMES.split():\n    ShellJob(name=name, runscript=f'echo {name}').run()\n"


@pytest.mark.parametrize("where", ["settle", "finish"])
def test_ctrl_c_while_the_run_ends_exits_130_and_the_next_restart_finishes(
        tmp_path: Path, env: dict[str, str], plams: Run, where: str) -> None:
    script = write(tmp_path / "s.plms", THREE)
    assert plams("-f", "w", "-v", "NAMES=a b c", str(script), cwd=tmp_path).returncode == 0
    hook = write(tmp_path / "hook.py", INTERRUPT_AT)
    result = subprocess.run([sys.executable, str(hook), "-r", "-f", "w", "-v", "NAMES=a", str(script)],
                            cwd=tmp_path, env={**env, "INTERRUPT_AT": where}, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 130, result.stderr
    assert "Interrupted while ending the run: the finished jobs are saved" in result.stderr
    assert "Aborted!" not in result.stderr and "Traceback" not in result.stderr
    if where == "settle":
        assert "w.res is kept and the next -r finishes the restart" in result.stderr

    again = plams("-r", "-f", "w", "-v", "NAMES=a", str(script), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert listing(tmp_path) == {"hook.py", "s.plms", "w"}
    assert {name: job_json(tmp_path / "w", name)["status"] for name in "abc"} == dict.fromkeys("abc", "successful")
    assert logged_status(tmp_path / "w", "a") == "copied"  # reused (its saved files kept), b and c moved back


# --- runscripts that ignore SIGTERM -------------------------------------------------------
STUBBORN = ("ShellJob(name='stubborn', runscript=\"trap '' TERM INT; echo $$ > '{pid}'; sleep 30 & "
            "echo $! > '{child}'; wait; wait\").run()\n")


@pytest.mark.parametrize("args", [[], ["-j", "2"]], ids=["serial", "parallel"])
@pytest.mark.parametrize("twice", [False, True], ids=["ctrl-c", "ctrl-c-twice"])
def test_runscript_ignoring_sigterm_gets_sigkill(tmp_path: Path, start_plams: Start, args: list[str],
                                                 twice: bool) -> None:
    pidfile, childfile = tmp_path / "pid", tmp_path / "child"
    script = write(tmp_path / "s.plms", STUBBORN.format(pid=pidfile, child=childfile))
    process = start_plams(*args, "-f", "w", str(script), cwd=tmp_path)
    wait_for(lambda: childfile.exists() and childfile.read_text().strip(), what="the runscript to start")
    shell, sleeper = int(pidfile.read_text()), int(childfile.read_text())
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    elapsed = time.monotonic() - started
    assert process.returncode == 130, stderr
    how = "SIGKILL at once (interrupted again)" if twice else f"SIGKILL after {STOP_GRACE_S:g} s"
    how = "SIGTERM, then " + how
    assert re.search(rf"stopped runscript \S*stubborn.run \(pid {shell}\): {re.escape(how)}", stderr), stderr
    assert (elapsed < STOP_GRACE_S) if twice else (elapsed >= STOP_GRACE_S)
    wait_for(lambda: gone(shell) and gone(sleeper), timeout=10, what="the runscript and its child to end")
    assert job_json(tmp_path / "w", "stubborn")["status"] == "crashed"


def test_a_job_stopped_by_sigterm_says_sigterm(tmp_path: Path, start_plams: Start) -> None:
    pidfile = tmp_path / "pid"
    script = write(tmp_path / "s.plms", f"ShellJob(name='long', runscript=\"echo $$ > '{pidfile}'; sleep 30\").run()\n")
    process = start_plams("-f", "w", str(script), cwd=tmp_path)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the job to start")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert job_json(tmp_path / "w", "long")["error"] == "interrupted (SIGTERM)"


# --- -q -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "line"),
    [("ShellJob(name='bad', runscript='exit 5').run()\n", "1 job crashed, 0 failed"),
     ("class Picky(ShellJob):\n    def check(self):\n        return False\n\n"
      "for n in 'ab':\n    Picky(name=n, runscript='true').run()\n"
      "ShellJob(name='bad', runscript='exit 5').run()\n", "1 job crashed, 2 failed"),
     ("ShellJob(name='ok', runscript='true').run()\n", None)],
    ids=["crashed", "crashed-and-failed", "all-well"],
)
def test_quiet_still_says_that_jobs_crashed_or_failed(tmp_path: Path, plams: Run, body: str, line: str | None) -> None:
    script = write(tmp_path / "s.plms", body)
    result = plams("-q", "-f", "w", str(script), cwd=tmp_path)
    assert result.returncode == 0  # the scripts completed, as in PLAMS
    assert result.stderr == (f"plams: {line} (see {tmp_path / 'w' / 'logfile'})\n" if line else "")


# --- nothing left behind --------------------------------------------------------------------
def test_a_syntax_error_leaves_no_folder(tmp_path: Path, plams: Run) -> None:
    good = write(tmp_path / "a.plms", "ShellJob(name='a', runscript='true').run()\n")
    bad = write(tmp_path / "b.plms", "x = (\n")
    result = plams(str(good), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert f'File "{bad}", line 1' in result.stderr and "SyntaxError" in result.stderr
    assert listing(tmp_path) == {"a.plms", "b.plms"}


def test_a_run_clears_the_trash_killed_processes_left(tmp_path: Path, plams: Run) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".plams-trash.{dead.pid}.w.res"
    (left / "a").mkdir(parents=True)
    busy = tmp_path / f".plams-trash.{os.getpid()}.v.res"  # its process is alive: it may be deleting it
    busy.mkdir()
    script = write(tmp_path / "s.plms", "print('ok')\n")
    assert plams("-f", "w", str(script), cwd=tmp_path).returncode == 0
    assert listing(tmp_path) == {"s.plms", "w", busy.name}
