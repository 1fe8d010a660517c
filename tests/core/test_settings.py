"""Settings: nested attribute dict with PLAMS's semantics."""

from __future__ import annotations

import pickle

import pytest

from plams_cli import Settings


def test_attribute_assignment_creates_branches() -> None:
    s = Settings()
    s.a.b.c = 1
    assert isinstance(s.a, Settings) and isinstance(s.a.b, Settings)
    assert s["a"]["b"]["c"] == 1
    assert s.as_dict() == {"a": {"b": {"c": 1}}}


def test_lookup_ignores_case_but_keeps_stored_case() -> None:
    s = Settings()
    s.Basis.Type = "DZP"
    assert s.basis.type == "DZP"
    assert s["BASIS"]["TYPE"] == "DZP"
    assert "basis" in s and "BASIS" in s
    s.BASIS.type = "TZP"  # updates the existing key, no second key
    assert list(s) == ["Basis"] and list(s.Basis) == ["Type"]
    assert s.Basis.Type == "TZP"
    assert s.find_case("bAsIs") == "Basis"
    assert s.find_case("other") == "other"


def test_get_creates_nothing() -> None:
    s = Settings()
    assert s.get("missing") is None
    assert s.get("missing", 3) == 3
    assert "missing" not in s


def test_nested_dicts_become_settings() -> None:
    s = Settings({"a": {"b": 1}, "l": [{"x": 1}]})
    assert isinstance(s.a, Settings)
    assert isinstance(s.l[0], Settings)
    s.c = {"d": 2}
    assert s.c.d == 2


def test_copy_is_deep() -> None:
    s = Settings({"a": {"b": [1, 2]}})
    c = s.copy()
    c.a.b.append(3)
    c.a.new = 1
    assert s.a.b == [1, 2] and "new" not in s.a


def test_soft_update_keeps_existing_values() -> None:
    s = Settings({"a": 1, "b": {"c": 2}})
    s.soft_update({"a": 10, "b": {"c": 20, "d": 30}, "e": 40})
    assert s.as_dict() == {"a": 1, "b": {"c": 2, "d": 30}, "e": 40}


def test_update_overwrites_recursively() -> None:
    s = Settings({"a": 1, "b": {"c": 2, "keep": 0}})
    s.update({"a": 10, "b": {"c": 20}})
    assert s.as_dict() == {"a": 10, "b": {"c": 20, "keep": 0}}


def test_merge_and_plus_do_not_change_operands() -> None:
    a = Settings({"x": 1, "n": {"y": 1}})
    b = Settings({"x": 2, "n": {"z": 2}})
    merged = a + b
    assert merged.as_dict() == {"x": 1, "n": {"y": 1, "z": 2}}
    assert a.merge(b) == merged
    assert a.as_dict() == {"x": 1, "n": {"y": 1}}


def test_remove_deletes_given_leaves() -> None:
    s = Settings({"a": 1, "b": {"c": 2, "d": 3}})
    s.remove({"b": {"c": None}})
    assert s.as_dict() == {"a": 1, "b": {"d": 3}}


def test_flatten_unflatten_round_trip() -> None:
    s = Settings({"a": {"b": 1, "c": [1, {"d": 2}]}, "e": 3})
    flat = s.flatten()
    assert flat[("a", "b")] == 1
    assert flat[("a", "c", 1, "d")] == 2
    assert flat.unflatten() == s


def test_get_and_set_nested() -> None:
    s = Settings()
    s.set_nested(("a", "b", "c"), 5)
    assert s.get_nested(("a", "b", "c")) == 5
    assert s.get_nested(("a", "x"), default="default") == "default"
    assert s[("a", "b", "c")] == 5
    assert ("a", "b") in s and ("a", "z") not in s


def test_yaml_round_trip() -> None:
    s = Settings({"input": {"ams": {"task": "GeometryOptimization"}}, "list": [1, 2], "flag": True})
    assert Settings.from_yaml(s.to_yaml()) == s
    assert isinstance(Settings.from_yaml(s.to_yaml()).input, Settings)


def test_yaml_rejects_non_mapping_and_bad_yaml() -> None:
    from plams_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="mapping at its top level, not a list"):
        Settings.from_yaml("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Settings.from_yaml("a: [1, 2\n")


def test_pop_and_setdefault_ignore_case_and_copy_is_deep() -> None:
    s = Settings({"Input": {"Basis": "DZ"}})
    assert s.input.setdefault("basis", "TZ2P") == "DZ" and list(s.input) == ["Basis"]
    assert s.setdefault("new", {"a": 1}).a == 1 and isinstance(s.new, Settings)
    assert s.pop("INPUT").basis == "DZ" and "input" not in s
    assert s.pop("missing", 7) == 7

    class Box:
        def __init__(self) -> None:
            self.items = [1]

    original = Settings({"box": Box(), "name": "x"})
    clone = original.copy()
    clone.box.items.append(2)
    assert original.box.items == [1] and clone.name == "x"


def test_pickle_round_trip_keeps_type() -> None:
    s = Settings({"a": {"b": 1}})
    back = pickle.loads(pickle.dumps(s))
    assert back == s and type(back.a) is Settings


def test_dunder_lookup_is_not_a_key() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        _ = s.__wrapped__
    assert "__wrapped__" not in s


def test_delete_attribute() -> None:
    s = Settings({"a": 1})
    del s.A
    assert "a" not in s
    with pytest.raises(AttributeError):
        del s.missing


def test_soft_update_from_defaults_used_before_sees_every_change_to_them() -> None:
    """The plan kept for a defaults object seen before never stands for what it no longer holds."""
    defaults = Settings({"pickle": True, "keep": ["*.out"], "runscript": {"shebang": "#!/bin/sh"}})
    first, second = Settings({"input": 1}).soft_update(defaults), Settings({"input": 2}).soft_update(defaults)
    assert first == {"input": 1, **defaults} and second == {"input": 2, **defaults}
    assert second.runscript is not defaults.runscript and second.keep is not defaults.keep
    defaults.pickle = 1  # equal to True, but not the same value
    defaults.keep.append("*.err")  # a mutable leaf changed in place
    defaults.runscript.shebang = "#!/bin/bash"  # a branch changed in place
    defaults.new = "key"
    third = Settings({"input": 3}).soft_update(defaults)
    assert type(third.pickle) is int and third.keep == ["*.out", "*.err"] and third.new == "key"
    assert third.runscript.shebang == "#!/bin/bash" and list(third) == ["input", "keep", "new", "pickle", "runscript"]
    third.runscript.shebang = "mine"
    del defaults.new
    fourth = Settings({"Pickle": False}).soft_update(defaults)  # shares a key (in another case): merged key by key
    assert fourth.as_dict() == {"Pickle": False, "keep": ["*.out", "*.err"], "runscript": {"shebang": "#!/bin/bash"}}


def test_soft_update_matches_keys_ignoring_case_and_copies_values() -> None:
    s = Settings({"Basis": {"Type": "DZ"}, 3: "three"})
    defaults = Settings({"basis": {"type": "TZ2P", "core": "None"}, "extra": [1, [2]], 3: "other", "d": {"e": 1}})
    s.soft_update(defaults)
    assert s.as_dict() == {"Basis": {"Type": "DZ", "core": "None"}, 3: "three", "extra": [1, [2]], "d": {"e": 1}}
    assert isinstance(s.d, Settings) and s.d is not defaults.d and s.extra is not defaults.extra
    s.extra[1].append(3)
    assert defaults.extra == [1, [2]]
