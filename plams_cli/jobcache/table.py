"""Listing records and the plain aligned table of ``jm list``."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from plams_cli.jobcache.job import MATCH_FIELDS
from plams_cli.jobcache.store import COLUMNS

__all__ = ["RECORD_KEYS", "TABLE_COLUMNS", "SHORT_COLUMNS", "records_from_rows", "shown_columns",
           "plain_table", "short_path", "is_literal"]

#: the keys of one listed job (``plams jobs list --json``), in this order
RECORD_KEYS = ("hostname", "index", *COLUMNS)
#: job_manager's columns, in its order
TABLE_COLUMNS = ("hostname", "index", "job_id", "program", "path", "input_fname", "output_fname", "submit",
                 "status", "comment")
#: ``--short``: as ``jm list --short``
SHORT_COLUMNS = ("hostname", "index", "job_id", "status")
_ALWAYS = frozenset({"hostname", "index"})
_SPECIAL = frozenset(".^$*+?{}[]\\|()")
_MATCH_POSITIONS = tuple(RECORD_KEYS.index(name) for name in MATCH_FIELDS)

try:  # the stdlib's regular-expression parser: re._parser from 3.11, sre_parse before
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_constants
    import sre_parse as _sre_parser
_LITERAL = _sre_constants.LITERAL
_sre_parse = _sre_parser.parse


def is_literal(pattern: str) -> bool:
    """Whether the regular expression ``pattern`` only matches its own text."""
    return not any(char in _SPECIAL for char in pattern)


def required_text(regex: re.Pattern[str]) -> str | None:
    """The longest text every match of ``regex`` contains, or ``None`` when there is none.

    A listing asks SQLite for the rows holding this text first (``instr``, fast) and runs
    the regular expression on those only, which gives the same rows as running it on
    all: a match lies inside one field, so it contains the text there. Only runs of
    plain characters at the pattern's top level count (not inside groups, alternatives
    or repeats), and none under ``re.IGNORECASE``.
    """
    if regex.flags & re.IGNORECASE:
        return None
    try:
        items = list(_sre_parse(regex.pattern, regex.flags))
    except Exception:  # noqa: BLE001 - a parser we cannot read: no shortcut, same answer
        return None
    best, run = "", []
    for op, argument in [*items, (None, None)]:
        if op is _LITERAL:
            run.append(chr(argument))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best or None


def records_from_rows(rows: Sequence[tuple[Any, ...]], regex: re.Pattern[str] | None = None) -> list[dict[str, Any]]:
    """Rows of :meth:`Store.rows` as dicts with :data:`RECORD_KEYS`, those matching ``regex``."""
    if regex is not None:
        search = regex.search
        rows = [row for row in rows if any(row[i] is not None and search(row[i]) for i in _MATCH_POSITIONS)]
    return [dict(zip(RECORD_KEYS, row, strict=True)) for row in rows]


def shown_columns(records: Sequence[dict[str, Any]], short: bool = False) -> list[str]:
    """The columns to show: those set for some record (host and index always), or the short ones."""
    if short:
        return list(SHORT_COLUMNS)
    return [name for name in TABLE_COLUMNS
            if name in _ALWAYS or any(record.get(name) not in (None, "") for record in records)]


def short_path(path: str, cwd: str) -> str:
    """``path`` relative to ``cwd`` when that is shorter."""
    if path.startswith(cwd + os.sep):
        return path[len(cwd) + 1:]
    if not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:  # another drive (Windows)
        return path
    return relative if len(relative) < len(path) else path


def cell(record: dict[str, Any], name: str) -> str:
    """The text of one cell."""
    value = record.get(name)
    return "" if value is None else str(value)


def plain_table(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """An aligned table with a header and a rule, as ``jm list`` prints it."""
    cells = [[cell(record, name) for name in columns] for record in records]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"
