"""Which queueing system is here, and why: ``GridRunner(grid='auto')`` and ``plams grid detect``.

The detection loops over the registered back-ends (:mod:`plams_cli.runners.grid._detect`,
each back-end's ``probe()``); this module is its public path. It imports the grid package,
which never imports it back.
"""

from __future__ import annotations

from plams_cli.runners.grid._detect import ORDER as ORDER
from plams_cli.runners.grid._detect import PROBE_TIMEOUT_S as PROBE_TIMEOUT_S
from plams_cli.runners.grid._detect import Candidate as Candidate
from plams_cli.runners.grid._detect import Detection as Detection
from plams_cli.runners.grid._detect import detect as detect
from plams_cli.runners.grid._detect import detect_grid as detect_grid

__all__ = ["Candidate", "Detection", "detect", "detect_grid", "PROBE_TIMEOUT_S", "ORDER"]
