"""Bench: GridRunner against a plain ``sbatch`` loop on the same SLURM, in one run.

1. Throughput: N trivial jobs (default 100) submitted through ``GridRunner.call`` from N
   threads (as a parallel runner does) and waited for, against a shell-style loop of
   ``sbatch --parsable`` followed by polling ``squeue`` every 0.2 s until the queue holds
   none of them. The two are interleaved (baseline, grid, baseline, grid …) so both see
   the same cluster; the ratio of the medians must be at most 1.1.
2. Latency: a 1-s job whose runscript records its own end time (``date +%s.%N``); the
   end-to-seen latency is the moment ``call()`` returned minus that end time.

Usage (the localhost SLURM must be up: ``bash tests/schedulers/slurm_localhost.sh start``)::

    python bench/bench_grid.py [--jobs 100] [--rounds 7] [--latency 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from plams_cli.runners.grid import GridRunner


def baseline(folder: Path, jobs: int) -> float:
    """Seconds for a plain sbatch loop plus waiting for the queue to empty."""
    script = folder / "trivial.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    script.chmod(0o755)
    start = time.perf_counter()
    ids = []
    for i in range(jobs):
        out = subprocess.run(
            ["sbatch", "--parsable", "-J", f"bench-base-{i}", "-D", str(folder), "-o", "/dev/null", str(script)],
            capture_output=True, text=True, check=True,
        ).stdout
        ids.append(out.strip().split(";")[0])
    joined = ",".join(ids)
    while True:
        listing = subprocess.run(["squeue", "-h", "-o", "%i", "-j", joined], capture_output=True, text=True).stdout
        if not listing.strip():
            break
        time.sleep(0.2)
    return time.perf_counter() - start


def through_gridrunner(folder: Path, jobs: int) -> float:
    """Seconds for the same jobs through one GridRunner, one thread per job."""
    gr = GridRunner("slurm", sleepstep=5)
    codes: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        job = folder / f"job{i}"
        job.mkdir(exist_ok=True)
        script = job / "trivial.run"
        script.write_text("#!/bin/sh\ntrue\n")
        script.chmod(0o755)
        code = gr.call("trivial.run", str(job), None, None, {"J": f"bench-grid-{i}"})
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(jobs)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if codes != [0] * jobs:
        raise SystemExit(f"some jobs failed: {codes}")
    return elapsed


def latency(folder: Path) -> float:
    """Seconds from the end of a 1-s job to the moment GridRunner.call returns."""
    folder.mkdir(exist_ok=True)
    script = folder / "one.run"
    script.write_text("#!/bin/sh\nsleep 1\ndate +%s.%N > end.txt\n")
    script.chmod(0o755)
    gr = GridRunner("slurm", sleepstep=5)
    gr.call("one.run", str(folder), None, None, {"J": "bench-latency"})
    seen = time.time()
    return seen - float((folder / "end.txt").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7,
                        help="interleaved rounds (SLURM's scheduling cycle makes single rounds vary by a second)")
    parser.add_argument("--latency", type=int, default=5, help="number of 1-s jobs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    base_times, grid_times, lat = [], [], []
    with tempfile.TemporaryDirectory(prefix="plams-bench-grid-") as tmp:
        root = Path(tmp)
        for r in range(args.rounds):
            (root / f"base{r}").mkdir()
            (root / f"grid{r}").mkdir()
            base_times.append(baseline(root / f"base{r}", args.jobs))
            grid_times.append(through_gridrunner(root / f"grid{r}", args.jobs))
            print(f"round {r + 1}: sbatch loop {base_times[-1]:.2f} s, GridRunner {grid_times[-1]:.2f} s",
                  file=sys.stderr)
        for i in range(args.latency):
            lat.append(latency(root / f"lat{i}"))
    ratio = statistics.median(grid_times) / statistics.median(base_times)
    result = {
        "jobs": args.jobs,
        "sbatch_loop_s": base_times,
        "gridrunner_s": grid_times,
        "ratio_of_medians": round(ratio, 3),
        "latency_1s_job_s": [round(x, 3) for x in lat],
        "latency_median_s": round(statistics.median(lat), 3),
        "latency_max_s": round(max(lat), 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.jobs} trivial jobs: sbatch loop median {statistics.median(base_times):.2f} s, "
              f"GridRunner median {statistics.median(grid_times):.2f} s, ratio {ratio:.3f} (must be <= 1.1); "
              f"best {min(base_times):.2f} s vs {min(grid_times):.2f} s")
        print(f"1-s job end-to-seen latency: median {result['latency_median_s']:.3f} s, "
              f"max {result['latency_max_s']:.3f} s")
    return 0 if ratio <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
