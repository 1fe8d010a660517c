"""The state point schema of a workspace: every key, with the values it takes, by type.

:func:`detect_schema` gives what signac's ``Project.detect_schema`` gives for the same jobs
(keys of nested mappings are dotted, lists become tuples); ``plams workspace schema``
prints it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from numbers import Number
from typing import Any

from .cursor import dotted_items

__all__ = ["ProjectSchema", "detect_schema"]

#: ``{"a.b": {int: {1, 2}, str: {"x"}}}``
Schema = dict[str, dict[type, set[Any]]]


def _hashable(value: Any) -> Any:
    if type(value) is list:
        return tuple(_hashable(item) for item in value)
    return value


def detect_schema(
    statepoints: Iterable[Mapping[str, Any]], exclude_const: bool = False
) -> ProjectSchema:
    """Return the schema of some state points.

    Parameters
    ----------
    statepoints
        The state points, in the order signac would visit the jobs.
    exclude_const
        Leave out keys every job has with the same value.

    Returns
    -------
    ProjectSchema
        Dotted key -> {type: set of values}.
    """
    # value -> count per key, as signac's index: 1, 1.0 and True are one entry there too.
    index: dict[str, dict[Any, int]] = {}
    total = 0
    for sp in statepoints:
        total += 1
        for key, value in dotted_items(sp):
            counts = index.setdefault(key, {})
            if isinstance(value, Mapping):
                continue  # an empty mapping: the key shows, without values
            value = _hashable(value)
            counts[value] = counts.get(value, 0) + 1
    schema: Schema = {}
    for key in sorted(index, key=lambda k: (len(index[k]), k)):
        counts = index[key]
        if exclude_const and len(counts) == 1 and next(iter(counts.values())) == total:
            continue
        by_type: dict[type, set[Any]] = {}
        for value in counts:
            by_type.setdefault(type(value), set()).add(value)
        schema[key] = by_type
    return ProjectSchema(schema)


class ProjectSchema(Mapping[str, dict[type, set[Any]]]):
    """A workspace's state point schema: dotted key -> {type: set of values}.

    ``str(schema)`` is the text signac prints (``signac schema``; ``plams workspace
    schema`` here).

    Parameters
    ----------
    schema
        The mapping itself.
    """

    def __init__(self, schema: Schema | None = None) -> None:
        self._schema: Schema = schema if schema is not None else {}

    def __getitem__(self, key: str) -> dict[type, set[Any]]:
        """Return ``{type: set of values}`` of a dotted key."""
        return self._schema[key]

    def __iter__(self) -> Iterator[str]:
        """Iterate over the dotted keys."""
        return iter(self._schema)

    def __len__(self) -> int:
        """Return the number of keys."""
        return len(self._schema)

    def __str__(self) -> str:
        """Return :meth:`format` with its defaults."""
        return self.format()

    def __repr__(self) -> str:
        """Show the number of keys, as signac does."""
        return f"{type(self).__name__}(<len={len(self)}>)"

    def _repr_html_(self) -> str:
        import html

        return f"<strong>{html.escape(repr(self))}</strong><pre>{self}</pre>"

    def format(
        self, depth: int | None = None, precision: int | None = None, max_num_range: int | None = None
    ) -> str:
        """Return the schema as text, as signac's ``ProjectSchema.format``.

        Parameters
        ----------
        depth
            Nest dotted keys up to this depth (0, the default, lists them flat).
        precision
            Round numbers to this many digits.
        max_num_range
            Show at most this many values per type (default 5), eliding the middle.

        Returns
        -------
        str
            One ``'key': 'type([values], count)'`` line per key, in braces.
        """
        depth = depth or 0
        shown = 5 if max_num_range is None else max_num_range

        def value_text(value: Any) -> str:
            if precision is not None and isinstance(value, Number):
                return str(round(value, precision))  # type: ignore[call-overload]
            return str(value)

        def range_text(type_: type, values: set[Any]) -> str:
            try:
                ordered = sorted(values)
            except TypeError:
                ordered = sorted(values, key=repr)
            if len(values) <= shown:
                text = ", ".join(value_text(v) for v in ordered)
            else:
                text = ", ".join(value_text(v) for v in ordered[: shown - 2])
                text += ", ..., " + ", ".join(value_text(v) for v in ordered[-2:])
            return f"{type_.__name__}([{text}], {len(values)})"

        def values_text(values: dict[type, set[Any]]) -> str:
            return ", ".join(range_text(t, v) for t, v in values.items())

        if depth > 0:
            from pprint import pformat  # imported late: it pulls in dataclasses and inspect

            nested: dict[str, Any] = {}
            for key, values in self._schema.items():
                *parents, last = key.split(".")
                node = nested
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = values_text(values)
            return pformat(nested, depth=depth)
        lines = ["{"]
        for key in sorted(self._schema):
            values = self._schema[key]
            if values:
                lines.append(f" '{key}': '{values_text(values)}',")
        lines.append("}")
        return "\n".join(lines)

    def difference(self, other: Mapping[str, Any], ignore_values: bool = False) -> set[str]:
        """Return the keys missing from ``other`` or, unless ``ignore_values``, different there.

        Parameters
        ----------
        other
            Another schema.
        ignore_values
            Only report missing keys.

        Returns
        -------
        set of str
            The dotted keys.
        """
        keys = set(self).difference(other)
        if not ignore_values:
            keys.update(k for k, v in self.items() if k in other and other[k] != v)
        return keys

    def to_json(self) -> dict[str, dict[str, list[Any]]]:
        """Return the schema as JSON data: ``{key: {type name: sorted values}}``.

        Tuples (lists in the state points) become lists again.

        Returns
        -------
        dict
            The schema.
        """

        def plain(value: Any) -> Any:
            return [plain(v) for v in value] if isinstance(value, tuple) else value

        def ordered(values: set[Any]) -> list[Any]:
            try:
                return sorted(values)
            except TypeError:
                return sorted(values, key=repr)

        return {
            key: {_json_type(t): [plain(v) for v in ordered(vals)] for t, vals in values.items()}
            for key, values in self._schema.items()
        }


def _json_type(type_: type) -> str:
    """The name of a value's type as JSON tells it: lists (tuples in the schema) are lists."""
    return "list" if type_ is tuple else type_.__name__
