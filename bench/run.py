"""One benchmark command: plams-cli against PLAMS, signac and the physical floor, side by side.

    python bench/run.py [--quick] [--json [FILE]] [-n N] [--only WORKLOAD ...]
                        [--contenders plams-cli,plams,signac,floor] [--results FILE]
    python bench/run.py --render FILE.json [--results FILE]

Runs every workload of issue 14 on each contender that can do it, contenders alternating (the
order rotated each round) so drift of a loaded machine hits all alike, and reports medians with
min–max: serial, parallel (maxjobs=2) and reused identical jobs; start-up (``import + init +
finish``, ``plams --version``); a first run of an N-job script, then ``-r`` and ``-l`` over it
with nothing left to run, the resident memory of ``-r``, and ``load_all`` of the N jobs;
``plams jobs list --pattern`` over 100,000 cached jobs; workspace init and a cold find against
signac; the end-to-seen latency of a 1-s job through SLURM when a scheduler answers.

PLAMS (PyPI ``plams==2026.104``) runs from its own venv, ``bench/.venv-plams`` (made on first
use, reused after; git-ignored); its launcher is its ``scm-plams`` script. signac runs in child
processes of this interpreter. Every child records into a job cache file on the same tmpfs
(``PLAMS_JOBCACHE``), never the user's. Writes the table to stdout and to ``bench/RESULTS.md``
(with date, machine and versions, and a table of the issue's targets, met or not); progress goes
to stderr. ``--render`` writes the reports again from the JSON of an earlier run, measuring nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite import contenders as cont  # noqa: E402
from _suite import report  # noqa: E402
from _suite.workloads import ALIASES, GROUPS, Context, Row  # noqa: E402

BENCH = Path(__file__).resolve().parent
ORDER = ["serial", "parallel", "reuse", "startup", "finished", "jobs-list", "workspace", "grid"]


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer runs (a few minutes at most)")
    parser.add_argument("-n", type=int, help="finished jobs for -r, -l, load_all, memory (default 20000; quick 300)")
    parser.add_argument("--jobs", type=int, help="jobs per serial/parallel/reuse run (default 500; quick 50)")
    parser.add_argument("--repeats", type=int, help="runs per light workload (default 5; quick 3)")
    parser.add_argument("--heavy-repeats", type=int, help="runs per N-sized workload (default 3; quick 2)")
    parser.add_argument("--cache-jobs", type=int, help="jobs in the cache for jobs list (default 100000; quick 5000)")
    parser.add_argument("--workspace-jobs", type=int, help="workspace jobs (default 10000; quick 300)")
    parser.add_argument("--grid-runs", type=int, help="1-s grid jobs per contender (default 3; quick 1)")
    parser.add_argument("--only", nargs="+", metavar="WORKLOAD", choices=sorted([*GROUPS, *ALIASES]),
                        help=f"run only these ({', '.join(ORDER)}; restart, load, load_all, memory, first-run "
                             "are the 'finished' group)")
    parser.add_argument("--contenders", default=",".join(cont.NAMES),
                        help="comma-separated subset of plams-cli,plams,signac,floor (default: all)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="the results as JSON: on stdout instead of the table, or into FILE")
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="Markdown file written (default "
                        "bench/RESULTS.md); '-' writes none")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the jobs run (default /dev/shm, tmpfs)")
    parser.add_argument("--render", metavar="FILE.json",
                        help="measure nothing: write the table and --results again from a file of --json")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, small in (("n", 20000, 300), ("jobs", 500, 50), ("repeats", 5, 3), ("heavy_repeats", 3, 2),
                              ("cache_jobs", 100_000, 5000), ("workspace_jobs", 10_000, 300), ("grid_runs", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = sorted(set(names) - set(cont.NAMES))
    if unknown or not names:
        parser.error(f"--contenders: unknown {unknown}; choose from {','.join(cont.NAMES)}")
    if "plams-cli" not in names:
        parser.error("--contenders must include plams-cli (every ratio is plams-cli's)")
    args.contender_names = [n for n in cont.NAMES if n in names]
    return args


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the selected workloads and write the reports."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.render:
        return render(args.render, args.results)
    chosen: dict[str, cont.Contender] = {}
    for name in args.contender_names:
        if name == "plams-cli":
            chosen[name] = cont.plams_cli()
        elif name == "plams":
            chosen[name] = cont.plams_venv(BENCH)
        elif name == "signac":
            found = cont.signac()
            if found is None:
                log("signac is not importable here: its column is left out")
            else:
                chosen[name] = found
        else:
            chosen[name] = cont.floor()
    groups = [g for g in ORDER if g in {ALIASES.get(o, o) for o in (args.only or ORDER)}]
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    base = Path(tempfile.mkdtemp(prefix="plams-bench-run-", dir=args.dir))
    ctx = Context(base, chosen, args.n, args.jobs, args.repeats, args.heavy_repeats, args.cache_jobs,
                  args.workspace_jobs, args.grid_runs, log)
    rows: list[Row] = []
    try:
        for group in groups:
            log(f"workload group {group}")
            rows.extend(GROUPS[group](ctx))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    names = list(chosen)
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": argv,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "system": f"{platform.system()} {platform.release()} {platform.machine()}",
                    "load_start": load_start, "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg())},
        "versions": {c.name: cont.version(c) for c in chosen.values()},
        "params": {"n": args.n, "jobs": args.jobs, "repeats": args.repeats, "heavy_repeats": args.heavy_repeats,
                   "cache_jobs": args.cache_jobs, "workspace_jobs": args.workspace_jobs,
                   "grid_runs": args.grid_runs, "base": args.dir or tempfile.gettempdir()},
        "contenders": names,
        "groups": groups,
    }
    data = report.as_json(rows, meta)
    # The reports come from the figures as saved (rounded to 6 decimals), so --render of the
    # JSON writes them again byte for byte: a ratio on a rounding edge cannot differ.
    rows = report.rows_from_json(data)
    if args.json == "-":
        sys.stdout.write(report.dumps(data))
    else:
        sys.stdout.write(report.table(rows, names))
        if args.json:
            Path(args.json).write_text(report.dumps(data))
    if args.results != "-":
        Path(args.results).write_text(report.results_md(rows, names, meta))
        log(f"wrote {args.results}")
    return 0


def render(source: str, results: str) -> int:
    """Write the table (stdout) and ``results`` again from the JSON of an earlier run."""
    try:
        data = json.loads(Path(source).read_text())
        rows = report.rows_from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"run.py: error: --render {source}: {exc}", file=sys.stderr)
        return 2
    names = list(data["contenders"])
    sys.stdout.write(report.table(rows, names))
    if results != "-":
        Path(results).write_text(report.results_md(rows, names, data))
        log(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
