"""Benchmark: plams workspace vs signac — init 10,000 jobs, then a cold filter query.

Run ``python bench/bench_workspace.py [N]``. Workspaces go to /dev/shm (tmpfs). The query
runs in a fresh interpreter (``subprocess``), timed from the parent, so it includes Python
start-up and imports. Figures only; nothing is asserted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, cast

FILTER = {"b": 3, "a": {"$gt": 5000}}
BASE = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _statepoints(n: int) -> list[dict[str, Any]]:
    return [{"a": i, "b": i % 7, "name": f"x{i}", "nested": {"c": i * 0.5}} for i in range(n)]


def _fresh(code: str, root: str, env: dict[str, str], runs: int = 3) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(runs + 1):  # the first run writes bytecode caches; keep the best
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code, root], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(n: int = 10_000) -> None:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure as users run it: with .pyc files
    sps = _statepoints(n)
    tmp = tempfile.mkdtemp(prefix="bench-ws-", dir=BASE)
    try:
        from plams_cli.workspace import Workspace

        root = os.path.join(tmp, "plams")
        start = time.perf_counter()
        ws = Workspace(root, create=True)
        for sp in sps:
            ws.open_job(sp).init()
        t_init = time.perf_counter() - start
        start = time.perf_counter()
        ws._flush_at_exit()  # what the interpreter does at exit: rebuild the column cache
        t_flush = time.perf_counter() - start
        code = (
            "import sys; from plams_cli.workspace import Workspace;"
            f"print(len(Workspace(sys.argv[1]).find_jobs({FILTER!r})))"
        )
        t_find, found = _fresh(code, root, env)
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(cast(str, __import__("plams_cli").__file__))))
        stub = (
            "import sys, types; p = types.ModuleType('plams_cli');"
            f"p.__path__ = [{os.path.join(pkg, 'plams_cli')!r}]; sys.modules['plams_cli'] = p;"
        )
        t_find_leaf, _ = _fresh(stub + code, root, env)
        t_python, _ = _fresh("pass", root, env)

        import signac

        sroot = os.path.join(tmp, "signac")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            project = signac.init_project(sroot)
            for sp in sps:
                project.open_job(sp).init()
            s_init = time.perf_counter() - start
        scode = (
            "import sys, warnings; warnings.simplefilter('ignore'); import signac;"
            f"print(len(signac.get_project(sys.argv[1]).find_jobs({FILTER!r})))"
        )
        s_find, s_found = _fresh(scode, sroot, env)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signac.get_project(sroot).update_cache()
        s_find_cached, _ = _fresh(scode, sroot, env)

        print(f"jobs: {n} on {BASE or tempfile.gettempdir()}; filter {FILTER}; matches plams={found} signac={s_found}")
        print(f"{'':38}{'plams':>10}{'signac':>10}")
        print(f"{'init (in process)':38}{t_init:10.3f}{s_init:10.3f}")
        print(f"{'  + cache rebuild at exit':38}{t_flush:10.3f}{'-':>10}")
        print(f"{'find, fresh process':38}{t_find:10.3f}{s_find:10.3f}")
        print(f"{'find, fresh process, signac cache':38}{'':>10}{s_find_cached:10.3f}")
        print(f"{'find, fresh, workspace modules only':38}{t_find_leaf:10.3f}{'':>10}")
        print(f"{'bare python start-up':38}{t_python:10.3f}{'':>10}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
