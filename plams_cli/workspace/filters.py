"""MongoDB-style filters over state points and documents, evaluated as signac 2 does.

A filter is a mapping. Plain keys name state point keys; ``sp.`` and ``doc.`` prefixes
choose the namespace; dots reach nested keys, and nested mappings are flattened to dotted
keys (``{"b": {"c": 1}}`` is ``{"b.c": 1}``). A value is matched for equality unless the
key ends in an operator: ``$eq $ne $gt $gte $lt $lte $in $nin $regex $exists $type
$near``. ``$and`` and ``$or`` (lists of filters) and ``$not`` (a filter) combine filters.

The results are those of signac's ``Project.find_jobs`` for the same filter on the same
data, quirks included, because the evaluation follows signac's ``_search_indexer`` step by
step: a value index per key, with lists compared as tuples and mappings reduced to "some
mapping". So ``{"i": 1}`` matches ``1``, ``1.0`` and ``True``; ``$ne`` and ``$nin`` need
the key to be present; ``{"$not": {"doc.x": 1}}`` does not read documents (signac looks
for ``doc`` keys only at the top level and inside ``$and``/``$or``).

Where signac raises for a filter on given data (``{"i": {"$gt": 1}}`` when some ``i`` is a
string), :class:`~plams_cli.workspace.FilterError` is raised instead. A filter that is
malformed whatever the data (an unknown operator, ``$regex`` with a bad pattern,
``$near`` without numbers, ``$in`` without a list, an empty ``$and``) raises
:class:`FilterError` before any job is looked at, also where signac would quietly match
nothing. ``$where``, which makes signac ``eval`` a string, is refused.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from numbers import Number
from typing import Any

from .errors import FilterError

__all__ = [
    "compile_query",
    "compile_filter",
    "Query",
    "Table",
    "ABSENT",
    "FilterError",
    "OPERATORS",
]

#: The value operators understood here (signac's, without ``$where``).
OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$regex", "$exists", "$type", "$near",
)  # fmt: skip

# signac's $type names; "list" is tuple because lists are indexed as tuples.
_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "list": tuple,
    "null": type(None),
}

_COMPARE = {"$eq": operator.eq, "$ne": operator.ne, "$gt": operator.gt,
            "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}  # fmt: skip
_SYMBOL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_EVALUATION_ERRORS = (TypeError, ValueError, OverflowError)

ABSENT: Any = ...  # a value JSON cannot hold marks "no such key"

Rows = set[int]
Node = Callable[["Table"], Rows]


# ---------------------------------------------------------------------- index values
# The index keys are signac's: floats hash apart from ints of the same value (so that
# 1.0 and 1 are told apart, then joined again by the equality lookup), lists become
# tuples, and every mapping is one placeholder.
class _Float(float):
    __slots__ = ()

    def __hash__(self) -> int:
        return float.__hash__(self) + 1


class _HashableDict(dict):  # type: ignore[type-arg]
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, _to_hashable(v)) for k, v in self.items())))


class _Mapping:
    """Stands for every mapping value in an index, as signac's ``_DictPlaceholder``."""

    def __repr__(self) -> str:
        return "<a mapping>"


_MAPPING = _Mapping()


def _to_hashable(value: Any) -> Any:
    if type(value) is list:
        return tuple(_to_hashable(item) for item in value)
    if type(value) is dict:
        return _HashableDict(value)
    return value


def _shown(key: str) -> str:
    """The key as the user most likely wrote it (without the ``sp.`` we added)."""
    return key[3:] if key.startswith("sp.") else key


def _describe(value: Any) -> str:
    if value is _MAPPING:
        return "a mapping"
    if type(value) is tuple:
        value = json.loads(json.dumps(value))
    return f"{value!r} ({_type_name(value)})"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is tuple:
        return "list"
    return type(value).__name__.lstrip("_").lower().replace("hashabledict", "dict")


