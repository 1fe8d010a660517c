"""Grid jobs a killed ``plams`` left in the queue: found and cancelled by ``plams -r``.

The work is the grid's (:mod:`plams_cli.runners.grid._leftovers`, which alone knows the
file names a grid job leaves); this module keeps the names the CLI imports.
"""

from __future__ import annotations

from plams_cli.runners.grid._leftovers import stop_leftovers
from plams_cli.runners.grid._records import LeftoverJob, find_leftovers

__all__ = ["LeftoverJob", "find_leftovers", "stop_leftovers"]
