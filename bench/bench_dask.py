"""Bench: many trivial jobs on the localhost SLURM through DaskRunner, GridRunner and the local runner.

The same job-layer script (``ShellJob`` s whose runscript is ``echo i``) runs three times in
one process, once per runner, each in a fresh working folder; the wall time runs from the
first ``job.run()`` to the end of ``finish()``:

* ``DaskRunner("slurm", jobs=1, cores=2)``: one worker batch job holds both cores; its
  start (the sbatch, the worker connecting) is part of the time, as in a real run; the
  output says how many Dask tasks the runscripts took (short ones share a task);
* ``GridRunner("slurm")``: one batch job per job;
* ``JobRunner(parallel=True, maxjobs=2)``: this machine, two at a time (the reference).

Targets (issue 15): DaskRunner at least 20x faster than GridRunner, within 3x of the local
parallel runner. GridRunner at 1,000 jobs takes minutes; ``--grid-jobs`` measures it on fewer
jobs and compares per job (said in the output).

Usage (the localhost SLURM must be up: ``bash tests/schedulers/slurm_localhost.sh start``)::

    python bench/bench_dask.py [--jobs 1000] [--grid-jobs 200] [--no-grid] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def run_jobs(folder: Path, name: str, runner: Any, jobs: int) -> dict[str, Any]:
    """Seconds from the first ``run()`` to the end of ``finish()``, and the jobs' statuses."""
    from plams_cli import ShellJob, config, finish, init
    from plams_cli.core.observers import subscribe, unsubscribe

    class FirstStart:
        """Notes when the first runscript starts (for DaskRunner: when the first worker is up)."""

        when: float | None = None

        def status_changed(self, *args: Any) -> None:
            pass

        def job_launched(self, job: Any, launch: Any) -> None:
            if self.when is None:
                self.when = time.perf_counter()

    config.log.stdout = 0
    config.jobcache.enabled = False
    init(path=str(folder), folder=name, quiet=True)
    first = FirstStart()
    subscribe(first)
    start = time.perf_counter()
    all_jobs = [ShellJob(name="t", runscript=f"echo {i}") for i in range(jobs)]
    for job in all_jobs:
        job.run(jobrunner=runner)
    finish()
    seconds = time.perf_counter() - start
    unsubscribe(first)
    first_start = (first.when - start) if first.when is not None else None
    statuses: dict[str, int] = {}
    for job in all_jobs:
        statuses[job.status.value] = statuses.get(job.status.value, 0) + 1
    errors = sorted({job.get_errormsg() or "" for job in all_jobs if not job.ok()})
    return {"jobs": jobs, "seconds": seconds, "per_job_ms": 1000 * seconds / jobs, "statuses": statuses,
            "first_start_s": first_start, "errors": errors[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs for DaskRunner and the local runner")
    parser.add_argument("--grid-jobs", type=int, default=None, help="jobs for GridRunner (default: --jobs)")
    parser.add_argument("--partition", default="plamstest")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--no-grid", action="store_true", help="leave GridRunner out (quick iterations)")
    args = parser.parse_args()
    grid_jobs = args.grid_jobs or args.jobs

    from plams_cli import DaskRunner, GridRunner, JobRunner

    name = f"bench-dask-{uuid.uuid4().hex[:6]}"
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        dask = DaskRunner("slurm", jobs=1, cores=2, memory="1GB", walltime="00:30:00", queue=args.partition,
                          interface="lo", log_directory=str(folder / "logs"), job_name=name)
        contenders = [("local", JobRunner(parallel=True, maxjobs=2), args.jobs), ("dask", dask, args.jobs)]
        if not args.no_grid:
            contenders.append(("grid", GridRunner("slurm", sleepstep=1), grid_jobs))
        for label, runner, jobs in contenders:
            print(f"{label}: {jobs} jobs ...", file=sys.stderr, flush=True)
            results[label] = run_jobs(folder, label, runner, jobs)
            if label == "dask":  # short runscripts share Dask tasks: how many it took
                results[label]["dask_tasks"] = dask.submitted["tasks"]
            print(f"{label}: {results[label]['seconds']:.1f} s ({results[label]['statuses']})",
                  file=sys.stderr, flush=True)
        left = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %t"], capture_output=True, text=True).stdout
    per = {label: r["per_job_ms"] for label, r in results.items()}
    figures = {
        "results": results,
        "grid_over_dask_per_job": per["grid"] / per["dask"] if "grid" in per else None,
        "dask_over_local": results["dask"]["seconds"] / results["local"]["seconds"],
        # the same, without the worker's start (the wait for its batch job and connection)
        "dask_after_start_over_local": (results["dask"]["seconds"] - (results["dask"]["first_start_s"] or 0))
        / results["local"]["seconds"],
        "worker_batch_jobs_left": left.split(),
        "targets": {"grid_over_dask_per_job": ">= 20", "dask_over_local": "<= 3"},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'runner':<8} {'jobs':>6} {'seconds':>9} {'ms/job':>8} {'1st start s':>12}")
    for label, r in results.items():
        first = f"{r['first_start_s']:.2f}" if r["first_start_s"] is not None else "-"
        print(f"{label:<8} {r['jobs']:>6} {r['seconds']:>9.2f} {r['per_job_ms']:>8.2f} {first:>12}")
    same = "" if grid_jobs == args.jobs else f" (GridRunner at {grid_jobs} jobs, compared per job)"
    if figures["grid_over_dask_per_job"] is not None:
        print(f"GridRunner / DaskRunner: {figures['grid_over_dask_per_job']:.1f}x{same} (target >= 20x)")
    print(f"DaskRunner / local parallel: {figures['dask_over_local']:.2f}x (target <= 3x); "
          f"after the worker's start: {figures['dask_after_start_over_local']:.2f}x")
    print(f"DaskRunner: {results['dask']['jobs']} runscripts in {results['dask']['dask_tasks']} Dask tasks")
    print(f"worker batch jobs left in the queue: {len(figures['worker_batch_jobs_left']) // 2}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PLAMS_JOBCACHE", "off")
    sys.exit(main())
