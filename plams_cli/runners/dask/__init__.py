"""``DaskRunner``: many small jobs on a few allocations, through Dask (the extra ``plams-cli[dask]``).

The package's rooms, one concern each:

* :mod:`._runner` — :class:`DaskRunner`: the runner contract on Dask futures, cancel, close.
* :mod:`._settings` — the ``daskrunner`` branch of the YAML defaults and what its keys mean.
* :mod:`._cluster` — the only module importing Dask: making clusters and clients.
* :mod:`._worker` — what runs on the workers: a runscript in its folder, stopping them.

Importing this package imports no Dask: that happens when a runner starts its workers.
"""

from __future__ import annotations

from plams_cli.runners.dask._cluster import PACKAGES as PACKAGES
from plams_cli.runners.dask._cluster import dask_installed as dask_installed
from plams_cli.runners.dask._runner import DaskRunner as DaskRunner
from plams_cli.runners.dask._settings import DaskSettings as DaskSettings
from plams_cli.runners.dask._settings import dask_defaults as dask_defaults

__all__ = ["DaskRunner", "DaskSettings", "dask_defaults", "dask_installed", "PACKAGES"]
