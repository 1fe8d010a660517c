"""Reading the YAML defaults: the file shipped with the package, then the user's own.

A leaf module (no other plams_cli import but the errors and ``_fs``) so that the core's ``config``
and the runners' grid definitions read the same files the same way.

Order, later wins: ``plams_defaults.yaml`` shipped with the package, then the user file
named by ``$PLAMS_DEFAULTS`` or, without it, ``plams_defaults.yaml`` in the user config
folder (``platformdirs.user_config_dir("plams")``), when that file exists.

Parsing YAML costs a start-up more than all the rest of ``init()`` (importing PyYAML
alone takes ~13 ms), so the merged result is kept in a cache file
(``platformdirs.user_cache_dir("plams")/defaults.cache``, or ``$PLAMS_DEFAULTS_CACHE``;
``off`` there turns it off) together with the exact bytes of both files it came from:
it is used only while both files still hold those bytes, so an edit of the user's file
is seen at once, however fast it follows the last read.
"""

from __future__ import annotations

import copy
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from plams_cli._fs import atomic_write
from plams_cli.errors import ConfigError

__all__ = ["package_defaults_path", "user_defaults_path", "load_defaults", "merge_dicts", "check_defaults",
           "defaults_cache_path"]

_FILENAME = "plams_defaults.yaml"
#: bump when what a cache file holds, or how the files are parsed and merged, changes
_CACHE_FORMAT = 1
#: (package bytes, user file path, user bytes) -> merged defaults, for this process
_cache: dict[tuple[bytes, str | None, bytes | None], dict[str, Any]] = {}


def package_defaults_path() -> Path:
    """Path of the defaults file shipped with plams-cli.

    An installed wheel carries it as ``plams_cli/defaults/``; a source tree keeps it in
    the top-level ``defaults/`` folder.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "defaults" / _FILENAME, here.parent / "defaults" / _FILENAME):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"the packaged defaults file {_FILENAME} is missing; reinstall plams-cli"
    )


def user_defaults_path() -> Path | None:
    """Path of the user's defaults file, or ``None`` when there is none.

    ``$PLAMS_DEFAULTS`` must name an existing file; an unset variable falls back to the
    user config folder, where a missing file is fine.
    """
    env = os.environ.get("PLAMS_DEFAULTS")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"PLAMS_DEFAULTS names {path}, which is not a file")
        return path
    from platformdirs import user_config_dir

    path = Path(user_config_dir("plams")) / _FILENAME
    return path if path.is_file() else None


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read defaults file {path}: {exc.strerror}") from exc


def _parse_yaml(raw: bytes, path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"defaults file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"defaults file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except RecursionError as exc:
        raise ConfigError(f"defaults file {path} is nested too deeply to be a defaults file") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"defaults file {path} must hold a mapping at its top level")
    return data


def merge_dicts(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``base`` recursively, in place; ``update`` wins. Returns ``base``."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_dicts(base[key], value)
        else:
            base[key] = value
    return base


def load_defaults() -> dict[str, Any]:
    """Return the merged defaults as plain nested dicts (a fresh copy each call).

    Raises
    ------
    ConfigError
        A file cannot be read, is not YAML, or holds a value :func:`check_defaults` refuses.
    """
    package = package_defaults_path()
    user = user_defaults_path()
    key = (_read_bytes(package), str(user) if user else None, _read_bytes(user) if user else None)
    cached = _cache.get(key)
    if cached is None:
        cached = _read_cache(key)
        if cached is None:
            cached = _parse_yaml(key[0], package)
            if user is not None and key[2] is not None:
                merge_dicts(cached, _parse_yaml(key[2], user))
                check_defaults(cached, user)
            _write_cache(key, cached)
        _cache.clear()
        _cache[key] = cached
    return copy.deepcopy(cached)


def defaults_cache_path() -> str | None:
    """The file keeping the parsed defaults between runs (``None``: ``PLAMS_DEFAULTS_CACHE=off``)."""
    env = os.environ.get("PLAMS_DEFAULTS_CACHE")
    if env:
        return None if env.strip().lower() in ("off", "0", "false", "no", "none") else os.path.expanduser(env)
    from platformdirs import user_cache_dir

    return os.path.join(user_cache_dir("plams"), "defaults.cache")


def _cache_tag() -> tuple[int, str, tuple[int, int]]:
    return _CACHE_FORMAT, __file__, sys.version_info[:2]


def _read_cache(key: tuple[bytes, str | None, bytes | None]) -> dict[str, Any] | None:
    """The merged defaults the cache file holds for exactly these files, else ``None``."""
    path = defaults_cache_path()
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            tag, stored_key, data = marshal.loads(handle.read())
    except Exception:  # noqa: BLE001 - none yet, or not ours (any garbage): parse
        return None
    if tag != _cache_tag() or stored_key != key or not isinstance(data, dict):
        return None
    return data


def _write_cache(key: tuple[bytes, str | None, bytes | None], data: dict[str, Any]) -> None:
    path = defaults_cache_path()
    if path is None:
        return
    try:
        blob = marshal.dumps((_cache_tag(), key, data))
    except ValueError:  # a value marshal cannot keep (a YAML date): parse every time
        return
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        atomic_write(path, blob, fsync=False)
    except OSError:  # a read-only home only costs the next start the parsing
        pass


_SECTIONS = ("jobmanager", "job", "log", "gridrunner", "jobcache", "daskrunner")
_HASHING = ("input", "runscript", "input+runscript", None)


def check_defaults(data: dict[str, Any], source: Path) -> None:
    """Refuse values of the known keys that would only fail later, job after job.

    Raises
    ------
    ConfigError
        Naming the key, the bad value, what is allowed and the file.
    """

    def bad(key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{key} = {value!r} in {source}: {allowed}")

    for section in _SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise bad(section, data[section], "must be a mapping of settings")
    hashing = data.get("jobmanager", {}).get("hashing", "input+runscript")
    if hashing not in _HASHING:
        raise bad("jobmanager.hashing", hashing, "must be input, runscript, input+runscript or null")
    counter = data.get("jobmanager", {}).get("counter_len", 3)
    if isinstance(counter, bool) or not isinstance(counter, int) or not 1 <= counter <= 9:
        raise bad("jobmanager.counter_len", counter, "must be a whole number from 1 to 9")
    for key in ("file", "stdout"):
        level = data.get("log", {}).get(key, 3)
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 7:
            raise bad(f"log.{key}", level, "must be a level from 0 to 7")
    enabled = data.get("jobcache", {}).get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("jobcache.enabled", enabled, "must be true or false")
    cache_path = data.get("jobcache", {}).get("path")
    if cache_path is not None and (not isinstance(cache_path, str) or not cache_path):
        raise bad("jobcache.path", cache_path, "must be a file path or null")
    sleepstep = data.get("sleepstep", 5)
    if isinstance(sleepstep, bool) or not isinstance(sleepstep, (int, float)) or sleepstep <= 0:
        raise bad("sleepstep", sleepstep, "must be a positive number of seconds")


def _yaml_problem(exc: Exception) -> str:
    """One line saying what is wrong with a YAML file and where (PyYAML's text spans lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())
