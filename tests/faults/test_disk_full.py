"""A working folder on a small tmpfs that fills up during a run, then ``-r`` once space is freed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from plams_cli.core.pickling import read_job
from tests.conftest import logged_status
from tests.needs import missing

from . import report
from .conftest import PLAMS, tracebacks

FAULT = "disk full during a run (tmpfs)"
JOBS = 12
SCRIPT = f"""
for i in range({JOBS}):
    ShellJob(name=f"j{{i:02d}}", runscript=f"head -c 150000 /dev/zero > data.{{i}}\\n").run()
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted on ``tmp_path/disk`` (needs root); unmounted at teardown, also after a failure."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing(f"cannot mount a tmpfs: {done.stderr}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _saved(folder: Path) -> dict[str, bytes]:
    """The bytes of every saved job file (all must read whole)."""
    files = {}
    for path in sorted(folder.rglob("*.dill")) + sorted(folder.rglob("*.job.json")):
        if path.suffix == ".dill":
            read_job(str(path))
        else:
            json.loads(path.read_text())
        files[str(path.relative_to(folder))] = path.read_bytes()
    return files


def test_disk_full_during_a_run(small_disk: Path, env: dict[str, str]) -> None:
    (small_disk / "s.plms").write_text(SCRIPT)
    filler = small_disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as handle:
        handle.write(b"\0" * 2_300_000)
    first = subprocess.run([*PLAMS, "-f", "w", "s.plms"], cwd=small_disk, env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    work = small_disk / "w"
    saved = _saved(work)  # every file saved before the disk filled reads whole
    successful = {Path(name).stem for name in saved if name.endswith(".dill")}
    crashed = [f"j{i:02d}" for i in range(JOBS) if f"j{i:02d}" not in successful]
    assert first.returncode == 0 and crashed and successful, first.stderr
    assert "No space left on device" in first.stderr
    assert f"JOB {crashed[0]} CRASHED" in first.stderr
    filler.unlink()
    second = subprocess.run([*PLAMS, "-r", "-f", "w", "s.plms"], cwd=small_disk, env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    after = _saved(work)
    status = {Path(name).stem: read_job(str(work / name)).status for name in after if name.endswith(".dill")}
    rerun = [name for name in successful if logged_status(work, name) != "copied"]  # reused, not run again
    lost = JOBS - len(status)
    leftovers = [p.name for p in small_disk.iterdir() if p.name not in ("w", "s.plms")]
    seen = tracebacks(first.stderr, second.stderr)
    report.record(FAULT, 1, jobs=JOBS, lost=lost, rerun=len(rerun), tracebacks=seen, leftovers=len(leftovers),
                  note=f"4 MB tmpfs filled by the run: {len(crashed)} jobs crashed with 'No space left on device', "
                       "earlier saved files intact, -r after freeing space ran those and reused the rest")
    assert second.returncode == 0, second.stderr
    assert (lost, rerun, seen, leftovers) == (0, [], 0, [])
    assert all(status[name] == "successful" for name in crashed)
    assert f"Finished: {len(successful)} copied, {len(crashed)} successful" in second.stderr or (
        f"Finished: {len(crashed)} successful, {len(successful)} copied" in second.stderr), second.stderr
