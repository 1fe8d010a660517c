"""The project's ``.signac/config``: reading its schema version, refusing signac 1 projects.

Nothing outside :mod:`plams_cli.workspace` imports this module.
"""

from __future__ import annotations

import os

from plams_cli._fs import atomic_write
from plams_cli.errors import NotAWorkspaceError, WorkspaceError

from ._io import FILE_MODE
from .errors import IncompatibleSchemaVersion, ProjectNotFoundError

__all__ = ["SCHEMA_VERSION", "CONFIG", "open_config", "schema_version", "refuse_signac_1"]

#: The signac project schema this package reads and writes.
SCHEMA_VERSION = 2

_SEP = os.sep
#: The config file, relative to the project folder.
CONFIG = ".signac" + _SEP + "config"


def open_config(root: str, create: bool) -> None:
    """Check that ``root`` is a signac 2 project; with ``create``, make it one if it is none.

    Raises
    ------
    ProjectNotFoundError
        If ``root`` holds no config file and ``create`` is false.
    NotAWorkspaceError
        If ``root`` is not a folder.
    IncompatibleSchemaVersion
        If the project has another schema version (e.g. a signac 1 project).
    WorkspaceError
        If the config file cannot be read.
    """
    config = root + _SEP + CONFIG
    try:
        version = schema_version(config)
    except FileNotFoundError:
        refuse_signac_1(root)
        if not create:
            raise ProjectNotFoundError(
                f"{root} is not a workspace (no {CONFIG}); "
                f"create one with 'plams workspace init {root}'"
            ) from None
        os.makedirs(os.path.dirname(config), exist_ok=True)
        atomic_write(config, f"schema_version = {SCHEMA_VERSION}\n".encode(), mode=FILE_MODE)
        version = SCHEMA_VERSION
    except WorkspaceError:
        raise  # an OSError too, but already a message of its own
    except IsADirectoryError:
        raise WorkspaceError(f"cannot read {config}: it is a folder") from None
    except NotADirectoryError:
        raise NotAWorkspaceError(f"{root} is not a workspace: it is not a folder") from None
    except OSError as exc:
        raise WorkspaceError(f"cannot read {config}: {exc.strerror}") from exc
    if version < SCHEMA_VERSION:
        raise IncompatibleSchemaVersion(
            f"{root} has project schema version {version} (signac 1); only version "
            f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with "
            "'python -m signac migrate'"
        )
    if version > SCHEMA_VERSION:
        raise IncompatibleSchemaVersion(
            f"{root} has project schema version {version}, newer than version "
            f"{SCHEMA_VERSION} (signac 2) that this plams-cli reads; update plams-cli"
        )


def schema_version(config_file: str) -> int:
    """Read ``schema_version`` from a signac config file (configobj's ``key = value`` lines).

    A file without the key is schema 1, as signac reads it.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    WorkspaceError
        If the file is not a config file or the version is not a number.
    """
    with open(config_file, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkspaceError(
            f"cannot read {config_file}: it is not a text file, so not a signac config"
        ) from None
    version = 1
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            in_section = True
            continue
        key, equals, value = stripped.partition("=")
        if not equals or not key.strip():
            raise WorkspaceError(
                f"cannot read {config_file}: line {number} is neither 'key = value' nor "
                f"a [section]: {stripped[:60]!r}"
            )
        if key.strip() == "schema_version" and not in_section:
            value = value.split("#", 1)[0].strip().strip("'\"")
            try:
                version = int(value)
            except ValueError:
                raise WorkspaceError(
                    f"cannot read {config_file}: schema_version is {value[:30]!r}, not a number"
                ) from None
    return version


def refuse_signac_1(root: str) -> None:
    """Raise if ``root`` holds a signac 1 project (``signac.rc``, no ``.signac/config``).

    Raises
    ------
    IncompatibleSchemaVersion
        If ``root/signac.rc`` exists; the project is left as it is.
    """
    if os.path.isfile(root + _SEP + "signac.rc"):
        raise IncompatibleSchemaVersion(
            f"{root} is a signac 1 project (signac.rc, schema version 1); only version "
            f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with 'python -m signac migrate'"
        )
