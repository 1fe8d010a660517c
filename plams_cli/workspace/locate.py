"""Find the workspace (and the job) a folder belongs to, as signac's ``get_project``/``get_job``."""

from __future__ import annotations

import os
import re

from ._config import refuse_signac_1
from .errors import ProjectNotFoundError
from .job import Job
from .project import Workspace

__all__ = ["get_project", "get_job"]

_CONFIG = os.path.join(".signac", "config")
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def _parents(path: str) -> list[str]:
    """``path`` and every folder above it, innermost first."""
    folders = [path]
    while (up := os.path.dirname(folders[-1])) != folders[-1]:
        folders.append(up)
    return folders


def get_project(path: str | os.PathLike[str] | None = None, search: bool = True) -> Workspace:
    """Return the workspace at ``path`` or, with ``search``, in the nearest folder above it.

    Parameters
    ----------
    path
        Where to start; the current folder by default.
    search
        Look in the parent folders too, as signac does by default.

    Returns
    -------
    Workspace
        The workspace found.

    Raises
    ------
    ProjectNotFoundError
        A ``LookupError`` (what signac raises): ``path`` does not exist or no workspace
        was found.
    IncompatibleSchemaVersion
        If the project found (or, when none is, a signac 1 project on the way up) has
        another schema version.
    """
    start = os.path.abspath(os.fspath(path) if path is not None else os.getcwd())
    if not os.path.exists(start):
        raise ProjectNotFoundError(f"cannot look for a workspace in {start}: it does not exist")
    folders = _parents(start) if search else [start]
    for folder in folders:
        if os.path.isfile(os.path.join(folder, _CONFIG)):
            return Workspace(folder)
    for folder in folders:
        refuse_signac_1(folder)
    where = f"in {start} or above it" if search else f"in {start}"
    raise ProjectNotFoundError(
        f"no workspace {where} (no {_CONFIG}); create one with 'plams workspace init'"
    )


def get_job(path: str | os.PathLike[str] | None = None) -> Job:
    """Return the job whose folder holds ``path`` (by default the current folder).

    The job is the last job id in the path; its workspace is the nearest one above the
    job folder (so a workspace nested inside a job is skipped), as in signac.

    Parameters
    ----------
    path
        A path inside (or of) a job folder.

    Returns
    -------
    Job
        The job.

    Raises
    ------
    ProjectNotFoundError
        A ``LookupError``: the path does not exist, holds no job id, or no workspace is
        above it.
    """
    full = os.path.abspath(os.fspath(path) if path is not None else os.getcwd())
    if not os.path.exists(full):
        raise ProjectNotFoundError(f"cannot find the job of {full}: it does not exist")
    matches = list(_JOB_ID.finditer(full))
    if not matches:
        raise ProjectNotFoundError(f"{full} is not inside a job folder (no job id in the path)")
    last = matches[-1]
    workspace = get_project(os.path.dirname(full[: last.end()]))
    return Job(workspace, last.group(0), existing=True)
