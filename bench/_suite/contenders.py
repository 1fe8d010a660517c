"""The contenders: plams-cli, PLAMS's job layer (own venv), signac (workspace cases) and the floor."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLAMS_REQUIREMENT = "plams==2026.104"
NAMES = ("plams-cli", "plams", "signac", "floor")
LABELS = {"plams-cli": "plams-cli", "plams": "PLAMS", "signac": "signac", "floor": "floor"}


@dataclass(frozen=True)
class Contender:
    """One side of the comparison.

    Attributes
    ----------
    name : str
        Key used on the command line and in the JSON (``plams-cli``, ``plams``, ``signac``, ``floor``).
    python : str
        Interpreter its children run with.
    package : str
        Module its job-layer children import (``plams_cli``, ``scm.plams``), empty if none.
    launcher : tuple of str
        Its ``plams`` command (``plams``; PLAMS's is ``scm-plams``), empty if none.
    """

    name: str
    python: str
    package: str = ""
    launcher: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Column heading."""
        return LABELS[self.name]


def plams_cli() -> Contender:
    """plams-cli as installed beside the interpreter running the suite."""
    script = Path(sys.executable).with_name("plams")
    launcher = (str(script),) if script.exists() else (sys.executable, "-m", "plams_cli")
    return Contender("plams-cli", sys.executable, "plams_cli", launcher)


def plams_venv(bench_dir: Path) -> Contender:
    """PLAMS from PyPI in ``bench/.venv-plams``, made (and ``plams`` installed) when missing.

    Raises
    ------
    subprocess.CalledProcessError
        If the venv cannot be made or pip cannot install PLAMS.
    """
    venv = bench_dir / ".venv-plams"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import scm.plams, sys; sys.exit(scm.plams.__version__ != '2026.104')"]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        print(f"installing {PLAMS_REQUIREMENT} into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PLAMS_REQUIREMENT], check=True)
    return Contender("plams", str(python), "scm.plams", (str(venv / "bin" / "scm-plams"),))


def signac() -> Contender | None:
    """signac importable by this interpreter (a test extra), or None."""
    probe = subprocess.run([sys.executable, "-c", "import signac"], capture_output=True)
    return Contender("signac", sys.executable) if probe.returncode == 0 else None


def floor() -> Contender:
    """The minimal code doing the same work (``bench/_suite/floor.py``)."""
    return Contender("floor", sys.executable)


def version(contender: Contender) -> str:
    """Version string of what a contender runs."""
    code = {
        "plams-cli": "import importlib.metadata as m; print(m.version('plams-cli'))",
        "plams": "import scm.plams; print(scm.plams.__version__)",
        "signac": "import signac; print(signac.__version__)",
        "floor": "import platform; print('Python', platform.python_version())",
    }[contender.name]
    out = subprocess.run([contender.python, "-c", code], capture_output=True, text=True, env=clean_env())
    return out.stdout.strip() or "?"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of every child: ours, with bytecode caches allowed, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(extra)
    return env
