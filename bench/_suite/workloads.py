"""The workloads, each measured on every contender that can do it, contenders alternating.

A workload function takes the :class:`Context` and returns :class:`Row` objects (one figure
per contender). Within a workload the contenders take turns, in an order rotated each round,
so drift of a loaded machine hits all of them alike.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import children
from .contenders import Contender, clean_env
from .measure import Figure, Sample, run_child

FLOOR = str(Path(__file__).with_name("floor.py"))
BENCH = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the table.

    Attributes
    ----------
    key, label, unit : str
        Stable JSON key, the table's wording, the unit of the figures.
    digits : int
        Decimals shown.
    figures : dict of str to Figure
        Per contender name.
    reference : str
        The contender the ``vs`` ratio is taken to besides the floor (``plams`` or ``signac``).
    """

    key: str
    label: str
    unit: str
    digits: int
    figures: dict[str, Figure] = field(default_factory=dict)
    reference: str = "plams"


@dataclass
class Context:
    """What every workload needs: where to work, who competes, how much."""

    base: Path
    contenders: dict[str, Contender]
    n: int
    jobs: int
    repeats: int
    heavy_repeats: int
    cache_rows: int
    workspace_jobs: int
    grid_runs: int
    log: Callable[[str], None]

    @property
    def jobcache(self) -> str:
        """The job cache every child records into: a file on the same tmpfs, never the user's."""
        return str(self.base / "jobcache.sqlite")

    def env(self, contender: Contender, **extra: str) -> dict[str, str]:
        """Environment of a contender's child: its job module importable, our job cache file."""
        return clean_env(PLAMS_JOBCACHE=self.jobcache, PYTHONPATH=str(self.home(contender)), **extra)

    def home(self, contender: Contender) -> Path:
        """The contender's own folder, holding ``benchjobs.py`` and the job script."""
        path = self.base / contender.name
        if not path.exists():
            path.mkdir()
            counter = path / "ran.log"
            counter.touch()
            if contender.package:
                (path / "benchjobs.py").write_text(children.JOB_MODULE.format(pkg=contender.package,
                                                                              counter=counter))
        return path

    def counter(self, contender: Contender) -> Path:
        """File each runscript of this contender appends a line to."""
        return self.home(contender) / "ran.log"

    def ran(self, contender: Contender) -> int:
        """Runscripts run so far by this contender."""
        with open(self.counter(contender), "rb") as handle:
            return sum(1 for _ in handle)

    def pick(self, *names: str) -> list[Contender]:
        """The selected contenders among ``names``, in that order."""
        return [self.contenders[n] for n in names if n in self.contenders]


def rounds(contenders: list[Contender], count: int) -> Iterator[tuple[int, Contender]]:
    """``count`` rounds over the contenders, the order rotated each round."""
    for r in range(count):
        k = r % len(contenders) if contenders else 0
        for contender in contenders[k:] + contenders[:k]:
            yield r, contender


def _json(sample: Sample) -> dict[str, object]:
    result: dict[str, object] = json.loads(sample.stdout.strip().splitlines()[-1])
    return result


