"""The physical floor: the least code doing the work a job layer does, run as a child script.

    python floor.py MODE ARGS...   (prints one JSON object on its last line)

Modes (``COUNTER`` is the file every runscript appends a line to, so reruns can be counted):

- ``jobs serial|parallel|reuse N FOLDER COUNTER``: N jobs, each ``mkdir`` + write the input and
  the runscript + ``sh runscript`` (output and error to files) + pickle a small record; parallel
  uses two threads; reuse runs one job and then hard-links its files into N new folders after a
  hash lookup. Timed inside, start-up excluded.
- ``first N FOLDER COUNTER``: N jobs as above plus an index file (hash -> folder), the whole
  process timed by the parent, as ``plams -f``.
- ``restart FOLDER N``: what ``-r`` must do: rename FOLDER to FOLDER.res, and per job build its
  input and runscript, hash them, look the hash up, rename the job folder back.
- ``load FOLDER NEW N``: what ``-l`` must do: the same lookups, then a new folder of hard links.
- ``unpickle FOLDER``: ``pickle.load`` of every job's record (timed inside).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

INDEX = "floor-index.json"


def runscript(counter: str) -> str:
    """The trivial runscript every contender runs."""
    return f"echo x > out\necho . >> {counter}\n"


def digest(text_in: str, text_run: str) -> str:
    """Hash of a job's input and runscript, as rerun prevention hashes them."""
    return hashlib.sha256((text_in + text_run).encode()).hexdigest()


def one_job(folder: str, name: str, value: str, run: str) -> str:
    """Make, run and record one job; return its hash."""
    path = os.path.join(folder, name)
    os.mkdir(path)
    with open(os.path.join(path, name + ".in"), "w") as handle:
        handle.write(value)
    with open(os.path.join(path, name + ".run"), "w") as handle:
        handle.write(run)
    with open(os.path.join(path, name + ".out"), "w") as out, open(os.path.join(path, name + ".err"), "w") as err:
        subprocess.run(["sh", name + ".run"], cwd=path, stdout=out, stderr=err, check=True)
    key = digest(value, run)
    with open(os.path.join(path, name + ".pkl"), "wb") as handle:
        pickle.dump({"name": name, "status": "successful", "hash": key}, handle)
    return key


def link_job(source: str, target: str) -> None:
    """A copy of a finished job folder made of hard links, files renamed for the new job."""
    os.mkdir(target)
    old, new = os.path.basename(source), os.path.basename(target)
    for entry in os.listdir(source):
        renamed = new + entry[len(old):] if entry.startswith(old + ".") else entry
        os.link(os.path.join(source, entry), os.path.join(target, renamed))


def jobs(mode: str, n: int, folder: str, counter: str) -> dict[str, object]:
    """Serial, parallel or reused jobs; the timed part only."""
    run = runscript(counter)
    if mode == "reuse":
        known = {one_job(folder, "orig", "same", run): os.path.join(folder, "orig")}
        start = time.perf_counter()
        for i in range(n):
            link_job(known[digest("same", run)], os.path.join(folder, f"job{i}"))
        return {"elapsed": time.perf_counter() - start}
    start = time.perf_counter()
    if mode == "parallel":
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda i: one_job(folder, f"job{i}", f"value {i}", run), range(n)))
    else:
        for i in range(n):
            one_job(folder, f"job{i}", f"value {i}", run)
    return {"elapsed": time.perf_counter() - start}


def first(n: int, folder: str, counter: str) -> dict[str, object]:
    """A first run of N jobs that leaves an index for the restart floors."""
    os.mkdir(folder)
    run = runscript(counter)
    index = {one_job(folder, f"job{i}", f"value {i}", run): f"job{i}" for i in range(n)}
    with open(os.path.join(folder, INDEX), "w") as handle:
        json.dump({"runscript": run, "jobs": index}, handle)
    return {"jobs": n}


def _lookups(folder: str, n: int) -> tuple[dict[str, str], list[str]]:
    with open(os.path.join(folder, INDEX)) as handle:
        index = json.load(handle)
    run, known = index["runscript"], index["jobs"]
    return known, [known[digest(f"value {i}", run)] for i in range(n)]


def restart(folder: str, n: int) -> dict[str, object]:
    """Restart in place: one rename per finished job."""
    old = folder + ".res"
    os.rename(folder, old)
    os.mkdir(folder)
    _, names = _lookups(old, n)
    for name in names:
        os.rename(os.path.join(old, name), os.path.join(folder, name))
    os.rename(os.path.join(old, INDEX), os.path.join(folder, INDEX))
    os.rmdir(old)
    return {"reused": len(names)}


def load(folder: str, new: str, n: int) -> dict[str, object]:
    """Reuse the jobs of another folder: hard links, the old folder stays whole."""
    os.mkdir(new)
    _, names = _lookups(folder, n)
    for name in names:
        link_job(os.path.join(folder, name), os.path.join(new, name))
    return {"reused": len(names)}


def unpickle(folder: str) -> dict[str, object]:
    """``pickle.load`` of every job record in FOLDER."""
    names = sorted(e for e in os.listdir(folder) if e.startswith("job"))
    start = time.perf_counter()
    records = []
    for name in names:
        with open(os.path.join(folder, name, name + ".pkl"), "rb") as handle:
            records.append(pickle.load(handle))
    return {"elapsed": time.perf_counter() - start, "count": len(records)}


def main(argv: list[str]) -> None:
    """Dispatch on the mode and print the result as JSON."""
    mode, args = argv[0], argv[1:]
    if mode == "jobs":
        result = jobs(args[0], int(args[1]), args[2], args[3])
    elif mode == "first":
        result = first(int(args[0]), args[1], args[2])
    elif mode == "restart":
        result = restart(args[0], int(args[1]))
    elif mode == "load":
        result = load(args[0], args[1], int(args[2]))
    elif mode == "unpickle":
        result = unpickle(args[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
