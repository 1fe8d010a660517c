"""Grid jobs a killed ``plams`` left in the queue: found and cancelled when the run restarts.

A job folder of ``NAME.res`` with a job record and no exit-code record (see
:func:`~._records.find_leftovers`) holds a job the killed run never saw end. The restart
runs that job again, so the old one is asked about and, when the scheduler still has it
queued or running, cancelled: nobody would read its results, and a job still queued would
later start in the job folder the new run uses (its wrapper changes into the folder by
its absolute path).

It is cancelled only when the record was written on this host, so a working folder copied
from another cluster never cancels a job that merely has the same id here; otherwise, and
when the scheduler cannot be asked, a warning names the job and the command to cancel it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Container

from plams_cli._fs import hostname
from plams_cli.errors import PlamsError
from plams_cli.runners.grid._records import LeftoverJob, find_leftovers

__all__ = ["stop_leftovers"]


def stop_leftovers(root: str, finished: Container[str] = ()) -> list[tuple[int, str]]:
    """Cancel the grid jobs under ``root`` (``NAME.res``) that are still queued or running.

    ``finished`` names folders of finished jobs, not looked into (see :func:`find_leftovers
    <._records.find_leftovers>`). Returns log lines as ``(level, text)``: level 1 for a job
    cancelled, 0 for a warning (a job that may still run and was not cancelled).
    """
    by_grid: dict[str, list[LeftoverJob]] = {}
    for job in find_leftovers(root, finished):
        by_grid.setdefault(job.grid, []).append(job)
    lines: list[tuple[int, str]] = []
    for grid, jobs in sorted(by_grid.items()):
        lines += _stop_on(grid, jobs, root)
    return lines


def _stop_on(grid: str, jobs: list[LeftoverJob], root: str) -> list[tuple[int, str]]:
    # (the runner only when there are leftovers: every restart looks for them)
    from plams_cli.runners.grid._base import GridRunner
    from plams_cli.runners.grid._command import run_command
    from plams_cli.runners.grid._config import grid_definitions

    def name(job: LeftoverJob) -> str:
        return os.path.relpath(job.folder, root)

    try:
        runner = GridRunner(grid if grid in grid_definitions() else "auto")
        states = runner.query([job.job_id for job in jobs])
    except PlamsError as exc:
        return [(0, f"Restart: cannot ask {grid} whether job {job.job_id} ({name(job)}) of the killed run still "
                    f"runs ({exc}); if it does, cancel it: {job.cancel_hint()}") for job in jobs]
    lines: list[tuple[int, str]] = []
    here = hostname()
    for job in jobs:
        state = states.get(job.job_id)
        if state is None or state.finished:
            continue
        argv = runner.cancel_command([job.job_id])
        command = shlex.join(argv) if argv else job.cancel_hint()
        what = f"{runner.grid} job {job.job_id} ({name(job)}, state {state.state})"
        if job.host != here:
            lines.append((0, f"Restart: {what} is queued or running; not cancelled: it was submitted from "
                             f"{job.host}, where the id may stand for another job. If it is the killed run's, "
                             f"the restart runs the job again: cancel the old one with: {command}"))
            continue
        if argv is None:
            lines.append((0, f"Restart: {what} of the killed run is still queued or running and the restart "
                             f"runs the job again; grid {runner.grid} has no cancel command: cancel it yourself"))
            continue
        result = run_command(argv)
        if result.ok:
            lines.append((1, f"Restart: cancelled {what}, left running by the killed run "
                             "(the restart runs the job again)"))
        else:
            lines.append((0, f"Restart: could not cancel {what} of the killed run: {result.describe()}; "
                             f"cancel it with: {command}"))
    return lines
