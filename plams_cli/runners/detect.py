"""Which queueing system is here, and why: ``GridRunner(grid='auto')`` and ``plams grid detect``.

Each candidate is probed once, without retries, and only when its commands are on
``PATH``, so a machine without a scheduler answers at once.

* SLURM: ``sbatch --version`` prints ``slurm 23.02.6`` (Debian: ``slurm-wlm 22.05.8``).
* PBS family and Grid Engine both install ``qsub``/``qstat``. A ``qsub`` that is a script
  calling SLURM is SLURM's Torque wrapper (PBS syntax). Otherwise ``qstat --version``
  answers ``Version: 6.1.3`` (Torque) or ``pbs_version = 2022.1.1`` (PBS Pro / OpenPBS),
  and Grid Engine's ``qstat -help`` starts with ``SGE 8.1.9`` / ``OGS/GE 2011.11`` /
  ``UGE 8.6.7`` / ``GE 6.2u5``.
* SLURM wins over a PBS-compatible ``qsub``: sites install such wrappers beside SLURM.
* ``$PLAMS_GRID=name`` overrides everything.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from plams_cli.errors import SchedulerNotFoundError, UnknownGridError
from plams_cli.runners.grid import grid_definitions, grid_settings, run_command

__all__ = ["Candidate", "Detection", "detect", "detect_grid", "PROBE_TIMEOUT_S"]

#: seconds one probe may take; a hung command is not retried
PROBE_TIMEOUT_S = 5.0
#: candidates in order of preference
ORDER = ("slurm", "pbs", "sge")

_SLURM_VERSION = re.compile(r"^slurm(?:-wlm)?\s+(\S+)", re.IGNORECASE | re.MULTILINE)
_TORQUE_VERSION = re.compile(r"^\s*Version:\s*(\S+)", re.MULTILINE)
_PBSPRO_VERSION = re.compile(r"pbs_version\s*=\s*(\S+)")
_SGE_VERSION = re.compile(r"^\s*((?:SGE|OGS/GE|UGE|GE|Univa Grid Engine|Altair Grid Engine)\s+\S+)", re.MULTILINE)


@dataclass
class Candidate:
    """One queueing system considered: what was found, and why it was (not) chosen."""

    name: str
    commands: dict[str, str | None] = field(default_factory=dict)
    found: bool = False
    version: str | None = None
    chosen: bool = False
    reason: str = ""


@dataclass
class Detection:
    """The outcome of :func:`detect`."""

    grid: str | None
    version: str | None
    candidates: list[Candidate]
    override: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the schema of ``plams grid detect --json``)."""
        return {
            "grid": self.grid,
            "version": self.version,
            "override": self.override,
            "candidates": [asdict(c) for c in self.candidates],
        }


def _which(names: tuple[str, ...], path: str | None) -> dict[str, str | None]:
    return {n: shutil.which(n, path=path) for n in names}


def _probe_slurm(path: str | None) -> Candidate:
    cand = Candidate("slurm", _which(("sbatch", "squeue", "scancel"), path))
    sbatch = cand.commands["sbatch"]
    if sbatch is None:
        cand.reason = "sbatch not found on PATH"
        return cand
    result = run_command([sbatch, "--version"], PROBE_TIMEOUT_S)
    match = _SLURM_VERSION.search(result.stdout) if result.ok else None
    if match is None:
        cand.reason = f"sbatch found but 'sbatch --version' did not answer like SLURM: {result.describe()}"
        return cand
    cand.version = match.group(1)
    missing = [n for n, p in cand.commands.items() if p is None]
    if missing:
        cand.reason = f"sbatch works but {', '.join(missing)} not found on PATH"
        return cand
    cand.found = True
    cand.reason = f"sbatch --version: {result.stdout.strip()}"
    return cand


def _is_slurm_wrapper(qsub: str) -> bool:
    """``True`` when ``qsub`` is a script that drives SLURM (slurm-wlm-torque's Perl wrapper)."""
    try:
        with open(qsub, "rb") as handle:
            head = handle.read(16384)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return False
    return b"sbatch" in head or b"Slurm" in head or b"slurm" in head


