"""MongoDB-style filters over state points and documents, as signac accepts them.

A filter is a mapping. Plain keys name state point keys; ``sp.`` and ``doc.`` prefixes
choose the namespace; dots reach nested keys (``{"b.c": 1}`` equals ``{"b": {"c": 1}}``).
A value is matched for equality (``1`` and ``1.0`` match each other, booleans match only
booleans) unless it is a mapping of operators: ``$eq $ne $gt $gte $lt $lte $in $nin
$regex $exists $type $near``. ``$and``, ``$or`` (lists of filters) and ``$not`` (a filter)
combine filters. As in signac, every operator except ``$exists: false`` needs the key to
be present, so ``{"a": {"$ne": 1}}`` does not match jobs without ``a``.

:func:`compile_filter` turns a filter into a predicate over ``{"sp": ..., "doc": ...}``
records once, so a search over many jobs does not parse the filter again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "compile_filter",
    "compile_node",
    "Table",
    "needs_document",
    "statepoint_keys",
    "FilterError",
    "OPERATORS",
]

Predicate = Callable[[Mapping[str, Any]], bool]

#: The value operators understood by :func:`compile_filter`.
OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$regex", "$exists", "$type", "$near",
)  # fmt: skip

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float,),
    "bool": (bool,),
    "str": (str,),
    "list": (list,),
    "dict": (dict,),
    "null": (type(None),),
}


class FilterError(ValueError):
    """A filter is malformed: unknown operator, wrong argument type, bad regex."""


def _prefixed(key: str) -> str:
    if key == "sp" or key == "doc" or key.startswith(("sp.", "doc.")):
        return key
    return "sp." + key


def _flatten(value: Any, key: str) -> list[tuple[str, Any]]:
    """Turn ``{"b": {"c": 1, "$gt": 0}}`` at ``key`` into dotted ``(key, value)`` pairs.

    Operator mappings stay whole: ``("a", {"$gt": 1})``.
    """
    if isinstance(value, Mapping) and value:
        keys = list(value)
        if all(isinstance(k, str) and k.startswith("$") for k in keys):
            return [(key, value)]
        if any(isinstance(k, str) and k.startswith("$") for k in keys):
            raise FilterError(f"cannot mix operators and keys under {key!r}: {keys}")
        pairs: list[tuple[str, Any]] = []
        for sub, item in value.items():
            pairs.extend(_flatten(item, f"{key}.{sub}"))
        return pairs
    return [(key, value)]


class Table:
    """Rows of ``{"sp": ..., "doc": ...}`` records, read by column.

    Parameters
    ----------
    size
        The number of rows.
    top
        ``top(namespace, key)`` returns the column of a top-level key (``"sp", "a"``) as a
        list with ``ABSENT`` where a row lacks it, or with ``key`` None the whole
        namespace as a list of dicts.
    """

    __slots__ = ("size", "_top", "_columns")

    def __init__(self, size: int, top: Callable[[str, str | None], list[Any]]) -> None:
        self.size = size
        self._top = top
        self._columns: dict[str, list[Any]] = {}

    @classmethod
    def from_records(cls, records: list[Mapping[str, Any]]) -> Table:
        """Make a table of plain records ``{"sp": {...}, "doc": {...}}``."""

        def top(namespace: str, key: str | None) -> list[Any]:
            spaces = [r.get(namespace, ABSENT) for r in records]
            if key is None:
                return spaces
            return [s.get(key, ABSENT) if type(s) is dict else ABSENT for s in spaces]

        return cls(len(records), top)

    def column(self, dotted: str) -> list[Any]:
        """Return the values at ``dotted`` (``"sp.b.c"``) for every row, ``ABSENT`` if none."""
        column = self._columns.get(dotted)
        if column is None:
            namespace, _, rest = dotted.partition(".")
            if not rest:
                column = self._top(namespace, None)
            else:
                first, *parts = rest.split(".")
                column = self._top(namespace, first)
                for part in parts:
                    column = [v.get(part, ABSENT) if type(v) is dict else ABSENT for v in column]
            self._columns[dotted] = column
        return column


ABSENT: Any = ...  # a value JSON cannot hold marks "no such key"

_NUMBER = (int, float)

Rows = set[int]
Node = Callable[[Table], Rows]


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER


def _equal(value: Any, target: Any) -> bool:
    """JSON equality where ``1 == 1.0`` but booleans equal only booleans."""
    if type(value) is bool or type(target) is bool:
        return type(value) is type(target) and value == target
    if _is_number(value) and _is_number(target):
        return bool(value == target)
    if type(value) is not type(target):
        return False
    if isinstance(value, list):
        return len(value) == len(target) and all(map(_equal, value, target))
    if isinstance(value, dict):
        return value.keys() == target.keys() and all(_equal(value[k], target[k]) for k in value)
    return bool(value == target)


def _value_test(op: str, arg: Any, key: str) -> Callable[[Any], bool]:
    """Return a test of one present value for ``$regex``, ``$type`` or ``$near``."""
    if op == "$regex":
        if not isinstance(arg, str):
            raise FilterError(f"$regex under {key!r} needs a string, not {arg!r}")
        try:
            pattern = re.compile(arg)
        except re.error as exc:
            raise FilterError(f"bad $regex under {key!r}: {exc}") from exc
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == "$type":
        if arg not in _TYPES:
            raise FilterError(
                f"unknown $type {arg!r} under {key!r}; use one of {', '.join(_TYPES)}"
            )
        types = _TYPES[arg]
        return lambda v: type(v) in types
    if op == "$near":
        rel_tol, abs_tol = 1e-9, 0.0
        if isinstance(arg, list):
            if not 1 <= len(arg) <= 3:
                raise FilterError(
                    f"$near under {key!r} needs a number or [value, rel_tol, abs_tol]"
                )
            target, *tols = arg
            rel_tol = float(tols[0]) if tols else rel_tol
            abs_tol = float(tols[1]) if len(tols) > 1 else abs_tol
        else:
            target = arg
        if not _is_number(target):
            raise FilterError(f"$near under {key!r} needs a number, not {target!r}")
        return lambda v: _is_number(v) and math.isclose(
            v, target, rel_tol=rel_tol, abs_tol=abs_tol
        )
    raise FilterError(f"unknown operator {op!r} under {key!r}; known: {', '.join(OPERATORS)}")


def _present(column: list[Any]) -> Rows:
    return {i for i, v in enumerate(column) if v is not ABSENT}


def _eq_rows(column: list[Any], target: Any) -> Rows:
    if target is True or target is False or target is None:
        return {i for i, v in enumerate(column) if v is target}
    if type(target) in _NUMBER:
        return {
            i for i, v in enumerate(column) if v == target and v is not True and v is not False
        }
    if type(target) is str:
        return {i for i, v in enumerate(column) if v == target}
    kind = type(target)
    return {i for i, v in enumerate(column) if type(v) is kind and _equal(v, target)}


def _safe_less(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        return False


def _compare_rows(column: list[Any], op: str, t: Any) -> Rows:
    if type(t) in _NUMBER:
        if op == "$gt":
            return {i for i, v in enumerate(column) if type(v) in _NUMBER and v > t}
        if op == "$gte":
            return {i for i, v in enumerate(column) if type(v) in _NUMBER and v >= t}
        if op == "$lt":
            return {i for i, v in enumerate(column) if type(v) in _NUMBER and v < t}
        return {i for i, v in enumerate(column) if type(v) in _NUMBER and v <= t}
    kind = type(t)
    if op == "$gt":
        return {i for i, v in enumerate(column) if type(v) is kind and _safe_less(t, v)}
    if op == "$gte":
        return {i for i, v in enumerate(column) if type(v) is kind and not _safe_less(v, t) and _comparable(v, t)}
    if op == "$lt":
        return {i for i, v in enumerate(column) if type(v) is kind and _safe_less(v, t)}
    return {i for i, v in enumerate(column) if type(v) is kind and not _safe_less(t, v) and _comparable(v, t)}


def _comparable(a: Any, b: Any) -> bool:
    try:
        a < b  # noqa: B015 - only checks that the values can be ordered
    except TypeError:
        return False
    return True


def _op_node(key: str, op: str, arg: Any) -> Node:
    """Return the node selecting rows whose value at ``key`` passes ``op`` with ``arg``."""
    if op == "$eq":
        return lambda t: _eq_rows(t.column(key), arg)
    if op == "$ne":
        return lambda t: _present(t.column(key)) - _eq_rows(t.column(key), arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not (type(arg) in _NUMBER or isinstance(arg, (str, list))):
            raise FilterError(f"{op} under {key!r} needs a number, string or list, not {arg!r}")
        return lambda t: _compare_rows(t.column(key), op, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise FilterError(f"{op} under {key!r} needs a list, not {arg!r}")

        def in_rows(t: Table) -> Rows:
            column = t.column(key)
            rows: Rows = set()
            for item in arg:
                rows |= _eq_rows(column, item)
            return rows if op == "$in" else _present(column) - rows

        return in_rows
    if op == "$exists":
        if not isinstance(arg, bool):
            raise FilterError(f"$exists under {key!r} needs true or false, not {arg!r}")
        if arg:
            return lambda t: _present(t.column(key))
        return lambda t: set(range(t.size)) - _present(t.column(key))
    test = _value_test(op, arg, key)
    return lambda t: {i for i, v in enumerate(t.column(key)) if v is not ABSENT and test(v)}


def _key_node(key: str, expr: Any) -> Node:
    if isinstance(expr, Mapping) and expr and all(str(k).startswith("$") for k in expr):
        nodes = [_op_node(key, op, arg) for op, arg in expr.items()]
        return _intersect(nodes)
    return lambda t: _eq_rows(t.column(key), expr)


def _intersect(nodes: list[Node]) -> Node:
    if len(nodes) == 1:
        return nodes[0]

    def rows(t: Table) -> Rows:
        result = nodes[0](t)
        for node in nodes[1:]:
            if not result:
                break
            result &= node(t)
        return result

    return rows


def _compile(filter_: Mapping[str, Any]) -> list[Node]:
    nodes: list[Node] = []
    for key, value in filter_.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, not {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{key} needs a non-empty list of filters")
            parts = [compile_node(item) for item in value]
            if key == "$and":
                nodes.append(_intersect(parts))
            else:

                def union(t: Table, parts: list[Node] = parts) -> Rows:
                    rows: Rows = set()
                    for part in parts:
                        rows |= part(t)
                    return rows

                nodes.append(union)
        elif key == "$not":
            inner = compile_node(value)
            nodes.append(lambda t, inner=inner: set(range(t.size)) - inner(t))
        elif key.startswith("$"):
            raise FilterError(f"unknown top-level operator {key!r}; use $and, $or or $not")
        else:
            for dotted, expr in _flatten(value, _prefixed(key)):
                nodes.append(_key_node(dotted, expr))
    return nodes


def compile_node(filter_: Mapping[str, Any] | None) -> Node:
    """Compile a filter into a function from a :class:`Table` to the set of matching rows.

    Parameters
    ----------
    filter_
        A MongoDB-style filter (see the module docstring); ``None`` or ``{}`` matches all.

    Returns
    -------
    Callable[[Table], set[int]]
        The row selector.

    Raises
    ------
    FilterError
        If the filter is malformed; a ``ValueError``.
    """
    if filter_ is None:
        return lambda t: set(range(t.size))
    if not isinstance(filter_, Mapping):
        raise FilterError(f"a filter must be a JSON object, not {type(filter_).__name__}")
    try:
        filter_ = json.loads(json.dumps(filter_))  # tuples become lists, as stored values
    except (TypeError, ValueError) as exc:
        raise FilterError(f"a filter must be JSON-encodable: {exc}") from exc
    nodes = _compile(filter_)
    if not nodes:
        return lambda t: set(range(t.size))
    return _intersect(nodes)


def compile_filter(filter_: Mapping[str, Any] | None) -> Predicate:
    """Compile a filter into a predicate over one record ``{"sp": ..., "doc": ...}``.

    Parameters
    ----------
    filter_
        A MongoDB-style filter (see the module docstring); ``None`` or ``{}`` matches all.

    Returns
    -------
    Callable[[Mapping], bool]
        The predicate.

    Raises
    ------
    FilterError
        If the filter is malformed; a ``ValueError``.
    """
    node = compile_node(filter_)
    return lambda record: bool(node(Table.from_records([record])))


def needs_document(filter_: Any) -> bool:
    """Return whether ``filter_`` mentions a ``doc`` key, so documents must be read.

    Parameters
    ----------
    filter_
        A filter as given to :func:`compile_filter`.

    Returns
    -------
    bool
        True when some key is ``doc`` or starts with ``doc.``.
    """
    if isinstance(filter_, Mapping):
        for key, value in filter_.items():
            if isinstance(key, str) and (key == "doc" or key.startswith("doc.")):
                return True
            if key in ("$and", "$or") and isinstance(value, list):
                if any(needs_document(item) for item in value):
                    return True
            if key == "$not" and needs_document(value):
                return True
    return False


def statepoint_keys(filter_: Any) -> set[str] | None:
    """Return the top-level state point keys ``filter_`` looks at.

    Parameters
    ----------
    filter_
        A filter as given to :func:`compile_filter`.

    Returns
    -------
    set of str or None
        The keys, or None when the filter needs the whole state point (key ``sp``).
    """
    keys: set[str] = set()

    def visit(node: Any) -> bool:
        if not isinstance(node, Mapping):
            return True
        for key, value in node.items():
            if not isinstance(key, str):
                continue
            if key in ("$and", "$or"):
                for item in value if isinstance(value, list) else []:
                    if not visit(item):
                        return False
            elif key == "$not":
                if not visit(value):
                    return False
            elif key == "sp":
                if isinstance(value, Mapping) and value and not any(
                    str(k).startswith("$") for k in value
                ):
                    keys.update(str(k).split(".", 1)[0] for k in value)
                else:
                    return False
            elif key.startswith("sp."):
                keys.add(key[3:].split(".", 1)[0])
            elif key == "doc" or key.startswith("doc.") or key.startswith("$"):
                continue
            else:
                keys.add(key.split(".", 1)[0])
        return True

    return keys if visit(filter_) else None