# ---------------------------------------------------------------------- the table
class Table:
    """Rows of ``{"sp": ..., "doc": ...}`` records, read by column.

    Parameters
    ----------
    size
        The number of rows.
    top
        ``top(namespace, key)`` returns the column of a top-level key (``"sp", "a"``) as a
        list with :data:`ABSENT` where a row lacks it, or with ``key`` None the whole
        namespace as a list (:data:`ABSENT` where a row has none).
    """

    __slots__ = ("size", "_top", "_columns", "_indexes")

    def __init__(self, size: int, top: Callable[[str, str | None], list[Any]]) -> None:
        self.size = size
        self._top = top
        self._columns: dict[str, list[Any]] = {}
        self._indexes: dict[str, dict[Any, list[int]]] = {}

    @classmethod
    def from_records(cls, records: list[Mapping[str, Any]]) -> Table:
        """Make a table of plain records ``{"sp": {...}, "doc": {...}}``."""

        def top(namespace: str, key: str | None) -> list[Any]:
            spaces = [r.get(namespace, ABSENT) for r in records]
            if key is None:
                return spaces
            return [s.get(key, ABSENT) if type(s) is dict else ABSENT for s in spaces]

        return cls(len(records), top)

    def all(self) -> Rows:
        """Return every row."""
        return set(range(self.size))

    def column(self, dotted: str) -> list[Any]:
        """Return the values at ``dotted`` (``"sp.b.c"``) for every row, ``ABSENT`` if none."""
        column = self._columns.get(dotted)
        if column is None:
            namespace, _, rest = dotted.partition(".")
            if namespace not in ("sp", "doc"):
                column = [ABSENT] * self.size
            elif not rest:
                column = self._top(namespace, None)
            else:
                first, *parts = rest.split(".")
                column = self._top(namespace, first)
                for part in parts:
                    # Only mappings are descended into, as signac's index does.
                    column = [v.get(part, ABSENT) if type(v) is dict else ABSENT for v in column]
            self._columns[dotted] = column
        return column

    def index(self, dotted: str) -> dict[Any, list[int]]:
        """Return ``{index value: rows}`` for the values at ``dotted``, as signac builds it."""
        index = self._indexes.get(dotted)
        if index is None:
            # Performance-critical (once per key and search, over every job): ints and
            # strings, the common values, are used as they are.
            index = {}
            get = index.get
            for row, value in enumerate(self.column(dotted)):
                if value is ABSENT:
                    continue
                kind = type(value)
                if kind is float:
                    value = _Float(value)
                elif kind is list:
                    value = _to_hashable(value)
                elif kind is dict:
                    value = _MAPPING
                rows = get(value)
                if rows is None:
                    index[value] = [row]
                else:
                    rows.append(row)
            self._indexes[dotted] = index
        return index


# ---------------------------------------------------------------------- compiling
def _add_prefix(filter_: Any, where: str) -> dict[str, Any]:
    """Prefix plain keys with ``sp.`` and check the logical operators (signac's ``_add_prefix``)."""
    if not isinstance(filter_, Mapping):
        raise FilterError(f"{where} must be a JSON object, not {_json_type(filter_)}")
    result: dict[str, Any] = {}
    for key, value in filter_.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, not {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)):
                raise FilterError(f"{key} needs a list of filters, not {_json_type(value)}")
            if not value:
                raise FilterError(f"{key} needs at least one filter, not an empty list")
            result[key] = [_add_prefix(item, f"each filter in {key}") for item in value]
        elif key == "$not":
            result[key] = _add_prefix(value, "the argument of $not")
        elif key in ("sp", "doc") or key.startswith(("sp.", "doc.")):
            result[key] = value
        else:
            result["sp." + key] = value
    return result


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _root_keys(filter_: Mapping[str, Any]) -> Iterator[str]:
    """signac's ``_root_keys``: decides whether documents are read (``$not`` is not entered)."""
    for key, value in filter_.items():
        if key in ("$and", "$or"):
            for item in value:
                yield from _root_keys(item)
        else:
            yield key.split(".", 1)[0]


def _dotted(value: Any, key: str | None = None) -> Iterator[tuple[str, Any]]:
    """signac's ``_nested_dicts_to_dotted_keys``: nested mappings become dotted keys."""
    if isinstance(value, Mapping):
        if value:
            for sub, item in value.items():
                if not isinstance(sub, str):
                    raise FilterError(f"filter keys must be strings, not {sub!r}")
                yield from _dotted(item, sub if key is None else f"{key}.{sub}")
        elif key is not None:
            yield key, value
    else:
        yield key, _to_hashable(value) if type(value) is list else value  # type: ignore[misc]


def _collect(rows_by_value: dict[Any, list[int]], test: Callable[[Any], Any], op: str,
             key: str, argument: Any) -> Rows:  # fmt: skip
    rows: Rows = set()
    value = None
    try:
        for value, matched in rows_by_value.items():
            if test(value):
                rows.update(matched)
    except _EVALUATION_ERRORS as exc:
        if op in _SYMBOL:
            detail = (
                f"cannot compare {_describe(value)} of a job with {_describe(argument)} "
                f"using {_SYMBOL[op]}"
            )
        elif op == "$near":
            detail = f"needs numbers, but a job has {_describe(value)}"
        else:
            detail = f"cannot be applied to {_describe(value)} of a job: {exc}"
        raise FilterError(f"{op} under {_shown(key)!r} {detail}") from exc
    return rows