def _scratch(ctx: Context, name: str) -> Path:
    path = ctx.base / "scratch" / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def job_rows(ctx: Context, modes: list[str]) -> list[Row]:
    """Serial, parallel (maxjobs=2) and reused identical jobs: ms per job, start-up excluded."""
    labels = {"serial": "serial trivial jobs", "parallel": "parallel trivial jobs (maxjobs=2)",
              "reuse": "identical jobs reused (copied, not run)"}
    rows = []
    for mode in modes:
        row = Row(mode, f"{labels[mode]}, {ctx.jobs} jobs", "ms/job", 3)
        contenders = ctx.pick("plams-cli", "plams", "floor")
        for c in contenders:
            row.figures[c.name] = Figure()
        for r, c in rounds(contenders, ctx.repeats):
            ctx.log(f"{mode}: {c.label} round {r + 1}")
            folder = _scratch(ctx, f"{mode}-{c.name}-{r}")
            before = ctx.ran(c)
            if c.name == "floor":
                argv = [c.python, FLOOR, "jobs", mode, str(ctx.jobs), str(folder), str(ctx.counter(c))]
            else:
                ctx.home(c)
                argv = [c.python, "-c", children.JOBS.format(pkg=c.package), mode, str(ctx.jobs), str(folder)]
            result = _json(run_child(argv, ctx.env(c), str(folder)))
            figure = row.figures[c.name]
            figure.values.append(float(str(result["elapsed"])) / ctx.jobs * 1e3)
            if mode == "reuse":
                ran = ctx.ran(c) - before - (1 if c.name == "floor" else 6)  # the original (and warm-up jobs)
                if ran:
                    figure.note = f"ran {ran} of the {ctx.jobs} duplicates"
            statuses = result.get("statuses")
            if statuses and mode == "reuse" and statuses != ["copied"]:
                figure.note = f"statuses {statuses}"
            shutil.rmtree(folder)
        rows.append(row)
    return rows


def startup_rows(ctx: Context) -> list[Row]:
    """``import + init + finish`` and ``plams --version`` in fresh processes, seconds from here."""
    init = Row("startup_init", "start-up: import + init() + finish()", "s", 3)
    version = Row("startup_version", "start-up: `plams --version`", "s", 3)
    contenders = ctx.pick("plams-cli", "plams", "floor")
    commands: dict[str, tuple[list[str], list[str]]] = {}
    for c in contenders:
        if c.name == "floor":
            bare = [c.python, "-c", "pass"]
            commands[c.name] = (bare, bare)
        else:
            commands[c.name] = ([c.python, "-c", children.STARTUP.format(pkg=c.package)], [*c.launcher, "--version"])
        init.figures[c.name], version.figures[c.name] = Figure(), Figure()
    if "floor" in commands:
        init.figures["floor"].note = version.figures["floor"].note = "python -c pass"
    folder = _scratch(ctx, "startup")
    for c in contenders:  # untimed: bytecode caches
        for argv in commands[c.name]:
            run_child(argv, ctx.env(c), str(folder))
    for _, c in rounds(contenders, ctx.repeats * 2):
        for row, argv in zip((init, version), commands[c.name], strict=True):
            row.figures[c.name].values.append(run_child(argv, ctx.env(c), str(folder)).elapsed_s)
    return [init, version]


