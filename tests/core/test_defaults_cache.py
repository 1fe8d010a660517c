"""The parsed defaults kept between runs: used only while both files hold the same bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plams_cli import defaults
from plams_cli.errors import ConfigError
from tests.conftest import python_env


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache file of the test's own, an empty in-process cache, and a user file ``mine.yaml``."""
    path = tmp_path / "cache" / "defaults.cache"
    monkeypatch.setenv("PLAMS_DEFAULTS_CACHE", str(path))
    monkeypatch.setenv("PLAMS_DEFAULTS", str(tmp_path / "mine.yaml"))
    monkeypatch.setattr(defaults, "_cache", {})
    (tmp_path / "mine.yaml").write_text("sleepstep: 1\njob:\n  pickle: false\n")
    return path


def _parsed(user: Path) -> dict[str, object]:
    """The merged defaults the slow way: PyYAML on both files."""
    merged = yaml.safe_load(defaults.package_defaults_path().read_text())
    return defaults.merge_dicts(merged, yaml.safe_load(user.read_text()) or {})


def _load_in_a_new_process() -> dict[str, object]:
    defaults._cache.clear()
    return defaults.load_defaults()


def test_the_cache_gives_what_parsing_gives(cache_file: Path, tmp_path: Path) -> None:
    first = defaults.load_defaults()
    assert cache_file.is_file()
    assert first == _parsed(tmp_path / "mine.yaml") and first["sleepstep"] == 1
    assert _load_in_a_new_process() == first
    first["sleepstep"] = 99  # a fresh copy each call
    assert defaults.load_defaults()["sleepstep"] == 1


@pytest.mark.parametrize("same_stat", [False, True], ids=["edited", "edited-same-size-and-mtime"])
def test_an_edit_of_the_user_file_is_seen_at_once(cache_file: Path, tmp_path: Path, same_stat: bool) -> None:
    user = tmp_path / "mine.yaml"
    assert defaults.load_defaults()["sleepstep"] == 1
    stat = user.stat()
    user.write_text("sleepstep: 2\njob:\n  pickle: false\n")  # same size
    if same_stat:
        os.utime(user, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _load_in_a_new_process()["sleepstep"] == 2
    assert defaults.load_defaults()["sleepstep"] == 2  # the in-process cache too


def test_another_user_file_is_another_key(cache_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert defaults.load_defaults()["sleepstep"] == 1
    other = tmp_path / "other.yaml"
    other.write_text("sleepstep: 1\njob:\n  pickle: false\n")  # the same bytes elsewhere: same values
    monkeypatch.setenv("PLAMS_DEFAULTS", str(other))
    assert _load_in_a_new_process() == _parsed(other)
    monkeypatch.delenv("PLAMS_DEFAULTS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert _load_in_a_new_process()["sleepstep"] == yaml.safe_load(defaults.package_defaults_path().read_text())[
        "sleepstep"]


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xe3\x00\x00\x00\x00" * 10], ids=["empty", "text", "binary"])
def test_a_corrupt_cache_file_is_parsed_again_and_replaced(cache_file: Path, tmp_path: Path, content: bytes) -> None:
    cache_file.parent.mkdir()
    cache_file.write_bytes(content)
    assert defaults.load_defaults() == _parsed(tmp_path / "mine.yaml")
    assert cache_file.read_bytes() != content
    assert _load_in_a_new_process() == _parsed(tmp_path / "mine.yaml")


def test_a_bad_user_file_is_still_refused_after_a_good_one_was_cached(cache_file: Path, tmp_path: Path) -> None:
    defaults.load_defaults()
    (tmp_path / "mine.yaml").write_text("jobmanager:\n  hashing: md5\n")
    with pytest.raises(ConfigError, match="jobmanager.hashing"):
        _load_in_a_new_process()
    (tmp_path / "mine.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        _load_in_a_new_process()


def test_values_marshal_cannot_keep_are_parsed_every_time(cache_file: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("sleepstep: 1\nstarted: 2024-01-02\n")
    assert str(defaults.load_defaults()["started"]) == "2024-01-02"
    assert not cache_file.exists()
    assert str(_load_in_a_new_process()["started"]) == "2024-01-02"


def test_off_writes_no_cache_and_an_unwritable_place_is_no_error(cache_file: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAMS_DEFAULTS_CACHE", "off")
    assert defaults.defaults_cache_path() is None
    assert defaults.load_defaults()["sleepstep"] == 1
    assert not cache_file.exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PLAMS_DEFAULTS_CACHE", str(blocker / "defaults.cache"))
    assert _load_in_a_new_process()["sleepstep"] == 1


def test_the_default_place_is_the_user_cache_folder(tmp_path: Path) -> None:
    env = python_env() | {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    env.pop("PLAMS_DEFAULTS_CACHE")
    subprocess.run([sys.executable, "-c", "import plams_cli; plams_cli.config"], env=env, check=True, timeout=60)
    assert (tmp_path / "xdg-cache" / "plams" / "defaults.cache").is_file()
