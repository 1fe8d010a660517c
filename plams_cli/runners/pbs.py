"""PBS's back-end under its old path: see :mod:`plams_cli.runners.grid.pbs`.

Kept because PLAMS-style settings and user code name ``plams_cli.runners.pbs:getid`` and so on;
the objects are the same (``plams_cli.runners.pbs.getid is plams_cli.runners.grid.pbs.getid``).
"""

from __future__ import annotations

from plams_cli.runners.grid.pbs import *  # noqa: F403 - the old public path re-exports the module
from plams_cli.runners.grid.pbs import __all__ as __all__
