"""Start-up loads only what the command needs: checked on ``sys.modules`` of a fresh interpreter.

``plams --version`` must not load the job layer, and ``import plams_cli`` + ``init()`` +
``finish()`` neither the command line, the job cache, the YAML parser (once the defaults
are cached) nor the job classes. An eager import added back anywhere on these paths fails
here (the times themselves are ``bench/run.py --only startup``'s business).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import python_env

#: print what is loaded when the interpreter ends, however the statement ends (``--version`` exits)
_REPORT = ("import atexit, json, sys\n"
           "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n")

HEAVY = ("click", "rich", "yaml", "dill", "psutil", "sqlite3", "h5py", "numpy", "importlib.metadata", "difflib")
JOB_LAYER = ("plams_cli.core", "plams_cli.runners", "plams_cli.jobcache", "plams_cli.workspace", "plams_cli.defaults")


def _loaded(statement: str, cwd: Path, env: dict[str, str]) -> set[str]:
    run = subprocess.run([sys.executable, "-c", _REPORT + statement], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    line = next(line for line in run.stderr.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def _matching(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A child's environment with a defaults cache of its own, filled by one untimed start."""
    environment = python_env() | {"PLAMS_DEFAULTS_CACHE": str(tmp_path / "defaults.cache"),
                                  "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    subprocess.run([sys.executable, "-c", "import plams_cli; plams_cli.config"], cwd=tmp_path, env=environment,
                   check=True, timeout=60)
    assert (tmp_path / "defaults.cache").is_file()
    return environment


def test_plams_version_loads_neither_the_job_layer_nor_metadata(tmp_path: Path, env: dict[str, str]) -> None:
    statement = "from plams_cli.cli.main import main\nmain(['--version'])\n"
    loaded = _loaded(statement, tmp_path, env)
    assert "plams_cli.cli.main" in loaded and "click" in loaded
    assert _matching(loaded, tuple(n for n in HEAVY if n != "click") + JOB_LAYER) == []
    assert _matching(loaded, ("plams_cli.cli.run", "plams_cli.cli.jobs", "plams_cli.cli.grid",
                              "plams_cli.cli.workspace")) == []


def test_import_plams_cli_loads_nothing_but_the_package(tmp_path: Path, env: dict[str, str]) -> None:
    loaded = _loaded("import plams_cli\n", tmp_path, env)
    assert sorted(m for m in loaded if m.startswith("plams_cli")) == ["plams_cli"]
    assert _matching(loaded, HEAVY + ("logging", "subprocess", "pickle")) == []


def test_init_and_finish_load_only_the_run_machinery(tmp_path: Path, env: dict[str, str]) -> None:
    statement = "import plams_cli\nplams_cli.init(quiet=True)\nplams_cli.finish()\n"
    loaded = _loaded(statement, tmp_path, env)
    assert {"plams_cli.core.runtime", "plams_cli.core.jobmanager"} <= loaded
    assert _matching(loaded, HEAVY + ("plams_cli.cli", "plams_cli.jobcache", "plams_cli.workspace",
                                      "plams_cli.runners.grid", "plams_cli.runners.base", "hashlib", "socket",
                                      "dataclasses")) == []
    # the job classes and results load with the first job, not with the run
    assert _matching(loaded, ("plams_cli.core.jobs", "plams_cli.core.singlejob", "plams_cli.core.results",
                              "plams_cli.core.lifecycle")) == []


def test_a_run_without_jobs_writes_no_job_cache(tmp_path: Path, env: dict[str, str]) -> None:
    cache = tmp_path / "jobcache.sqlite"
    statement = "import plams_cli\nplams_cli.init(quiet=True)\nplams_cli.finish()\n"
    _loaded(statement, tmp_path, env | {"PLAMS_JOBCACHE": str(cache)})
    assert not cache.exists()
    _loaded("from plams_cli import *\ninit(quiet=True)\nShellJob(name='j', runscript='true').run()\nfinish()\n",
            tmp_path, env | {"PLAMS_JOBCACHE": str(cache)})
    assert cache.is_file()


def test_a_restart_off_a_terminal_loads_neither_rich_nor_the_grid_backends(tmp_path: Path, env: dict[str, str]) -> None:
    """``plams -r`` looks for grid jobs a killed run left (none here) and draws no progress off a terminal."""
    (tmp_path / "s.plms").write_text("ShellJob(name='j', runscript='true').run()\n")
    run = "from plams_cli.cli.main import main\nmain([{args}])\n"
    env = env | {"PLAMS_JOBCACHE": "off"}
    env.pop("FORCE_COLOR", None), env.pop("TTY_COMPATIBLE", None)
    _loaded(run.format(args="'-f', 'w', 's.plms'"), tmp_path, env)
    loaded = _loaded(run.format(args="'-r', '-f', 'w', 's.plms'"), tmp_path, env)
    assert {"plams_cli.cli.run", "plams_cli.runners.grid._records"} <= loaded
    # (GridRunner is in the scripts' namespace; what it needs to run is imported when one is made)
    assert _matching(loaded, ("rich", "plams_cli.runners.grid._detect", "plams_cli.runners.grid._config",
                              "plams_cli.runners.grid.slurm", "plams_cli.runners.grid.pbs")) == []
    # with FORCE_COLOR rich may take stderr for a terminal: then it is asked
    assert "rich.console" in _loaded(run.format(args="'-r', '-f', 'w', 's.plms'"), tmp_path, env | {"FORCE_COLOR": "1"})


def test_star_import_still_gives_every_public_name(tmp_path: Path, env: dict[str, str]) -> None:
    import plams_cli
    import plams_cli.core

    statement = ("from plams_cli import *\nimport plams_cli, plams_cli.core\n"
                 "assert all(getattr(plams_cli, n) is getattr(plams_cli.core, n) for n in plams_cli.core.__all__)\n"
                 "assert JobRunner is plams_cli.runners.local.JobRunner\n"
                 "assert SingleJob.__module__ == 'plams_cli.core.jobs'\n")
    loaded = _loaded(statement, tmp_path, env)
    assert _matching(loaded, ("click", "rich", "yaml", "plams_cli.cli")) == []
    assert set(plams_cli.core.__all__) <= set(plams_cli.__all__)
    assert set(dir(plams_cli.core)) >= set(plams_cli.core.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        plams_cli.core.nope  # noqa: B018
    code = "import plams_cli.core\nprint(plams_cli.core.lifecycle.__name__)\n"  # a submodule, never imported
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "plams_cli.core.lifecycle", out.stderr
