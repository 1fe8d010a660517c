"""The workspace is a leaf room: it imports neither the job core, the runners, click, rich nor h5py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plams_cli

# The package __init__ of plams_cli is another room's; load only the workspace modules
# under an empty parent package, so this checks what the workspace itself pulls in.
CODE = f"""
import sys, types
pkg = types.ModuleType("plams_cli"); pkg.__path__ = [{str(Path(plams_cli.__file__).parent)!r}]
sys.modules["plams_cli"] = pkg
import plams_cli.workspace
bad = [m for m in ("click", "rich", "h5py", "numpy", "plams_cli.core", "plams_cli.runners", "filelock")
       if m in sys.modules]
print(",".join(bad))
"""


def test_workspace_imports_nothing_heavy() -> None:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
