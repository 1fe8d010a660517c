"""Reading the YAML defaults: the file shipped with the package, then the user's own.

A leaf module (no other plams_cli import but the errors) so that the core's ``config``
and the runners' grid definitions read the same files the same way.

Order, later wins: ``plams_defaults.yaml`` shipped with the package, then the user file
named by ``$PLAMS_DEFAULTS`` or, without it, ``plams_defaults.yaml`` in the user config
folder (``platformdirs.user_config_dir("plams")``), when that file exists.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from plams_cli.errors import ConfigError

__all__ = ["package_defaults_path", "user_defaults_path", "load_defaults", "merge_dicts", "check_defaults"]

_FILENAME = "plams_defaults.yaml"
_cache: dict[tuple[str, float | None], dict[str, Any]] = {}


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


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=loader)
    except OSError as exc:
        raise ConfigError(f"cannot read defaults file {path}: {exc.strerror}") from exc
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
    """Return the merged defaults as plain nested dicts (a fresh copy each call)."""
    package = package_defaults_path()
    user = user_defaults_path()
    key = (str(user), user.stat().st_mtime if user else None)
    cached = _cache.get(key)
    if cached is None:
        cached = _read_yaml(package)
        if user is not None:
            merge_dicts(cached, _read_yaml(user))
            check_defaults(cached, user)
        _cache.clear()
        _cache[key] = cached
    return copy.deepcopy(cached)


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
