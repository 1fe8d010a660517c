"""``Settings``: the nested, attribute-accessible dictionary of PLAMS.

``s.a.b.c = 1`` creates the branches ``a`` and ``b``; ``s['A']`` finds the key ``'a'``
(lookup ignores case, stored keys keep theirs); tuple keys address nested values.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import textwrap
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

from plams_cli._attrdict import KeyAttributes

__all__ = ["Settings"]


_MISSING = object()
_IMMUTABLE = (str, int, float, bool, bytes, type(None), tuple, frozenset)
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})  # leaves stored as they are, tested by type alone
# Settings.suppress_missing() is per thread: a job running in another thread keeps its
# automatic branches while a script checks keys strictly (PLAMS switches them off globally).
_strict = threading.local()


def _missing_suppressed() -> bool:
    return getattr(_strict, "depth", 0) > 0


@contextlib.contextmanager
def _suppress_missing() -> Iterator[None]:
    _strict.depth = getattr(_strict, "depth", 0) + 1
    try:
        yield
    finally:
        _strict.depth -= 1


def _copy_value(value: Any) -> Any:
    """A copy of ``value`` to store in a Settings: branches become Settings, immutables are kept."""
    if isinstance(value, Settings):
        return value.copy()
    if isinstance(value, dict):
        return Settings(_copy.deepcopy(value))
    if isinstance(value, _IMMUTABLE) and not isinstance(value, tuple):
        return value
    return _copy.deepcopy(value)


_STR_TYPE = frozenset({str})


class Settings(KeyAttributes, dict):  # type: ignore[type-arg]
    """A nested dictionary whose keys are also attributes, as in PLAMS.

    Reading a missing key creates an empty branch, so ``s.a.b.c = 1`` needs no set-up.
    Keys that are strings are found regardless of case: ``s.Basis`` reads ``s.basis``.
    Dictionaries given as values become ``Settings``.

    Examples
    --------
    >>> s = Settings()
    >>> s.input.ams.task = "SinglePoint"
    >>> s["Input"]["AMS"]["Task"]
    'SinglePoint'
    """

    # Attributes are keys except dunders; a missing key read as an attribute under
    # suppress_missing() raises KeyError, as in PLAMS (see KeyAttributes).
    _own_prefix = _own_suffix = "__"
    _missing_raises_key_error = True

    def _missing_attribute(self, name: str) -> AttributeError:
        return AttributeError(name)

    def __getattr__(self, name: str) -> Any:
        # KeyAttributes.__getattr__ with Settings' rules written in (read in every job, often
        # several times): a dunder is no key; a missing key is a new branch, or KeyError under
        # suppress_missing() (see __missing__).
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self[name]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        for key, value in dict.items(self):
            if isinstance(value, dict) and not isinstance(value, Settings):
                dict.__setitem__(self, key, Settings(value))
            elif isinstance(value, list):
                dict.__setitem__(self, key, [Settings(v) if isinstance(v, dict) and not isinstance(v, Settings) else v
                                              for v in value])

    # --- item and attribute access ---------------------------------------------------
    def __missing__(self, name: Any) -> Any:
        if isinstance(name, tuple):
            return self.get_nested(name, _missing_suppressed())
        if dict.__len__(self):  # (an empty branch has no other case of the name to find)
            found = self.find_case(name)
            if found is not name and found in self:
                return dict.__getitem__(self, found)
        if _missing_suppressed():
            raise KeyError(name)
        branch = Settings.__new__(Settings)  # an empty branch: nothing for __init__ to convert
        dict.__setitem__(self, name, branch)
        return branch

    def __setitem__(self, name: Any, value: Any) -> None:
        if isinstance(name, tuple):
            self.set_nested(name, value)
            return
        if isinstance(value, dict) and not isinstance(value, Settings):
            value = Settings(value)
        if dict.__len__(self) and not dict.__contains__(self, name):
            name = self.find_case(name)
        dict.__setitem__(self, name, value)

    def __delitem__(self, name: Any) -> None:
        if isinstance(name, tuple):
            parent = self.get_nested(name[:-1])
            del parent[name[-1]]
            return
        if not dict.__contains__(self, name):
            name = self.find_case(name)
        dict.__delitem__(self, name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, tuple):
            node: Any = self
            for key in name:
                if not isinstance(node, Settings) or key not in node:
                    return False
                node = dict.__getitem__(node, node.find_case(key))
            return True
        if dict.__contains__(self, name):
            return True
        if isinstance(name, str):
            lowered = name.lower()
            for key in dict.keys(self):  # (a loop, not any() over a generator: every job asks for absent keys)
                if isinstance(key, str) and key.lower() == lowered:
                    return True
        return False

    def get(self, name: Any, default: Any = None) -> Any:
        """Return ``self[name]`` when present (case-insensitive), else ``default``; creates nothing."""
        if type(name) is str:  # the common case first
            value = dict.get(self, name, _MISSING)
            return value if value is not _MISSING else dict.get(self, self.find_case(name), default)
        if isinstance(name, tuple):
            return self.get_nested(name, default=default)
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        found = self.find_case(name)
        return dict.get(self, found, default)

    def pop(self, name: Any, *default: Any) -> Any:
        """Remove ``name`` (any case) and return its value, or ``default`` when it is missing."""
        if not dict.__contains__(self, name):
            name = self.find_case(name)
        return dict.pop(self, name, *default)

    def setdefault(self, name: Any, default: Any = None) -> Any:
        """``self[name]`` when present (any case); else store ``default`` there and return it."""
        if name in self:
            return self[name]
        self[name] = default
        return self[name]

    def find_case(self, key: Any) -> Any:
        """Return the stored key equal to ``key`` ignoring case, or ``key`` itself if none is."""
        if not isinstance(key, str) or dict.__contains__(self, key) or not dict.__len__(self):
            return key
        lowered = key.lower()
        for stored in dict.keys(self):
            if isinstance(stored, str) and stored.lower() == lowered:
                return stored
        return key

    # --- nested access (PLAMS's signatures) ------------------------------------------
    @staticmethod
    def suppress_missing() -> contextlib.AbstractContextManager[None]:
        """A context manager inside which a missing key raises ``KeyError``, as in a ``dict``.

        Automatic branches are off for every ``Settings`` while the block runs, in the
        thread that entered it (PLAMS switches them off for all threads).

        Examples
        --------
        >>> s = Settings()
        >>> with s.suppress_missing():
        ...     s.a.b = 1
        Traceback (most recent call last):
        KeyError: 'a'
        """
        return _suppress_missing()

    def contains_nested(self, key_tuple: Iterable[Hashable], suppress_missing: bool = False) -> bool:
        """Whether the path ``key_tuple`` exists; lists on the way are indexed by position.

        Raises
        ------
        KeyError
            A key is missing and ``suppress_missing`` is true.
        TypeError
            ``key_tuple`` is a string or not iterable.
        """
        if isinstance(key_tuple, (str, bytes)) or not isinstance(key_tuple, Iterable):
            raise TypeError(f"Argument 'key_tuple' must be a non-string iterable but was type "
                            f"{type(key_tuple).__name__}")
        node: Any = self
        for key in key_tuple:
            if isinstance(node, Settings):
                if key not in node:
                    if suppress_missing:
                        raise KeyError(f"Key '{key}' not present in the nested Settings object.")
                    return False
                node = dict.__getitem__(node, node.find_case(key))
                continue
            try:
                node = node[key]
            except (KeyError, TypeError, IndexError) as exc:
                if suppress_missing:
                    raise KeyError(f"Cannot access key '{key}' in the nested Settings object. "
                                   f"Error was: {exc}.") from exc
                return False
        return True

    def get_nested(self, key_tuple: Iterable[Hashable], suppress_missing: bool = False, default: Any = None) -> Any:
        """Return the value at the path ``key_tuple``; ``default`` when a part is missing.

        Creates nothing. With ``suppress_missing`` a missing part raises ``KeyError``.
        """
        keys = tuple(key_tuple) if not isinstance(key_tuple, (str, bytes)) else key_tuple
        if not self.contains_nested(keys, suppress_missing):
            return default
        node: Any = self
        for key in keys:
            node = dict.__getitem__(node, node.find_case(key)) if isinstance(node, Settings) else node[key]
        return node

    def set_nested(self, key_tuple: Iterable[Hashable], value: Any, suppress_missing: bool = False) -> None:
        """Set the value at the path ``key_tuple``, creating the branches on the way.

        With ``suppress_missing`` every branch but the last key must already exist
        (``KeyError`` otherwise).
        """
        keys = tuple(key_tuple) if not isinstance(key_tuple, (str, bytes)) else key_tuple
        if not keys:
            raise KeyError("set_nested needs at least one key")
        self.contains_nested(keys[:-1], suppress_missing)
        node: Any = self
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    def pop_nested(self, key_tuple: Iterable[Hashable], suppress_missing: bool = False, default: Any = None) -> Any:
        """Remove the value at the path ``key_tuple`` and return it (``default`` when missing)."""
        keys = tuple(key_tuple) if not isinstance(key_tuple, (str, bytes)) else key_tuple
        if not self.contains_nested(keys, suppress_missing):
            return default
        parent = self.get_nested(keys[:-1])
        return parent.pop(keys[-1])

    # --- whole-tree operations -------------------------------------------------------
    def copy(self) -> Settings:
        """Return a deep copy: branches are new ``Settings``, other values are deep-copied.

        Keys are inserted in iteration (sorted) order, as PLAMS's ``copy()`` does, so
        ``items()`` of a job's settings lists them as in PLAMS. PLAMS shares the leaf
        values; here they are copied, so a list changed in one job stays put in another.
        """
        return self._copy(ordered=True)

    def _copy(self, ordered: bool) -> Settings:
        new = type(self).__new__(type(self))
        for key in (self.__iter__() if ordered else dict.__iter__(self)):
            value = dict.__getitem__(self, key)
            if type(value) in _PLAIN:  # (the common leaves, without _copy_value's tests: every job copies defaults)
                dict.__setitem__(new, key, value)
            else:
                dict.__setitem__(new, key, value._copy(ordered) if isinstance(value, Settings) else _copy_value(value))
        return new

    def __copy__(self) -> Settings:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Settings:
        # copy.deepcopy keeps the insertion order, as it does on PLAMS's Settings
        return self._copy(ordered=False)

    def __reduce__(self) -> Any:
        return (type(self), (dict(dict.items(self)),))

    def soft_update(self, other: Mapping[Any, Any]) -> Settings:
        """Add the keys of ``other`` that are missing here, recursively; existing values win.

        Returns ``self``.
        """
        # Our keys case-folded: a key of other not among them (in any case) is copied in
        # without a search; the first of keys of other differing only in case counts, as in
        # PLAMS (a later one finds it among them).
        try:
            mine = set(map(str.lower, dict.keys(self)))  # (the common case: string keys, no Python loop)
        except TypeError:
            mine = {key.lower() if isinstance(key, str) else key for key in dict.keys(self)}
        if type(other) is Settings:
            plan = _merge_plan(other)
            if plan is not None and mine.isdisjoint(plan.folded):
                plan.add_to(self)
                return self
        for key in other:  # a Settings yields its keys sorted: new keys land in PLAMS's order
            value = other[key]
            folded = key.lower() if isinstance(key, str) else key
            if folded not in mine:
                dict.__setitem__(self, key, value if type(value) in _PLAIN else _copy_value(value))
                mine.add(folded)
                continue
            held = dict.__getitem__(self, key if dict.__contains__(self, key) else self.find_case(key))
            if isinstance(held, Settings) and (isinstance(value, dict) or isinstance(value, Mapping)):
                held.soft_update(value)
        return self

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        """Overwrite with the values of ``other``, recursively: branches merge, leaves are replaced."""
        items = [(key, other[key]) for key in other] if isinstance(other, Mapping) else list(other)
        for key, value in [*items, *kwargs.items()]:
            if isinstance(value, Mapping) and isinstance(self.get(key), Settings):
                self[key].update(value)
            else:
                self[key] = value.copy() if isinstance(value, Settings) else value

    def merge(self, other: Mapping[Any, Any]) -> Settings:
        """Return a copy of this ``Settings`` soft-updated with ``other`` (also ``self + other``)."""
        return self.copy().soft_update(other)

    __add__ = merge
    __iadd__ = soft_update

    def remove(self, other: Mapping[Any, Any]) -> Settings:
        """Remove from this ``Settings`` every leaf key present in ``other``, recursively.

        Returns ``self``.
        """
        for key, value in other.items():
            if key not in self:
                continue
            mine = self[key]
            if isinstance(value, Mapping) and isinstance(mine, Settings) and len(value):
                mine.remove(value)
            else:
                del self[key]
        return self

    def as_dict(self) -> dict[Any, Any]:
        """Return the tree as plain nested ``dict`` objects (lists are walked too)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Settings):
                return {k: plain(v) for k, v in dict.items(value)}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return plain(self)  # type: ignore[no-any-return]

    def flatten(self, flatten_list: bool = True) -> Settings:
        """Return a one-level ``Settings`` whose keys are tuples of the nested keys.

        With ``flatten_list``, list items are addressed by their index too.
        """
        flat = Settings()

        def walk(prefix: tuple[Any, ...], value: Any) -> None:
            if isinstance(value, Settings) and len(value):
                for k, v in dict.items(value):
                    walk((*prefix, k), v)
            elif flatten_list and isinstance(value, list) and value:
                for i, v in enumerate(value):
                    walk((*prefix, i), v)
            else:
                dict.__setitem__(flat, prefix, value)

        for key, value in dict.items(self):
            walk((key,), value)
        return flat

    def unflatten(self, unflatten_list: bool = True) -> Settings:
        """Inverse of :meth:`flatten`: tuple keys become nested branches (and lists)."""
        nested = Settings()
        for keys, value in dict.items(self):
            keys = keys if isinstance(keys, tuple) else (keys,)
            node: Any = nested
            for i, key in enumerate(keys[:-1]):
                following = keys[i + 1]
                if isinstance(node, list):
                    while len(node) <= key:
                        node.append(None)
                    if node[key] is None:
                        node[key] = [] if unflatten_list and isinstance(following, int) else Settings()
                    node = node[key]
                else:
                    if key not in node:
                        dict.__setitem__(node, key, [] if unflatten_list and isinstance(following, int) else Settings())
                    node = dict.__getitem__(node, key)
            last = keys[-1]
            if isinstance(node, list):
                while len(node) <= last:
                    node.append(None)
                node[last] = value
            else:
                dict.__setitem__(node, last, value)
        return nested

    # --- YAML ----------------------------------------------------------------------
    def to_yaml(self) -> str:
        """Return the tree as a YAML document (plain types only)."""
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return str(yaml.dump(self.as_dict(), Dumper=dumper, sort_keys=False, default_flow_style=False))

    @classmethod
    def from_yaml(cls, text: str) -> Settings:
        """Build a ``Settings`` from a YAML document whose top level is a mapping.

        Raises
        ------
        ConfigError
            The text is not YAML, or not a mapping.
        """
        import yaml

        from plams_cli.errors import ConfigError

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = yaml.load(text, Loader=loader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {' '.join(str(exc).split())}") from exc
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError("a Settings YAML document must be a mapping at its top level, "
                              f"not a {type(data).__name__}")
        return cls(data)

    # --- display: PLAMS's text, byte for byte ------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        """Keys in PLAMS's order: sorted as if they were strings (``keys()`` keeps insertion order)."""
        keys = list(dict.keys(self))
        if set(map(type, keys)) - _STR_TYPE:  # (no Python loop: every job copies and merges settings)
            return iter(sorted(keys, key=str))
        keys.sort()  # the common case, string keys: no str() per key
        return iter(keys)

    def __str__(self) -> str:
        return self._str(0)

    def _str(self, indent: int) -> str:
        # PLAMS's layout: "key: \t" then the value; a branch below, indented by the key's
        # width plus one; multi-line values indented under their first line.
        text = ""
        for key, value in dict.items(self):
            text += " " * indent + str(key) + ": \t"
            if isinstance(value, Settings):
                if len(value) == 0:
                    text += "<empty Settings>\n"
                else:
                    text += "\n" + value._str(indent + len(str(key)) + 1)
            else:
                prefix = " " * (2 + indent + len(str(key))) + "\t"
                text += textwrap.indent(str(value), prefix)[len(prefix):] + "\n"
        return text if text else "<empty Settings>"

    __repr__ = __str__

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in dict.keys(self) if isinstance(k, str) and k.isidentifier())]


