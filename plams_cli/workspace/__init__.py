"""State-point workspaces compatible on disk with signac 2.

Jobs are addressed by their parameters (their *state point*): the job id is the MD5 hex
digest of the state point's sorted JSON, and each job lives in ``workspace/<id>`` with
``signac_statepoint.json``, a JSON document and HDF5 data. A signac data space opens here
and the other way round.

This package imports neither the job core, the runners, click nor rich; h5py and NumPy are
imported on first use of job data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plams_cli.errors import DestinationExistsError as DestinationExistsError
from plams_cli.errors import JobsCorruptedError as JobsCorruptedError
from plams_cli.errors import WorkspaceError as WorkspaceError

from ._io import calc_id as calc_id
from .cursor import JobsCursor as JobsCursor
from .document import Document as Document
from .errors import AmbiguousJobIdError as AmbiguousJobIdError
from .errors import H5StoreAlreadyOpenError as H5StoreAlreadyOpenError
from .errors import H5StoreClosedError as H5StoreClosedError
from .errors import IncompatibleSchemaVersion as IncompatibleSchemaVersion
from .errors import InvalidKeyError as InvalidKeyError
from .errors import JobNotFoundError as JobNotFoundError
from .errors import JobRemovedError as JobRemovedError
from .errors import KeyTypeError as KeyTypeError
from .errors import NumpyConversionWarning as NumpyConversionWarning
from .errors import ProjectNotFoundError as ProjectNotFoundError
from .errors import StatepointKeyError as StatepointKeyError
from .filters import FilterError as FilterError
from .job import Job as Job
from .locate import get_job as get_job
from .locate import get_project as get_project
from .project import Project as Project
from .project import Workspace as Workspace
from .project import init_project as init_project
from .project import init_workspace as init_workspace
from .schema import ProjectSchema as ProjectSchema
from .statepoint import StatePoint as StatePoint

if TYPE_CHECKING:  # given lazily by __getattr__ below; typed as what they are
    from .h5store import H5Group as H5Group
    from .h5store import H5Store as H5Store
    from .h5store import H5StoreManager as H5StoreManager

__all__ = [
    "Workspace",
    "Project",
    "Job",
    "StatePoint",
    "Document",
    "JobsCursor",
    "ProjectSchema",
    "init_workspace",
    "init_project",
    "get_project",
    "get_job",
    "calc_id",
    "WorkspaceError",
    "DestinationExistsError",
    "JobsCorruptedError",
    "JobNotFoundError",
    "AmbiguousJobIdError",
    "StatepointKeyError",
    "JobRemovedError",
    "KeyTypeError",
    "InvalidKeyError",
    "FilterError",
    "ProjectNotFoundError",
    "IncompatibleSchemaVersion",
    "H5StoreClosedError",
    "H5StoreAlreadyOpenError",
    "NumpyConversionWarning",
]


def __getattr__(name: str) -> object:
    # H5Store pulls in nothing heavy itself, but keep it out of the import path anyway.
    if name in ("H5Store", "H5Group", "H5StoreManager"):
        from . import h5store

        return getattr(h5store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
