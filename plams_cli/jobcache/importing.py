"""Cache rows for the jobs of existing working folders, read from their ``.job.json`` files."""

from __future__ import annotations

import os
from typing import Any

from plams_cli.errors import UserError
from plams_cli.jobcache.inspect import SUMMARY_SUFFIX, read_summary
from plams_cli.jobcache.status import core_status

__all__ = ["rows_from_folder", "row_from_summary"]


def row_from_summary(summary_path: str, workdir: str) -> dict[str, Any]:
    """The cache row of the job whose summary is ``summary_path``, in the working folder ``workdir``.

    The modification time is the job's last status change, so a newer record of the
    same job (by a run) is not overwritten.

    Raises
    ------
    UserError
        The summary is unreadable or its status is not one of the core's.
    """
    data = read_summary(summary_path)
    folder = os.path.dirname(os.path.abspath(summary_path))
    name = str(data.get("name") or os.path.basename(folder))
    stamps = data.get("timestamps")
    if not isinstance(stamps, dict):
        stamps = {}
    times = [float(t) for t in stamps.values() if isinstance(t, (int, float))]
    row: dict[str, Any] = {
        "path": folder,
        "program": str(data.get("class") or "").rsplit(".", 1)[-1] or None,
        "status": core_status(str(data.get("status"))).value,
        "comment": f"job {name} in {workdir}",
        "mtime": max(times) if times else os.path.getmtime(summary_path),
    }
    for key, suffix in (("input_fname", ".in"), ("output_fname", ".out"), ("submit", ".run")):
        if os.path.isfile(os.path.join(folder, name + suffix)):
            row[key] = name + suffix
    return row


def rows_from_folder(folder: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for every job saved under ``folder`` (itself included), and the summaries
    that could not be read."""
    root = os.path.abspath(folder)
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        name = os.path.basename(dirpath)
        if name + SUMMARY_SUFFIX not in filenames:
            continue
        summary = os.path.join(dirpath, name + SUMMARY_SUFFIX)
        try:
            rows.append(row_from_summary(summary, root))
        except UserError:
            bad.append(summary)
    return rows, bad