class _MergePlan:
    """What :meth:`Settings.soft_update` adds from one ``Settings`` to one that has none of its keys.

    Every job soft-updates its settings with the same defaults (``config.job``), most often
    into settings that share no key with them: the keys, in order, and the leaves are then
    the same each time, and only the branches need fresh copies. A plan is made once per
    defaults object and used while that object still holds the same keys and the very same
    values (:meth:`holds`), its branches included; any change makes a new plan.
    """

    __slots__ = ("source", "values", "signature", "pairs", "folded", "copies", "branches")

    def __init__(self, source: Settings) -> None:
        self.source = source
        self.values = list(dict.values(source))  # (held: their ids in the signature stay theirs)
        self.signature = _signature(source)
        ordered = list(source.__iter__())
        self.folded = frozenset(map(str.lower, ordered))
        #: (key, value) in the order soft_update adds them; branches and mutable values as placeholders
        self.pairs = [(key, dict.__getitem__(source, key)) for key in ordered]
        #: keys whose value is copied at each use, by _copy_value (mutable leaves, Settings subclasses)
        self.copies: list[str] = []
        #: keys whose value is a plain Settings branch, copied through its own plan
        self.branches: list[tuple[str, _MergePlan]] = []
        for key, value in self.pairs:
            if type(value) in _PLAIN:
                continue
            if type(value) is Settings and _plannable(value):
                self.branches.append((key, _MergePlan(value)))
            else:
                self.copies.append(key)

    def holds(self) -> bool:
        """Whether the source still has exactly the keys and (the very same objects as) values of this plan."""
        if _signature(self.source) != self.signature:
            return False
        for _, branch in self.branches:
            if not branch.holds():
                return False
        return True

    def add_to(self, target: Settings) -> None:
        """Add this plan's keys to ``target`` (which has none of them), as soft_update would."""
        dict.update(target, self.pairs)
        for key, branch in self.branches:
            dict.__setitem__(target, key, branch.copy())
        for key in self.copies:
            dict.__setitem__(target, key, _copy_value(dict.__getitem__(self.source, key)))

    def copy(self) -> Settings:
        """A copy of the source, as ``source.copy()`` makes it."""
        new = Settings.__new__(Settings)
        self.add_to(new)
        return new


def _signature(settings: Settings) -> list[Any]:
    """The keys of ``settings`` in order, then the ids of its values (the same ids: the same objects)."""
    return [*dict.keys(settings), *map(id, dict.values(settings))]


def _plannable(settings: Settings) -> bool:
    """Whether a plan can stand for ``settings``: string keys, none two in different cases."""
    keys = list(dict.keys(settings))
    if set(map(type, keys)) - _STR_TYPE:
        return False
    return len(set(map(str.lower, keys))) == len(keys)


#: id of a Settings soft-updated from -> its plan, or the Settings itself when seen once (a
#: one-off is not worth a plan); held, so that the id stays its own. A few entries.
_PLANS: dict[int, _MergePlan | Settings] = {}
_MAX_PLANS = 64


def _merge_plan(other: Settings) -> _MergePlan | None:
    """The plan of ``other`` from its second use on, made anew when ``other`` changed; else ``None``."""
    known = _PLANS.get(id(other))
    if type(known) is _MergePlan:
        if known.source is other and known.holds():
            return known
    elif known is not other:  # first sight
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[id(other)] = other
        return None
    if not _plannable(other):
        return None
    plan = _PLANS[id(other)] = _MergePlan(other)
    return plan