def _near_test(argument: Any, key: str) -> Callable[[Any], bool]:
    where = f"$near under {_shown(key)!r}"
    rel_tol: Any = 1e-9
    abs_tol: Any = 0.0
    target = argument
    if isinstance(argument, tuple):
        if not 1 <= len(argument) <= 3:
            raise FilterError(
                f"{where} needs a number or a list [value, rel_tol, abs_tol] of 1 to 3 "
                f"numbers, not a list of {len(argument)}"
            )
        target, *tolerances = argument
        if tolerances:
            rel_tol = tolerances[0]
        if len(tolerances) > 1:
            abs_tol = tolerances[1]
    numbers = []
    for name, item in (("value", target), ("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        try:
            number = float(item)
        except (TypeError, ValueError, OverflowError):
            raise FilterError(f"{where}: {name} must be a number, not {_json_type(item)}") from None
        if name != "value" and not number >= 0:
            raise FilterError(f"{where}: {name} must be a number >= 0, not {item!r}")
        numbers.append(number)
    value, rel, absolute = numbers
    return lambda v: math.isclose(v, value, rel_tol=rel, abs_tol=absolute)


def _operator_node(key: str, op: str, argument: Any) -> Node:
    """The rows whose value at ``key`` passes ``op`` (signac's ``_find_with_index_operator``)."""
    where = f"{op} under {_shown(key)!r}"
    test: Callable[[Any], Any]
    if op in _COMPARE:
        if op in _SYMBOL and (argument is None or isinstance(argument, Mapping)):
            raise FilterError(f"{where} needs a number, string or list, not {_json_type(argument)}")
        compare = _COMPARE[op]

        def test(v: Any) -> Any:
            return compare(v, argument)

    elif op in ("$in", "$nin"):
        if not isinstance(argument, tuple):  # a JSON list, made hashable by _dotted
            raise FilterError(f"{where} needs a list, not {_json_type(argument)}")
        if op == "$in":

            def test(v: Any) -> Any:
                return v in argument

        else:

            def test(v: Any) -> Any:
                return v not in argument

    elif op == "$regex":
        if not isinstance(argument, str):
            raise FilterError(f"{where} needs a string, not {_json_type(argument)}")
        try:
            pattern = re.compile(argument)
        except re.error as exc:
            raise FilterError(f"{where} is not a valid regular expression: {exc}") from exc

        def test(v: Any) -> Any:
            return isinstance(v, str) and pattern.search(v) is not None

    elif op == "$type":
        kind = _TYPES.get(argument) if isinstance(argument, str) else None
        if kind is None:
            raise FilterError(
                f"{where} needs one of {', '.join(map(repr, _TYPES))}, not {_json_type(argument)}"
            )

        def test(v: Any) -> Any:
            return isinstance(v, kind)

    elif op == "$near":
        test = _near_test(argument, key)
    elif op == "$exists":
        if not isinstance(argument, bool):
            raise FilterError(f"{where} needs true or false, not {_json_type(argument)}")

        def exists(t: Table) -> Rows:
            present: Rows = set()
            for rows in t.index(key).values():
                present.update(rows)
            return present if argument else t.all() - present

        return exists
    elif op == "$where":
        raise FilterError(f"{where}: $where is not supported (it would run code from the filter)")
    else:
        raise FilterError(f"unknown operator {op!r} under {_shown(key)!r}; known: {', '.join(OPERATORS)}")
    return lambda t: _collect(t.index(key), test, op, key, argument)


def _equal_node(key: str, value: Any) -> Node:
    """The rows whose value at ``key`` equals ``value`` (signac's plain-value lookup)."""
    if isinstance(value, Mapping):  # only an empty one gets here: signac cannot hash it
        raise FilterError(f"empty object under {_shown(key)!r}: give keys or operators")
    integral = False
    if isinstance(value, Number):  # bool included, as in signac
        try:
            integral = float(value).is_integer()  # type: ignore[arg-type]
        except OverflowError:
            raise FilterError(f"the number under {_shown(key)!r} is too large") from None
    if integral:
        # signac finds integer-valued floats and ints alike: {"a": 4} matches 4 and 4.0.
        as_float, as_int = _Float(value), int(value)

        def node(t: Table) -> Rows:
            index = t.index(key)
            return set(index.get(as_float, ())) | set(index.get(as_int, ()))

        return node
    lookup = _Float(value) if type(value) is float else value
    return lambda t: set(t.index(key).get(lookup, ()))


def _expression_node(key: str, value: Any) -> tuple[str, Node]:
    """Compile one ``(dotted key, value)`` pair; return the key looked at and the node."""
    if "$" in key:
        if key.count("$") > 1:
            raise FilterError(f"invalid operator expression {_shown(key)!r}: one operator per key")
        path, _, op = key.rpartition(".")
        if not op.startswith("$"):
            raise FilterError(
                f"invalid operator placement in {_shown(key)!r}: an operator must come last"
            )
        return path, _operator_node(path, op, value)
    return key, _equal_node(key, value)


def _compile(expr: dict[str, Any], looked_at: list[str]) -> Node:
    """Compile a prefixed, normalised filter the way signac's ``_find_result`` runs it."""
    if not expr:
        return Table.all
    expr = dict(expr)
    any_of = expr.pop("$or", None)
    all_of = expr.pop("$and", None)
    negated = expr.pop("$not", None)
    nodes = []
    for dotted, value in _dotted(expr):
        key, node = _expression_node(dotted, value)
        looked_at.append(key)
        nodes.append(node)
    not_node = None if negated is None else _compile(negated, looked_at)
    and_nodes = [_compile(item, looked_at) for item in all_of or ()]
    or_nodes = [_compile(item, looked_at) for item in any_of or ()]

    def rows(t: Table) -> Rows:
        # Same order and early exits as signac, so a filter that raises there for some
        # data (a comparison between a string and a number) raises here too, and only then.
        result: Rows | None = None
        for node in nodes:
            match = node(t)
            result = match if result is None else result & match
            if not result:
                return set()
        if not_node is not None:
            match = t.all() - not_node(t)
            result = match if result is None else result & match
            if not result:
                return set()
        for node in and_nodes:
            match = node(t)
            result = match if result is None else result & match
            if not result:
                return set()
        if or_nodes:
            union: Rows = set()
            for node in or_nodes:
                union |= node(t)
            result = union if result is None else result & union
        return result if result is not None else t.all()

    return rows


class Query:
    """A compiled filter.

    Attributes
    ----------
    matches_all
        True for an empty filter: every job matches and no state point is read (as in
        signac, where ``find_jobs()`` only lists the workspace).
    keys
        The top-level state point keys the filter looks at, or None if it needs whole
        state points.
    needs_document
        Whether job documents must be read (signac's rule, see the module docstring).
    """

    __slots__ = ("_node", "matches_all", "keys", "needs_document")

    def __init__(self, node: Node, matches_all: bool, keys: set[str] | None, needs_document: bool) -> None:
        self._node = node
        self.matches_all = matches_all
        self.keys = keys
        self.needs_document = needs_document

    def rows(self, table: Table) -> Rows:
        """Return the rows of ``table`` that match.

        Raises
        ------
        FilterError
            If signac would raise for this filter on these values.
        """
        return self._node(table)


def compile_query(filter_: Mapping[str, Any] | None) -> Query:
    """Compile a filter once, so a search over many jobs does not parse it again.

    Parameters
    ----------
    filter_
        A MongoDB-style filter (see the module docstring); ``None`` or ``{}`` matches all.

    Returns
    -------
    Query
        The compiled filter.

    Raises
    ------
    FilterError
        A ``ValueError``: the filter is malformed.
    """
    if filter_ is None or (isinstance(filter_, Mapping) and not filter_):
        return Query(Table.all, True, set(), False)
    prefixed = _add_prefix(filter_, "a filter")
    try:
        # tuples become lists, as the stored values are (signac normalises the same way)
        normalised = json.loads(json.dumps(prefixed))
    except (TypeError, ValueError) as exc:
        raise FilterError(f"a filter must be JSON-encodable: {exc}") from exc
    looked_at: list[str] = []
    node = _compile(normalised, looked_at)
    keys: set[str] | None = set()
    for key in looked_at:
        namespace, _, rest = key.partition(".")
        if namespace == "sp":
            if not rest:
                keys = None
                break
            if keys is not None:
                keys.add(rest.split(".", 1)[0])
    needs_document = "doc" in set(_root_keys(normalised))
    return Query(node, False, keys, needs_document)


def compile_filter(filter_: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool]:
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
    query = compile_query(filter_)

    def predicate(record: Mapping[str, Any]) -> bool:
        if not query.needs_document:
            record = {"sp": record.get("sp", ABSENT)}
        return bool(query.rows(Table.from_records([record])))

    return predicate
