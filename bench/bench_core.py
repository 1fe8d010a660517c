"""Benchmark of the core job layer: per-job overhead and start-up time.

Runs N trivial SingleJobs (runscript ``echo x > out``, distinct inputs, pickling on),
after 20 untimed warm-up jobs, serially and in parallel (``maxjobs=2``), a bare ``mkdir`` + ``sh runscript`` loop for
reference, and ``import plams_cli`` + ``init()`` + ``finish()`` in fresh interpreters.

    python bench/bench_core.py [-n 500] [--dir /tmp]

Prints one line per figure; targets (2-core machine): serial <= 1.5 ms/job,
parallel <= 1.2 ms/job, start-up <= 0.12 s. Each job case runs with the job cache off and
on (``PLAMS_JOBCACHE``, a file on the same tmpfs), alternating; recording must not cost
more than 10%.

The jobs run on tmpfs (/dev/shm) by default: the figures are those of the job layer, not of
the disk. Each job makes a folder and six files (input, runscript, output, error, saved job,
summary), which on a virtual machine's ext4 costs more than the rest together (seen here:
165 us per file creation, 220 us per fsync); ``--dir`` measures any other place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, time
from plams_cli import SingleJob, JobRunner, config, init, finish

class EchoJob(SingleJob):
    def get_input(self):
        return self.settings.input.value

    def get_runscript(self):
        return "echo x > out"

n, parallel, folder = int(sys.argv[1]), sys.argv[2] == "parallel", sys.argv[3]
config.log.stdout = 0
init(path=folder, folder="bench")
runner = JobRunner(parallel=True, maxjobs=2) if parallel else JobRunner()
for i in range(20):  # warm-up, untimed: one-time costs (imports on first save) are not per job
    warm = EchoJob(name=f"warm{i}")
    warm.settings.input.value = f"warm {i}"
    warm.run(jobrunner=runner)
    warm.results.wait()
start = time.perf_counter()
jobs = []
for i in range(n):
    job = EchoJob(name=f"job{i}")
    job.settings.input.value = f"value {i}"
    job.run(jobrunner=runner)
    jobs.append(job)
for job in jobs:
    job.results.wait()
elapsed = time.perf_counter() - start
assert all(job.ok() for job in jobs), [job.get_errormsg() for job in jobs if not job.ok()][:3]
finish()
print(elapsed)
"""


def bare_loop(n: int, folder: str) -> float:
    """mkdir + write a runscript + run it with sh, n times: the floor for any job layer."""
    start = time.perf_counter()
    for i in range(n):
        path = os.path.join(folder, f"bare{i}")
        os.mkdir(path)
        with open(os.path.join(path, "run"), "w") as handle:
            handle.write("echo x > out\n")
        subprocess.run(["sh", "run"], cwd=path, check=True)
    return time.perf_counter() - start


def run_jobs(n: int, mode: str, folder: str, cache: str = "off") -> float:
    env = {**os.environ, "PLAMS_JOBCACHE": cache}
    result = subprocess.run([sys.executable, "-c", CHILD, str(n), mode, folder], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def startup(folder: str, repeats: int) -> list[float]:
    code = "import plams_cli; plams_cli.config.log.stdout = 0; plams_cli.init(); plams_cli.finish()"
    times = []
    env = {**os.environ, "PLAMS_JOBCACHE": os.path.join(folder, "jobcache.sqlite")}
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=folder, check=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=500, help="jobs per case (default 500)")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where to run (default: /dev/shm, tmpfs, where it exists)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the best is reported")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="plams-bench-", dir=args.dir)
    try:
        print(f"folder: {base} ({args.n} jobs per case, best of {args.repeats})")
        bare = []
        for r in range(args.repeats):
            sub = os.path.join(base, f"bare{r}")
            os.mkdir(sub)
            bare.append(bare_loop(args.n, sub))
        print(f"bare mkdir + sh loop : {min(bare) / args.n * 1000:6.3f} ms/job")
        cache = os.path.join(base, "jobcache.sqlite")
        for mode in ("serial", "parallel"):
            times: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.repeats):  # recording off and on alternate, so drift hits both alike
                for state in ("off", "on"):
                    sub = os.path.join(base, f"{mode}{r}{state}")
                    os.mkdir(sub)
                    times[state].append(run_jobs(args.n, mode, sub, "off" if state == "off" else cache))
            label = "serial" if mode == "serial" else "parallel (maxjobs=2)"
            off, on = min(times["off"]) / args.n * 1000, min(times["on"]) / args.n * 1000
            print(f"plams {label:<21}: {off:6.3f} ms/job without the job cache, {on:6.3f} with it "
                  f"({(on / off - 1) * 100:+.1f}%)")
        sub = os.path.join(base, "startup")
        os.mkdir(sub)
        startup_times = startup(sub, max(5, args.repeats))
        print(f"import + init + finish: {statistics.median(startup_times):6.3f} s "
              f"(median of {len(startup_times)}, best {min(startup_times):.3f})")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
