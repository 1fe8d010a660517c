"""Run one child process and measure it: wall time from here and the child's peak resident memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Sample:
    """One finished child process.

    Attributes
    ----------
    elapsed_s : float
        Wall time from start to reaping, seen from the parent (start-up and imports included).
    maxrss_kb : int
        Peak resident set size of the child and the descendants it waited for, in KiB.
    stdout, stderr : str
        What the child printed.
    """

    elapsed_s: float
    maxrss_kb: int
    stdout: str
    stderr: str


class ChildFailed(RuntimeError):
    """A measured child process exited with a non-zero status."""


def run_child(argv: list[str], env: dict[str, str], cwd: str, timeout_s: float = 3600) -> Sample:
    """Run ``argv`` to its end and return its :class:`Sample`.

    ``os.wait4`` gives the rusage of this one child, so a peak of an earlier child never
    leaks into the figure (as it would with ``RUSAGE_CHILDREN``, a running maximum).

    Raises
    ------
    ChildFailed
        If the child exits with a non-zero status (killed after ``timeout_s``).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout_s, proc.kill)  # a blocking wait4 adds no polling delay to the figure
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        sample = Sample(elapsed, usage.ru_maxrss, out.read(), err.read())
    if proc.returncode != 0:
        raise ChildFailed(f"{' '.join(argv[:4])} … exited {proc.returncode}:\n{sample.stderr[-3000:]}")
    return sample


@dataclass
class Figure:
    """The runs of one contender on one workload: values, or a text saying why there are none."""

    values: list[float] = field(default_factory=list)
    text: str = ""
    note: str = ""

    @property
    def median(self) -> float | None:
        """Median of the values, or None without values."""
        return statistics.median(self.values) if self.values else None

    def cell(self, digits: int) -> str:
        """Markdown cell: ``median (min–max)``, or the text."""
        if not self.values:
            return self.text or "–"
        med = f"{self.median:.{digits}f}"
        if len(self.values) == 1:
            return med
        return f"{med} ({min(self.values):.{digits}f}–{max(self.values):.{digits}f})"
