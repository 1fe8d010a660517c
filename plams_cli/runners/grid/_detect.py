"""Which queueing system is here, and why: ``GridRunner(grid='auto')`` and ``plams grid detect``.

Each registered back-end (:func:`~._backend.registered`: SLURM, then PBS, then Grid
Engine) probes for its scheduler once, without retries, and only when its commands are
on ``PATH``, so a machine without a scheduler answers at once. The first one found wins:
SLURM over a PBS-compatible ``qsub``, since sites install such wrappers beside SLURM.
``$PLAMS_GRID=name`` overrides everything. Public path: :mod:`plams_cli.runners.detect`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from plams_cli.errors import SchedulerNotFoundError, UnknownGridError

# The back-end modules register themselves on import, in order of preference.
from plams_cli.runners.grid import pbs, sge, slurm  # noqa: F401
from plams_cli.runners.grid._backend import PROBE_TIMEOUT_S, Candidate, Probe, registered
from plams_cli.runners.grid._config import grid_definitions, grid_settings

__all__ = ["Candidate", "Detection", "detect", "detect_grid", "PROBE_TIMEOUT_S", "ORDER"]

#: candidates in order of preference
ORDER = tuple(backend.name for backend in registered())


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


def _overridden(override: str, candidates: list[Candidate]) -> Detection:
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


def detect(path: str | None = None, env: dict[str, str] | None = None) -> Detection:
    """Probe for every registered scheduler (SLURM, PBS, Grid Engine) and pick one.

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
    probe = Probe(path)
    candidates = [backend.probe(probe) for backend in registered()]
    override = environment.get("PLAMS_GRID") or None
    if override:
        return _overridden(override, candidates)
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
