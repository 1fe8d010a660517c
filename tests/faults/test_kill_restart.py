"""SIGKILL at a random moment of a 200-job run, ``-r``, SIGKILL during the restart, ``-r`` again.

Each runscript appends its job's name to a file outside the working folder when it
starts, so the test counts how often every job ran. After each kill: every saved file
reads whole. After the restarts: a job that had finished (its ``.dill`` saved) before a
kill never ran again, a job that had not ran exactly once in the next run that completed,
every job ended successful and ``NAME.res`` is gone.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from plams_cli.core.pickling import read_job

from . import report
from .conftest import PLAMS, tracebacks

JOBS = 200
TRIALS = 20
FAULT = "SIGKILL at a random moment, -r, SIGKILL during the restart, -r"

SCRIPT = f"""
for i in range({JOBS}):
    slow = i % 7 == 0
    ShellJob(name=f"j{{i:03d}}", runscript=f"echo j{{i:03d}} >> {{LOG}}\\n" + ("sleep 0.4\\n" if slow else "")).run()
"""


def _counts(log: Path) -> collections.Counter[str]:
    return collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()


def _finished(*folders: Path) -> set[str]:
    """Jobs whose saved files read whole in ``folders``; fails on a truncated one."""
    done = set()
    for folder in folders:
        for dill in folder.rglob("j*.dill"):
            job = read_job(str(dill))  # raises on a truncated or corrupt file
            assert job.status in ("successful", "copied"), (dill, job.status)
            done.add(dill.stem)
        for summary in folder.rglob("j*.job.json"):
            json.loads(summary.read_text())
    return done


def _start(tmp_path: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*PLAMS, *extra, "-j", "4", "-f", "w", "-v", f"LOG={tmp_path / 'ran.log'}", "s.plms"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def _kill_when(process: subprocess.Popen[str], log: Path, target: int, delay_s: float) -> str:
    """SIGKILL ``process`` once ``log`` holds ``target`` lines more (and ``delay_s`` more), or when it ends."""
    deadline = time.monotonic() + 120
    while process.poll() is None and sum(_counts(log).values()) < target and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay_s)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    return process.communicate(timeout=60)[1]


@pytest.mark.long
@pytest.mark.parametrize("seed", range(TRIALS), ids=[f"seed{seed}" for seed in range(TRIALS)])
def test_kill_restart_kill_restart(tmp_path: Path, env: dict[str, str], seed: int) -> None:
    rng = random.Random(seed)
    (tmp_path / "s.plms").write_text(SCRIPT)
    log, work, res = tmp_path / "ran.log", tmp_path / "w", tmp_path / "w.res"
    stderr = [_kill_when(_start(tmp_path, env), log, rng.randrange(1, JOBS), rng.uniform(0, 0.05))]
    done1 = _finished(work)
    print(f"seed {seed}: {len(done1)} finished before the first kill")
    time.sleep(0.5)  # runscripts the kill orphaned end (they lead sessions of their own)
    ran0 = _counts(log)
    stderr.append(_kill_when(_start(tmp_path, env, "-r"), log, sum(ran0.values()) + rng.randrange(0, JOBS - len(done1)),
                             rng.uniform(0, 0.3)))
    time.sleep(0.5)
    ran1 = _counts(log)
    done2 = _finished(work, res) if res.exists() else _finished(work)
    print(f"seed {seed}: {len(done2)} finished before the second kill")
    final = subprocess.run([*PLAMS, "-r", "-j", "4", "-f", "w", "-v", f"LOG={log}", "s.plms"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    stderr.append(final.stderr)
    ran2 = _counts(log)
    names = [f"j{i:03d}" for i in range(JOBS)]
    rerun = sum(ran1[n] != ran0[n] for n in done1) + sum(ran2[n] != ran1[n] for n in done2)
    not_once = [n for n in names if n not in done2 and ran2[n] - ran1[n] != 1]
    not_once += [n for n in names if n in done2 and n not in done1 and ran1[n] - ran0[n] != 1]
    at_end = _finished(work)
    leftovers = [str(p) for p in (res, *tmp_path.glob(".plams-trash*"), *work.rglob("*.tmp*")) if p.exists()]
    seen = tracebacks(*stderr)
    report.record(FAULT, 1, jobs=JOBS, lost=JOBS - len(at_end), rerun=rerun, tracebacks=seen,
                  leftovers=len(leftovers), part=f"seed{seed}",
                  note=f"{JOBS} jobs (1 in 7 slow), -j 4, killed after a random number of runscripts; a finished job "
                       "is never rerun, any other runs exactly once more; no truncated .dill/.job.json; no .res left")
    assert final.returncode == 0, final.stderr
    assert (rerun, not_once, seen, leftovers) == (0, [], 0, [])
    assert at_end == set(names)
