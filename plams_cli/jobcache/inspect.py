"""Looking at saved jobs without running their code.

Invariant: nothing here unpickles. A saved job is described from the plain-data
``<name>.job.json`` the core writes beside ``<name>.dill``, or, without it, from the
pickle's bytes read by :mod:`pickletools`, which only decodes opcodes: the classes and
functions the file refers to and the strings it holds. (Unpickling imports and calls
what the file names, so a ``.dill`` received from someone else could run anything.)
"""

from __future__ import annotations

import json
import os
import pickletools
from typing import Any

from plams_cli.errors import UserError

__all__ = ["SUMMARY_SUFFIX", "PICKLE_SUFFIX", "read_summary", "describe_pickle", "describe_path", "job_tree",
           "duration_s", "job_files"]

SUMMARY_SUFFIX = ".job.json"
PICKLE_SUFFIX = ".dill"
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                         "SHORT_BINSTRING"})
_BYTES_OPS = frozenset({"SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"})
_MAX_STRINGS = 200
_MAX_DEPTH = 3
_FINAL = ("successful", "failed", "crashed", "copied", "preview")


def job_files(folder: str) -> tuple[str | None, str | None]:
    """``(<name>.job.json, <name>.dill)`` of the job folder ``folder``, each ``None`` when missing."""
    name = os.path.basename(os.path.normpath(folder))
    summary = os.path.join(folder, name + SUMMARY_SUFFIX)
    pickled = os.path.join(folder, name + PICKLE_SUFFIX)
    return (summary if os.path.isfile(summary) else None, pickled if os.path.isfile(pickled) else None)


def read_summary(path: str) -> dict[str, Any]:
    """The plain data of a ``.job.json`` file.

    Raises
    ------
    UserError
        The file cannot be read or is not a JSON object.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UserError(f"{path} is not a job summary (not JSON: {exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a job summary (not a JSON object)")
    return data


def duration_s(summary: dict[str, Any]) -> float | None:
    """Seconds from the start of the run to the end, from the summary's timestamps."""
    stamps = summary.get("timestamps")
    if not isinstance(stamps, dict):
        return None
    start = stamps.get("running", stamps.get("started"))
    ends = [stamps[s] for s in _FINAL if isinstance(stamps.get(s), (int, float))]
    end = max(ends) if ends else stamps.get("finished")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        return max(0.0, float(end) - float(start))
    return None


def describe_pickle(data: bytes, _depth: int = 0) -> dict[str, Any]:
    """What a pickle refers to and holds, read opcode by opcode; nothing is executed.

    Returns ``{"globals": [...], "strings": [...], "error": str | None}``: the
    ``module.name`` of every class or function the pickle would import (and maybe
    call) when loaded, and its strings, nested pickles (dill saves classes by value
    that way) included.
    """
    found: dict[str, Any] = {"globals": [], "strings": [], "error": None}
    recent: list[Any] = []  # the last values pushed, enough to read STACK_GLOBAL
    memo: dict[int, Any] = {}

    def add(key: str, value: str) -> None:
        if value not in found[key] and (key == "globals" or len(found[key]) < _MAX_STRINGS):
            found[key].append(value)

    try:
        for opcode, arg, _pos in pickletools.genops(data):
            name = opcode.name
            value: Any = None
            if name in _STRING_OPS:
                value = arg if isinstance(arg, str) else arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                add("strings", value[:200])
            elif name in _BYTES_OPS and isinstance(arg, (bytes, bytearray)):
                if arg[:1] == b"\x80" and _depth < _MAX_DEPTH:
                    inner = describe_pickle(bytes(arg), _depth + 1)
                    for key in ("globals", "strings"):
                        for item in inner[key]:
                            add(key, item)
            elif name == "GLOBAL" and isinstance(arg, str):
                add("globals", arg.replace(" ", "."))
            elif name == "STACK_GLOBAL":
                if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                    add("globals", f"{recent[-2]}.{recent[-1]}")
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg or 0)] = recent[-1] if recent else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                value = memo.get(int(arg or 0))
            if name not in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"):
                recent.append(value)
                del recent[:-4]
    except Exception as exc:  # genops raises ValueError and others on damaged data
        found["error"] = f"{type(exc).__name__}: {exc}"
    return found


