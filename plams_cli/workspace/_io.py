"""Encoding of state points and the names of temporary files, shared by the workspace modules.

Files are replaced with :func:`plams_cli._fs.atomic_write` (``mode=FILE_MODE``).

Nothing outside :mod:`plams_cli.workspace` imports this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from plams_cli._fs import Writer, tag_writer
from plams_cli.errors import WorkspaceError

from .errors import InvalidKeyError, KeyTypeError, NumpyConversionWarning

__all__ = [
    "calc_id",
    "encode",
    "normalize",
    "check_keys",
    "read_json",
    "writer_of",
    "FILE_MODE",
]

#: Permissions of new files before the umask, as ``open()`` and signac give them.
FILE_MODE = 0o666


def writer_of(name: str) -> Writer | None:
    """Return the writer of a temporary file or folder from its name, or None.

    Names made now end in a :func:`plams_cli._fs.unique_tag` (host, pid, random bits);
    older versions ended them in ``<pid>.<n>`` or ``<pid>-<n>``, taken as written on
    this host. :meth:`Workspace.check` deletes a young leftover only when its writer
    ran here and no longer runs.

    Parameters
    ----------
    name
        A file or folder name, e.g. ``.signac_job_document.json.node1.123.0123456789ab.tmp``,
        ``signac_job_document.json.123.4.tmp`` or ``.init-<id>-123.4``.

    Returns
    -------
    Writer or None
        The writer's pid and whether it ran on this host; None when the name holds no tag.
    """
    writer = tag_writer(name)
    if writer is not None:
        return writer
    match = _LEGACY_TAG_RE.search(name)
    return Writer(int(match.group(1)), True) if match else None


_SCALARS = frozenset((int, float, str, bool, type(None)))
# "<pid>.<n>" or "<pid>-<n>" at the end (before ".tmp"): the tags of older versions.
_LEGACY_TAG_RE = re.compile(r"[.-](\d+)[.-]\d+(?:\.tmp)?\Z")


def _default(obj: Any) -> Any:
    # NumPy scalars and arrays are accepted without importing NumPy here: ``tolist``
    # turns both into plain Python values, as signac's encoder does.
    # (check_keys, called before every encoding of user data, warned about it.)
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return obj.tolist()
    # Views of a document or state point (SyncedDict, SyncedList) store as their data.
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return list(obj)
    raise TypeError(f"object of type {type(obj).__name__} cannot be stored as JSON")


_sorted_encoder = json.JSONEncoder(sort_keys=True, default=_default)
_plain_encoder = json.JSONEncoder(default=_default)


def encode(data: Any) -> str:
    """Encode ``data`` as JSON with sorted keys, the form job ids are computed from.

    Parameters
    ----------
    data
        A JSON-encodable value; NumPy values are turned into plain ones.

    Returns
    -------
    str
        The JSON text, identical to ``json.dumps(data, sort_keys=True)``.

    Raises
    ------
    TypeError
        If ``data`` holds a value JSON cannot encode.
    """
    return _sorted_encoder.encode(data)


def calc_id(statepoint: Any) -> str:
    """Return the job id of a state point: the MD5 hex digest of its sorted JSON.

    This is the id signac computes, e.g. ``calc_id({"a": 1})`` is
    ``"42b7b4f2921788ea14dac5566e6f06d0"``.

    Parameters
    ----------
    statepoint
        A JSON-encodable mapping.

    Returns
    -------
    str
        32 lower-case hexadecimal digits.
    """
    import hashlib  # imported here: loading OpenSSL costs a search that never hashes

    return hashlib.md5(encode(statepoint).encode()).hexdigest()


def normalize(value: Any) -> Any:
    """Return ``value`` as JSON would give it back: tuples become lists, NumPy values plain.

    Parameters
    ----------
    value
        A JSON-encodable value.

    Returns
    -------
    Any
        A fresh copy made of dicts, lists, str, int, float, bool and None.

    Raises
    ------
    KeyTypeError
        A ``TypeError``: a mapping key is not a string.
    TypeError
        If ``value`` cannot be encoded as JSON.
    InvalidKeyError
        A ``ValueError``: a mapping key contains a dot, which filters use to reach nested
        keys.
    """
    check_keys(value)
    return json.loads(_plain_encoder.encode(value))


def check_keys(value: Any) -> None:
    """Check that every mapping key in ``value`` is a string without dots.

    Checked before encoding: JSON would silently turn the key ``1`` into ``"1"``, and
    sorting mixed keys fails with an unrelated message.

    Parameters
    ----------
    value
        A nested structure of mappings and lists.

    Raises
    ------
    KeyTypeError
        A ``TypeError``: a key is not a string.
    InvalidKeyError
        A ``ValueError``: a key contains a dot.
    """
    if type(value).__module__ == "numpy":
        _warn_numpy(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise KeyTypeError(
                        f"keys must be strings, not {type(key).__name__}: {key!r}"
                    )
            if "." in key:
                raise InvalidKeyError(f"keys may not contain dots: {key!r}")
            if type(item) not in _SCALARS and isinstance(item, (Mapping, list, tuple)):
                check_keys(item)
            elif type(item).__module__ == "numpy":
                _warn_numpy(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if type(item) not in _SCALARS and isinstance(item, (Mapping, list, tuple)):
                check_keys(item)
            elif type(item).__module__ == "numpy":
                _warn_numpy(item)


def _warn_numpy(value: Any) -> None:
    import warnings

    kind = "list" if getattr(value, "ndim", 0) else "number"
    warnings.warn(
        f"the NumPy value {value!r} is stored as a plain {kind}, and reads back as one",
        NumpyConversionWarning,
        stacklevel=4,
    )


def read_json(path: str) -> Any:
    """Read a JSON file, turning a decoding failure into :class:`WorkspaceError`.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    Any
        The decoded value.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    WorkspaceError
        If the file is not valid JSON.
    """
    with open(path, "rb") as file:
        raw = file.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise WorkspaceError(f"{path} is not valid JSON: {exc}") from exc