def finished_rows(ctx: Context) -> list[Row]:
    """A first run of N jobs, then ``-r`` and ``-l`` over it (nothing left to run), memory, load_all."""
    n = ctx.n
    first = Row("first_run", f"first run of a {n}-job script (`plams -f big s.plms`)", "s", 2)
    restart = Row("restart", f"`plams -r` over {n} finished jobs, nothing to run", "s", 2)
    load = Row("load", f"`plams -l big -f big2` over {n} finished jobs, nothing to run", "s", 2)
    memory = Row("memory_restart", f"resident memory of `-r` over {n} jobs", "MB", 0)
    per_job = Row("memory_per_job", f"resident memory of `-r` per job (above the same run over 0 jobs), {n} jobs",
                  "kB/job", 2)
    load_all = Row("load_all", f"`load_all` of {n} finished jobs (floor: pickle.load)", "ms/job", 3)
    rows = [first, restart, load, memory, per_job, load_all]
    contenders = ctx.pick("plams-cli", "plams", "floor")
    base_rss: dict[str, int] = {}
    for c in contenders:
        for row in rows:
            row.figures[c.name] = Figure()
        home = ctx.home(c)
        # The baseline of the per-job figure: the same command over zero jobs.
        if c.package:
            (home / "s.plms").write_text(children.SCRIPT.format(n=n))
            (home / "s0.plms").write_text(children.SCRIPT.format(n=0))
            probe = [*c.launcher, "-f", "empty", "s0.plms"]
        else:
            probe = [c.python, FLOOR, "first", "0", str(home / "empty"), str(ctx.counter(c))]
        base_rss[c.name] = run_child(probe, ctx.env(c), str(home)).maxrss_kb
        shutil.rmtree(home / "empty")
    reruns: dict[tuple[str, str], int] = {}

    def count_reruns(step: str, c: Contender, before: int) -> None:
        reruns[(step, c.name)] = reruns.get((step, c.name), 0) + ctx.ran(c) - before

    for r in range(ctx.heavy_repeats):
        for step in ("first", "restart", "load", "load_all"):
            k = r % len(contenders)
            for c in contenders[k:] + contenders[:k]:
                home, big = ctx.home(c), f"big{r}"
                ctx.log(f"{step} over {n} jobs: {c.label} round {r + 1}")
                before = ctx.ran(c)
                env = ctx.env(c)
                if step == "first":
                    argv = ([c.python, FLOOR, "first", str(n), str(home / big), str(ctx.counter(c))]
                            if c.name == "floor" else [*c.launcher, "-f", big, "s.plms"])
                    first.figures[c.name].values.append(run_child(argv, env, str(home)).elapsed_s)
                elif step == "restart":
                    argv = ([c.python, FLOOR, "restart", str(home / big), str(n)]
                            if c.name == "floor" else [*c.launcher, "-r", "-f", big, "s.plms"])
                    sample = run_child(argv, env, str(home))
                    restart.figures[c.name].values.append(sample.elapsed_s)
                    memory.figures[c.name].values.append(sample.maxrss_kb / 1024)
                    per_job.figures[c.name].values.append((sample.maxrss_kb - base_rss[c.name]) * 1.024 / n)
                    count_reruns("restart", c, before)
                    for leftover in home.glob(f"{big}.res*"):  # PLAMS keeps its backup; ours removes it
                        shutil.rmtree(leftover)
                elif step == "load":
                    argv = ([c.python, FLOOR, "load", str(home / big), str(home / f"load{r}"), str(n)]
                            if c.name == "floor" else [*c.launcher, "-l", big, "-f", f"load{r}", "s.plms"])
                    load.figures[c.name].values.append(run_child(argv, env, str(home)).elapsed_s)
                    count_reruns("load", c, before)
                    shutil.rmtree(home / f"load{r}")
                else:
                    if c.name == "floor":
                        argv = [c.python, FLOOR, "unpickle", str(home / big)]
                    else:
                        argv = [c.python, "-c", children.LOAD_ALL.format(pkg=c.package), str(home / big),
                                str(_scratch(ctx, "load_all"))]
                    result = _json(run_child(argv, env, str(home)))
                    load_all.figures[c.name].values.append(float(str(result["elapsed"])) / n * 1e3)
                    if result["count"] != n:
                        load_all.figures[c.name].note = f"loaded {result['count']} of {n}"
                    shutil.rmtree(home / big)
    for (step, name), count in reruns.items():
        if count:
            (restart if step == "restart" else load).figures[name].note = (
                f"reran {count} jobs in {ctx.heavy_repeats} runs")
    if "floor" in first.figures:
        memory.figures["floor"].note = "the floor's own -r"
    return rows


