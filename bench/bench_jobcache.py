"""Benchmark: ``plams jobs list --pattern X`` over a cache of 100,000 jobs, and record().

Run ``python bench/bench_jobcache.py [N]``. The cache goes to /dev/shm (tmpfs). Each
command runs as a fresh process timed from here (Python start-up and imports included),
best of 5 after a warm-up; ``plams --version`` and a bare ``python -c pass`` are measured
the same way in the same run as the reference. Figures only; nothing is asserted. The
target of issue 10: the listing in at most 0.5 s on a 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

BASE = "/dev/shm" if os.path.isdir("/dev/shm") else None
PLAMS = [sys.executable, "-m", "plams_cli"]


def _best(argv: list[str], env: dict[str, str], runs: int = 5) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(runs + 1):  # the first run writes bytecode caches
        start = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
        best = min(best, time.perf_counter() - start)
    return best, out


def _rows(start: int, n: int) -> list[dict[str, object]]:
    return [{"path": f"/home/u/runs/plams.{i // 100}/job{i}", "job_id": str(10_000 + i),
             "program": "ShellJob" if i % 3 else "AMSJob", "status": "finished" if i % 5 else "running",
             "input_fname": f"job{i}.in", "output_fname": f"job{i}.out", "submit": f"job{i}.run",
             "comment": f"job job{i} in /home/u/runs/plams.{i // 100}", "kind": "local",
             "mtime": 1.7e9 + i} for i in range(start, start + n)]


def main(n: int = 100_000) -> None:
    from plams_cli.jobcache import JobCache

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tmp = tempfile.mkdtemp(prefix="bench-jc-", dir=BASE)
    try:
        cache = os.path.join(tmp, "jobs.sqlite")
        env["PLAMS_JOBCACHE"] = cache
        jc = JobCache(cache)
        jc.record("warm-up", [{"path": "/x"}])
        times = []
        for start in range(0, n, 1000):
            rows = _rows(start, 1000)
            t0 = time.perf_counter()
            jc.record("node1", rows)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(f"record(): 1000 new rows per transaction, median {times[len(times) // 2] * 1e3:.1f} ms "
              f"(max {times[-1] * 1e3:.1f} ms) over {len(times)} batches")
        updates = []
        for start in range(0, min(n, 20_000), 1000):
            rows = [{"path": r["path"], "status": "finished", "mtime": 1.8e9} for r in _rows(start, 1000)]
            t0 = time.perf_counter()
            jc.record("node1", rows)
            updates.append(time.perf_counter() - t0)
        updates.sort()
        print(f"record(): 1000 status updates per transaction, median {updates[len(updates) // 2] * 1e3:.1f} ms")
        jc.close()

        t_pass, _ = _best([sys.executable, "-c", "pass"], env)
        t_version, _ = _best([*PLAMS, "--version"], env)
        t_literal, out = _best([*PLAMS, "jobs", "list", "--pattern", "job4242"], env)
        matched = max(0, len(out.splitlines()) - 2)
        t_regex, out_re = _best([*PLAMS, "jobs", "list", "--pattern", r"job4242\d$"], env)
        t_all, _ = _best([*PLAMS, "jobs", "list", "--short", "--status", "running"], env, runs=2)
        print(f"python -c pass:                         {t_pass * 1e3:7.1f} ms")
        print(f"plams --version:                        {t_version * 1e3:7.1f} ms")
        print(f"plams jobs list --pattern job4242:      {t_literal * 1e3:7.1f} ms  ({matched} of {n} jobs; "
              f"{t_literal / t_version:.2f}x plams --version; target <= 500 ms)")
        print(f"plams jobs list --pattern 'job4242\\d$': {t_regex * 1e3:7.1f} ms  "
              f"({max(0, len(out_re.splitlines()) - 2)} jobs; a regex, filtered in Python)")
        print(f"plams jobs list --short --status running: {t_all * 1e3:5.1f} ms  ({n // 5} jobs printed)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