def _node(folder: str, summary_path: str | None, pickle_path: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {"name": os.path.basename(os.path.normpath(folder)), "path": os.path.abspath(folder),
                            "class": None, "status": None, "duration_s": None, "hash": None,
                            "summary": summary_path, "pickle": pickle_path, "children": []}
    if summary_path is not None:
        try:
            summary = read_summary(summary_path)
        except UserError as exc:
            node["error"] = str(exc)
        else:
            node.update({"name": summary.get("name", node["name"]), "class": summary.get("class"),
                         "status": summary.get("status"), "duration_s": duration_s(summary),
                         "hash": summary.get("hash")})
    return node


def job_tree(folder: str) -> list[dict[str, Any]]:
    """The jobs saved under ``folder``, as nodes with their ``children`` (a MultiJob's
    children live in its folder). A folder without a job of its own is looked into;
    its jobs join the level above."""
    nodes: list[dict[str, Any]] = []
    try:
        entries = sorted(e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))
    except OSError:
        return nodes
    for sub in entries:
        summary, pickled = job_files(sub)
        if summary is None and pickled is None:
            nodes += job_tree(sub)
            continue
        node = _node(sub, summary, pickled)
        node["children"] = job_tree(sub)
        nodes.append(node)
    return nodes


def describe_path(path: str) -> dict[str, Any]:
    """What ``path`` — a ``.dill`` file, a job folder or a working folder — holds, without unpickling.

    Returns a dict with ``"kind"``: ``"job"`` (with ``"summary"``, the ``.job.json``
    data, and the job's ``"children"`` when it has any), ``"pickle"`` (a ``.dill``
    without its summary, described by :func:`describe_pickle`) or ``"tree"`` (a working
    folder: ``"jobs"``, see :func:`job_tree`).

    Raises
    ------
    UserError
        ``path`` does not exist, or is none of these.
    """
    full = os.path.abspath(path)
    if os.path.isfile(full):
        if not full.endswith(PICKLE_SUFFIX) and not full.endswith(SUMMARY_SUFFIX):
            raise UserError(f"{full} is not a saved job: give a .dill file, a job folder or a working folder")
        folder = os.path.dirname(full)
        stem = os.path.basename(full)[: -len(PICKLE_SUFFIX if full.endswith(PICKLE_SUFFIX) else SUMMARY_SUFFIX)]
        summary = os.path.join(folder, stem + SUMMARY_SUFFIX)
        pickled = os.path.join(folder, stem + PICKLE_SUFFIX)
        if os.path.isfile(summary):
            return {"kind": "job", "path": folder, "pickle": pickled if os.path.isfile(pickled) else None,
                    "summary": read_summary(summary), "children": job_tree(folder)}
        with open(full, "rb") as handle:
            data = handle.read()
        described = describe_pickle(data)
        if not described["globals"] and not described["strings"]:
            raise UserError(f"{full} is not a pickle ({described['error'] or 'it holds nothing'})")
        return {"kind": "pickle", "path": full, **described}
    if os.path.isdir(full):
        summary_file, pickle_file = job_files(full)
        if summary_file is not None:
            return {"kind": "job", "path": full, "pickle": pickle_file, "summary": read_summary(summary_file),
                    "children": job_tree(full)}
        if pickle_file is not None:
            return describe_path(pickle_file)
        jobs = job_tree(full)
        if not jobs:
            raise UserError(f"{full} holds no saved jobs (.dill or .job.json files)")
        return {"kind": "tree", "path": full, "jobs": jobs}
    raise UserError(f"{full} does not exist")