def jobs_list_rows(ctx: Context) -> list[Row]:
    """``plams jobs list --pattern`` over a job cache of many jobs (bench_jobcache.py's rows)."""
    sys.path.insert(0, str(BENCH))
    from bench_jobcache import _rows

    from plams_cli.jobcache import JobCache

    cache = ctx.base / "listing.sqlite"
    jc = JobCache(str(cache))
    for start in range(0, ctx.cache_rows, 1000):
        jc.record("node1", _rows(start, min(1000, ctx.cache_rows - start)))
    jc.close()
    row = Row("jobs_list", f"`plams jobs list --pattern job4242` over {ctx.cache_rows} cached jobs", "s", 3)
    floor_code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); cols = 'path, job_id, program, status, comment';"
        "rows = c.execute(f\"SELECT {cols} FROM jobs WHERE hostname || path || job_id || program || status"
        " || comment LIKE '%job4242%'\").fetchall(); print('\\n'.join(map(str, rows)))"
    )
    commands: dict[str, list[str]] = {}
    for c in ctx.pick("plams-cli", "plams", "floor"):
        if c.name == "plams":
            row.figures[c.name] = Figure(text="n/a (no job cache)")
            continue
        commands[c.name] = ([*c.launcher, "jobs", "list", "--pattern", "job4242"] if c.name == "plams-cli"
                            else [c.python, "-c", floor_code, str(cache)])
        row.figures[c.name] = Figure()
    if "floor" in commands:
        row.figures["floor"].note = "one SQL LIKE query in python"
    folder = _scratch(ctx, "jobs-list")
    contenders = ctx.pick(*commands)
    for c in contenders:
        run_child(commands[c.name], clean_env(PLAMS_JOBCACHE=str(cache)), str(folder))
    for _, c in rounds(contenders, ctx.repeats):
        sample = run_child(commands[c.name], clean_env(PLAMS_JOBCACHE=str(cache)), str(folder))
        row.figures[c.name].values.append(sample.elapsed_s)
    return [row]


WS_INIT = {
    "plams-cli": "from plams_cli.workspace import init_workspace as init",
    "signac": "import warnings; warnings.simplefilter('ignore'); from signac import init_project as init",
}
WS_FIND = {
    "plams-cli": "from plams_cli.workspace import Workspace; found = Workspace(root).find_jobs(flt)",
    "signac": ("import warnings; warnings.simplefilter('ignore'); import signac;"
               "found = signac.get_project(root).find_jobs(flt)"),
    "floor": (
        "import os, json; w = os.path.join(root, 'workspace'); found = []\n"
        "for d in os.listdir(w):\n"
        "    with open(os.path.join(w, d, 'signac_statepoint.json')) as f: sp = json.load(f)\n"
        "    if sp['b'] == flt['b'] and sp['a'] > flt['a']['$gt']: found.append(d)"
    ),
}
WS_FLOOR_INIT = '''
import hashlib, json, os
os.makedirs(os.path.join(root, "workspace"))
for sp in sps:
    text = json.dumps(sp, sort_keys=True, separators=(",", ":"))
    path = os.path.join(root, "workspace", hashlib.md5(text.encode()).hexdigest())
    os.mkdir(path)
    with open(os.path.join(path, "signac_statepoint.json"), "w") as handle:
        handle.write(text)
'''