def _probe_qsub(path: str | None) -> tuple[Candidate, Candidate]:
    pbs = Candidate("pbs", _which(("qsub", "qstat", "qdel"), path))
    sge = Candidate("sge", dict(pbs.commands))
    qsub, qstat = pbs.commands["qsub"], pbs.commands["qstat"]
    if qsub is None or qstat is None:
        pbs.reason = sge.reason = "qsub/qstat not found on PATH"
        return pbs, sge
    if _is_slurm_wrapper(qsub):
        pbs.found = True
        pbs.version = "SLURM Torque wrapper"
        pbs.reason = f"{qsub} is SLURM's PBS/Torque-compatible wrapper (PBS syntax)"
        sge.reason = "qsub is SLURM's PBS wrapper, not Grid Engine"
        return pbs, sge
    result = run_command([qstat, "--version"], PROBE_TIMEOUT_S)
    text = result.stdout + "\n" + result.stderr
    match = _PBSPRO_VERSION.search(text) or _TORQUE_VERSION.search(text)
    if match:
        pbs.found = True
        pbs.version = match.group(1)
        flavour = "PBS Pro/OpenPBS" if "pbs_version" in text else "Torque"
        pbs.reason = f"qstat --version answers like {flavour}: {match.group(0).strip()}"
        sge.reason = "qstat answers like PBS, not Grid Engine"
        return pbs, sge
    result = run_command([qstat, "-help"], PROBE_TIMEOUT_S)
    text = result.stdout + "\n" + result.stderr
    match = _SGE_VERSION.search(text)
    if match:
        sge.found = True
        sge.version = match.group(1)
        sge.reason = f"qstat -help names {match.group(1)}"
        pbs.reason = "qstat answers like Grid Engine, not PBS"
        return pbs, sge
    pbs.reason = sge.reason = f"qsub found, but qstat answers neither like PBS nor like Grid Engine ({qstat})"
    return pbs, sge


def detect(path: str | None = None, env: dict[str, str] | None = None) -> Detection:
    """Probe for SLURM, PBS and Grid Engine and pick one.

    Parameters
    ----------
    path
        The search path for commands (default: ``$PATH``).
    env
        Environment to read ``PLAMS_GRID`` from (default: ``os.environ``).

    Raises
    ------
    UnknownGridError
        ``$PLAMS_GRID`` names no known grid.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    slurm = _probe_slurm(path)
    pbs, sge = _probe_qsub(path)
    candidates = [slurm, pbs, sge]
    override = environment.get("PLAMS_GRID") or None
    if override:
        try:
            grid_settings(override)
        except UnknownGridError as exc:  # the user's environment is what is wrong: say so
            raise UnknownGridError(f"PLAMS_GRID={override}: {exc}") from exc
        chosen = next((c for c in candidates if c.name == override), None)
        if chosen is None:  # a user-defined grid
            chosen = Candidate(override, found=True)
            candidates.append(chosen)
        chosen.chosen = True
        chosen.reason = f"PLAMS_GRID={override} overrides detection" + (f"; {chosen.reason}" if chosen.reason else "")
        return Detection(override, chosen.version, candidates, override)
    for cand in candidates:
        if cand.found:
            cand.chosen = True
            for other in candidates:
                if other is not cand and other.found:
                    other.reason += f"; not chosen: {cand.name} is preferred"
            return Detection(cand.name, cand.version, candidates)
    return Detection(None, None, candidates)


def detect_grid() -> str:
    """The name of the grid ``GridRunner(grid='auto')`` uses.

    Raises
    ------
    SchedulerNotFoundError
        No queueing system found (the message says what was tried).
    """
    found = detect()
    if found.grid is None:
        tried = "; ".join(f"{c.name}: {c.reason}" for c in found.candidates)
        raise SchedulerNotFoundError(
            f"no queueing system found ({tried}). Set PLAMS_GRID or pass grid=NAME; "
            f"known grids: {', '.join(sorted(grid_definitions()))}"
        )
    return found.grid
