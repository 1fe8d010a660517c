"""``KeyAttributes``: the mixin that maps attribute access to keys, a leaf every room may use.

``obj.x`` reads ``obj["x"]``, ``obj.x = 1`` sets it and ``del obj.x`` deletes it, except
for the object's own attributes (its slots, private names, dunders), which a class names
with three class attributes. PLAMS's ``Settings``, the workspace's state point and
document views, and the HDF5 stores use it, each with the rules it had before::

    class Settings(KeyAttributes, dict):
        _own_prefix = _own_suffix = "__"        # only dunders are attributes
        _missing_raises_key_error = True        # s.x under suppress_missing(): KeyError

The mixin has no state (``__slots__ = ()``), so it fits ``dict`` subclasses and classes
with slots alike.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

__all__ = ["KeyAttributes"]


class _Keyed(Protocol):
    """What the mixin needs of the class it is mixed into."""

    _own_prefix: ClassVar[str]
    _own_suffix: ClassVar[str]
    _own_names: ClassVar[frozenset[str]]
    _missing_raises_key_error: ClassVar[bool]
    _own_rules: ClassVar[tuple[str, str, frozenset[str]]]

    def __getitem__(self, key: Any, /) -> Any: ...

    def __setitem__(self, key: Any, value: Any, /) -> None: ...

    def __delitem__(self, key: Any, /) -> None: ...

    def _missing_attribute(self, name: str) -> AttributeError: ...


class KeyAttributes:
    """Mixin: attributes are keys, except the object's own.

    A name is the object's own, never a key, when it is in ``_own_names`` or starts
    with ``_own_prefix`` and ends with ``_own_suffix``. A missing key read or deleted as
    an attribute raises :meth:`_missing_attribute`'s ``AttributeError`` (so ``hasattr``
    and ``getattr(obj, name, default)`` work), or, when ``_missing_raises_key_error`` is
    set, a read lets the ``KeyError`` through (PLAMS's ``Settings`` does).
    """

    __slots__ = ()

    #: Names starting with this (and ending with ``_own_suffix``) are attributes, not keys.
    _own_prefix: ClassVar[str] = "_"
    #: See ``_own_prefix``.
    _own_suffix: ClassVar[str] = ""
    #: Further names that are attributes, not keys (e.g. slots without the prefix).
    _own_names: ClassVar[frozenset[str]] = frozenset()
    #: Whether reading a missing key as an attribute raises ``KeyError`` itself.
    _missing_raises_key_error: ClassVar[bool] = False
    # The three rules in one tuple, read with one lookup on every attribute access
    # (Settings reads keys as attributes in every job; each lookup costs ~25 ns).
    _own_rules: ClassVar[tuple[str, str, frozenset[str]]] = ("_", "", frozenset())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_rules = (cls._own_prefix, cls._own_suffix, frozenset(cls._own_names))

    def _missing_attribute(self, name: str) -> AttributeError:
        """The error for the missing key ``name`` read or deleted as an attribute."""
        return AttributeError(f"no key {name!r}")

    def __getattr__(self: _Keyed, name: str) -> Any:
        """Return the value of key ``name`` (attribute access)."""
        # Runs only for names normal lookup did not find: slots, methods and properties
        # never come here.
        prefix, suffix, names = self._own_rules
        if name.startswith(prefix) and name.endswith(suffix) or name in names:
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            if self._missing_raises_key_error:
                raise
            raise self._missing_attribute(name) from None

    def __setattr__(self: _Keyed, name: str, value: Any) -> None:
        """Set key ``name`` to ``value`` (attribute access), or the object's own attribute."""
        prefix, suffix, names = self._own_rules
        if name.startswith(prefix) and name.endswith(suffix) or name in names:
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self: _Keyed, name: str) -> None:
        """Delete key ``name`` (attribute access), or the object's own attribute."""
        prefix, suffix, names = self._own_rules
        if name.startswith(prefix) and name.endswith(suffix) or name in names:
            object.__delattr__(self, name)
            return
        try:
            del self[name]
        except KeyError:
            raise self._missing_attribute(name) from None