def workspace_rows(ctx: Context) -> list[Row]:
    """Workspace init of M jobs and a cold filter query, fresh processes, vs signac (bench_workspace.py)."""
    m = ctx.workspace_jobs
    flt = {"b": 3, "a": {"$gt": m // 2}}
    init = Row("workspace_init", f"workspace: init {m} jobs, fresh process", "s", 2, reference="signac")
    find = Row("workspace_find", f"workspace: cold find {flt}, fresh process", "s", 3, reference="signac")
    contenders = ctx.pick("plams-cli", "signac", "floor")
    head = f"import sys; sys.path.insert(0, {str(BENCH)!r}); root = sys.argv[1]; flt = {flt!r}\n"
    counts: dict[str, set[int]] = {}
    for c in contenders:
        init.figures[c.name], find.figures[c.name] = Figure(), Figure()
        counts[c.name] = set()
    for r, c in rounds(contenders, ctx.heavy_repeats):
        ctx.log(f"workspace: {c.label} round {r + 1}")
        root = ctx.base / "ws" / f"{c.name}{r}"
        root.parent.mkdir(exist_ok=True)
        sps = f"from bench_workspace import _statepoints; sps = _statepoints({m})\n"
        code = head + sps + (WS_FLOOR_INIT if c.name == "floor" else
                             WS_INIT[c.name] + "\nws = init(root)\nfor sp in sps:\n    ws.open_job(sp).init()\n")
        init.figures[c.name].values.append(run_child([c.python, "-c", code, str(root)], ctx.env(c),
                                                     str(root.parent)).elapsed_s)
        query = head + WS_FIND[c.name] + "\nprint(len(found))\n"
        run_child([c.python, "-c", query, str(root)], ctx.env(c), str(root.parent))  # bytecode caches
        for _ in range(2):
            sample = run_child([c.python, "-c", query, str(root)], ctx.env(c), str(root.parent))
            find.figures[c.name].values.append(sample.elapsed_s)
            counts[c.name].add(int(sample.stdout.strip()))
        shutil.rmtree(root)
    if len({frozenset(v) for v in counts.values()}) > 1:
        for c in contenders:
            find.figures[c.name].note = f"matches {sorted(counts[c.name])}"
    if "floor" in init.figures:
        init.figures["floor"].note = "mkdir + write signac_statepoint.json"
        find.figures["floor"].note = "read every state point, filter in python"
    return [init, find]


def scheduler_up() -> bool:
    """A SLURM answers here (``sinfo`` works)."""
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def _floor_latency(folder: Path) -> float:
    """sbatch a 1-s job, poll squeue every 0.2 s: seconds from its end to its leaving the queue."""
    script = folder / "one.sh"
    script.write_text("#!/bin/sh\nsleep 1\ndate +%s.%N > end.txt\n")
    out = subprocess.run(["sbatch", "--parsable", "-J", "bench-floor-latency", "-D", str(folder), "-o", "/dev/null",
                          str(script)], capture_output=True, text=True, check=True).stdout
    job_id = out.strip().split(";")[0]
    while subprocess.run(["squeue", "-h", "-o", "%i", "-j", job_id], capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    seen = time.time()
    return seen - float((folder / "end.txt").read_text())


def grid_rows(ctx: Context) -> list[Row]:
    """End-to-seen latency of a 1-s SLURM job: GridRunner's defaults, PLAMS's, a 0.2-s squeue poll."""
    row = Row("grid_latency", "grid: end-to-seen latency of a 1-s SLURM job", "s", 2)
    contenders = ctx.pick("plams-cli", "plams", "floor")
    if not scheduler_up():
        for c in contenders:
            row.figures[c.name] = Figure(text="no scheduler")
        return [row]
    for c in contenders:
        row.figures[c.name] = Figure()
    if "floor" in row.figures:
        row.figures["floor"].note = "sbatch + squeue every 0.2 s"
    for r, c in rounds(contenders, ctx.grid_runs):
        ctx.log(f"grid latency: {c.label} round {r + 1}")
        folder = _scratch(ctx, f"grid-{c.name}-{r}")
        if c.name == "floor":
            row.figures[c.name].values.append(_floor_latency(folder))
        else:
            code = children.GRID_LATENCY.format(pkg=c.package)
            result = _json(run_child([c.python, "-c", code, str(folder)], ctx.env(c), str(folder), timeout_s=300))
            row.figures[c.name].values.append(float(str(result["latency"])))
            if not result["ok"]:
                row.figures[c.name].note = "job not ok"
    return [row]


GROUPS: dict[str, Callable[[Context], list[Row]]] = {
    "serial": lambda ctx: job_rows(ctx, ["serial"]),
    "parallel": lambda ctx: job_rows(ctx, ["parallel"]),
    "reuse": lambda ctx: job_rows(ctx, ["reuse"]),
    "startup": startup_rows,
    "finished": finished_rows,
    "jobs-list": jobs_list_rows,
    "workspace": workspace_rows,
    "grid": grid_rows,
}
ALIASES = {"restart": "finished", "load": "finished", "load_all": "finished", "memory": "finished",
           "first-run": "finished"}
