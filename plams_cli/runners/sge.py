"""Grid Engine's back-end under its old path: see :mod:`plams_cli.runners.grid.sge`.

Kept because PLAMS-style settings and user code name ``plams_cli.runners.sge:getid`` and so on;
the objects are the same (``plams_cli.runners.sge.getid is plams_cli.runners.grid.sge.getid``).
"""

from __future__ import annotations

from plams_cli.runners.grid.sge import *  # noqa: F403 - the old public path re-exports the module
from plams_cli.runners.grid.sge import __all__ as __all__
