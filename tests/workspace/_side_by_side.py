"""Run one snippet against signac 2 and against plams_cli.workspace, and compare what happens.

A snippet is a function ``snippet(api, root)``: ``api`` names signac's public objects or
ours under the same attribute names, ``root`` is an empty folder of its own. What it
returns, or the kind of exception it raises, must be the same for both.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import signac  # a test dependency: missing, the tests fail rather than skip
import signac.errors
import signac.job
from synced_collections.numpy_utils import NumpyConversionWarning as SignacNumpyWarning

import plams_cli.workspace as ours
from plams_cli.workspace.h5store import H5Group, H5StoreManager

SIGNAC = SimpleNamespace(
    name="signac",
    init_project=signac.init_project,
    get_project=signac.get_project,
    get_job=signac.get_job,
    Project=signac.Project,
    Job=signac.job.Job,
    H5Store=signac.H5Store,
    H5Group=signac.h5store.H5Group,
    H5StoreManager=signac.H5StoreManager,
    WorkspaceError=signac.errors.WorkspaceError,
    DestinationExistsError=signac.errors.DestinationExistsError,
    JobsCorruptedError=signac.errors.JobsCorruptedError,
    IncompatibleSchemaVersion=signac.errors.IncompatibleSchemaVersion,
    H5StoreAlreadyOpenError=signac.errors.H5StoreAlreadyOpenError,
    InvalidKeyError=signac.errors.InvalidKeyError,
    NumpyConversionWarning=SignacNumpyWarning,
    names={"Project": signac.Project, "Job": signac.job.Job},
)
PLAMS = SimpleNamespace(
    name="plams",
    init_project=ours.init_project,
    get_project=ours.get_project,
    get_job=ours.get_job,
    Project=ours.Project,
    Job=ours.Job,
    H5Store=ours.H5Store,
    H5Group=H5Group,
    H5StoreManager=H5StoreManager,
    WorkspaceError=ours.WorkspaceError,
    DestinationExistsError=ours.DestinationExistsError,
    JobsCorruptedError=ours.JobsCorruptedError,
    IncompatibleSchemaVersion=ours.IncompatibleSchemaVersion,
    H5StoreAlreadyOpenError=ours.H5StoreAlreadyOpenError,
    InvalidKeyError=ours.InvalidKeyError,
    NumpyConversionWarning=ours.NumpyConversionWarning,
    names={"Workspace": ours.Workspace, "Job": ours.Job},
)

#: The built-in categories an error's outcome records.
CATEGORIES = (KeyError, LookupError, ValueError, TypeError, RuntimeError, OSError, AttributeError)
#: signac's error classes, by the name the outcome records (ours must be the same kind).
NAMED = (
    "WorkspaceError",
    "DestinationExistsError",
    "JobsCorruptedError",
    "IncompatibleSchemaVersion",
    "H5StoreAlreadyOpenError",
    "InvalidKeyError",
)

Snippet = Callable[[SimpleNamespace, str], Any]


def outcome(api: SimpleNamespace, snippet: Snippet, root: Path) -> Any:
    """Run ``snippet`` in ``root``; return its value, or a description of what it raised."""
    root.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # signac's own deprecations
        try:
            return ("returned", snippet(api, str(root)))
        except Exception as exc:  # the kind of error is the outcome compared
            return (
                "raised",
                [c.__name__ for c in CATEGORIES if isinstance(exc, c)],
                [name for name in NAMED if isinstance(exc, getattr(api, name))],
            )


def same_outcome(snippet: Snippet, tmp_path: Path, also: frozenset[str] = frozenset()) -> Any:
    """Assert that signac and plams_cli give the same outcome; return it.

    An error of ours may also be an ``OSError`` (every workspace error is) and of the
    built-in categories in ``also`` (a difference the README names).
    """
    theirs = outcome(SIGNAC, snippet, tmp_path / "signac")
    mine = outcome(PLAMS, snippet, tmp_path / "plams")
    if mine[0] == theirs[0] == "raised":
        # Every workspace error of ours is also an OSError (a WorkspaceError), on purpose.
        assert set(theirs[1]) <= set(mine[1]) <= set(theirs[1]) | {"OSError"} | also, (mine, theirs)
        assert set(theirs[2]) <= set(mine[2]) <= set(theirs[2]) | {"WorkspaceError"}, (mine, theirs)
    else:
        assert mine == theirs, f"\nplams:  {mine!r}\nsignac: {theirs!r}"
    return mine


def captured(func: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Call ``func``; return its value and the class names of the warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = func()
    return value, [w.category.__name__ for w in caught if w.category is not DeprecationWarning]


def rel(path: str, root: str) -> str:
    """``path`` relative to ``root``, so that outcomes from different folders compare."""
    return os.path.relpath(path, root)
