"""SLURM's back-end under its old path: see :mod:`plams_cli.runners.grid.slurm`.

Kept because PLAMS-style settings and user code name ``plams_cli.runners.slurm:getid`` and so on;
the objects are the same (``plams_cli.runners.slurm.getid is plams_cli.runners.grid.slurm.getid``).
"""

from __future__ import annotations

from plams_cli.runners.grid.slurm import *  # noqa: F403 - the old public path re-exports the module
from plams_cli.runners.grid.slurm import __all__ as __all__
