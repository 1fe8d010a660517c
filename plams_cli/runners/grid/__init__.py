"""``GridRunner``: run jobs through a queueing system (SLURM, PBS, Grid Engine …).

The package's rooms, one concern each:

* :mod:`._base` — :class:`GridRunner`: the submit / poll / cancel loop, nothing
  scheduler-specific.
* :mod:`._config` — the grid definitions of the YAML defaults and what a settings branch
  means (:class:`GridConfig`: commands, parsers, time limits; run flags to submit flags).
* :mod:`._records` — the files a grid job leaves: the wrapper, the exit-code record, the
  job record, and the leftovers of a killed run (:func:`find_leftovers`,
  :func:`stop_leftovers` in :mod:`._leftovers`).
* :mod:`._backend` — the :class:`Backend` contract (id parsing, queue listing,
  accounting, ``probe()``) and the registry; :mod:`.slurm`, :mod:`.pbs`, :mod:`.sge` are
  the back-ends (also importable as ``plams_cli.runners.slurm`` etc.).
* :mod:`._detect` — ``grid='auto'``: loops over the registered back-ends
  (public path :mod:`plams_cli.runners.detect`).
* :mod:`._command` — :func:`run_command`; :mod:`._log` — the logger
  ``plams_cli.runners.grid`` all grid messages go to.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plams_cli.runners.grid._backend import Accounting as Accounting
    from plams_cli.runners.grid._backend import Backend as Backend
    from plams_cli.runners.grid._backend import Candidate as Candidate
    from plams_cli.runners.grid._backend import Probe as Probe
    from plams_cli.runners.grid._backend import QueueState as QueueState
    from plams_cli.runners.grid._backend import register as register
    from plams_cli.runners.grid._backend import registered as registered
    from plams_cli.runners.grid._base import FAILURE_REPORT_INTERVAL_S as FAILURE_REPORT_INTERVAL_S
    from plams_cli.runners.grid._base import MAX_IDS_PER_QUERY as MAX_IDS_PER_QUERY
    from plams_cli.runners.grid._base import MIN_POLL_INTERVAL_S as MIN_POLL_INTERVAL_S
    from plams_cli.runners.grid._base import POLL_AGE_FRACTION as POLL_AGE_FRACTION
    from plams_cli.runners.grid._base import RUNNING_STATE_CODES as RUNNING_STATE_CODES
    from plams_cli.runners.grid._base import GridRunner as GridRunner
    from plams_cli.runners.grid._command import CommandResult as CommandResult
    from plams_cli.runners.grid._command import run_command as run_command
    from plams_cli.runners.grid._config import GridConfig as GridConfig
    from plams_cli.runners.grid._config import flags_from_runflags as flags_from_runflags
    from plams_cli.runners.grid._config import grid_definitions as grid_definitions
    from plams_cli.runners.grid._config import grid_settings as grid_settings
    from plams_cli.runners.grid._config import resolve_parser as resolve_parser
    from plams_cli.runners.grid._detect import Detection as Detection
    from plams_cli.runners.grid._detect import detect as detect
    from plams_cli.runners.grid._detect import detect_grid as detect_grid
    from plams_cli.runners.grid._leftovers import stop_leftovers as stop_leftovers
    from plams_cli.runners.grid._log import LOGGER_NAME as LOGGER_NAME
    from plams_cli.runners.grid._records import EXIT_RECORD_SUFFIX as EXIT_RECORD_SUFFIX
    from plams_cli.runners.grid._records import JOB_RECORD_SUFFIX as JOB_RECORD_SUFFIX
    from plams_cli.runners.grid._records import WORKDIR_MISSING_EXIT as WORKDIR_MISSING_EXIT
    from plams_cli.runners.grid._records import LeftoverJob as LeftoverJob
    from plams_cli.runners.grid._records import find_leftovers as find_leftovers
    from plams_cli.runners.grid._records import read_exit_file as read_exit_file
    from plams_cli.runners.grid._records import read_job_record as read_job_record
    from plams_cli.runners.grid._records import write_job_record as write_job_record
    from plams_cli.runners.grid._records import write_wrapper as write_wrapper


#: public name -> the module that defines it
_HOMES: dict[str, str] = {
    "Accounting": "_backend",
    "Backend": "_backend",
    "Candidate": "_backend",
    "Probe": "_backend",
    "QueueState": "_backend",
    "register": "_backend",
    "registered": "_backend",
    "FAILURE_REPORT_INTERVAL_S": "_base",
    "MAX_IDS_PER_QUERY": "_base",
    "MIN_POLL_INTERVAL_S": "_base",
    "POLL_AGE_FRACTION": "_base",
    "RUNNING_STATE_CODES": "_base",
    "GridRunner": "_base",
    "CommandResult": "_command",
    "run_command": "_command",
    "GridConfig": "_config",
    "flags_from_runflags": "_config",
    "grid_definitions": "_config",
    "grid_settings": "_config",
    "resolve_parser": "_config",
    "Detection": "_detect",
    "detect": "_detect",
    "detect_grid": "_detect",
    "stop_leftovers": "_leftovers",
    "LOGGER_NAME": "_log",
    "EXIT_RECORD_SUFFIX": "_records",
    "JOB_RECORD_SUFFIX": "_records",
    "WORKDIR_MISSING_EXIT": "_records",
    "LeftoverJob": "_records",
    "find_leftovers": "_records",
    "read_exit_file": "_records",
    "read_job_record": "_records",
    "write_job_record": "_records",
    "write_wrapper": "_records",
}


#: the back-end submodules, also reached as attributes before they are imported
_BACKENDS = frozenset({"slurm", "pbs", "sge"})


__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    # The package loads on first use of a name (PEP 562): a run never pays for the
    # back-ends and their parsers before a GridRunner is made, nor a restart, which only
    # looks for a killed run's grid jobs (._records), for the GridRunner. The back-ends
    # register themselves as ._detect imports them, which registered() makes sure of.
    home = _HOMES.get(name)
    if home is not None:
        value = globals()[name] = getattr(importlib.import_module(__name__ + "." + home), name)
        return value
    if name in _BACKENDS:  # (a submodule: an attribute once imported)
        return importlib.import_module(__name__ + "." + name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES) | _BACKENDS)
