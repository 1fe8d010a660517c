"""The job cache is a leaf: it imports neither the command line, the core, click nor rich."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_jobcache_imports_no_cli_core_click_or_rich() -> None:
    code = ("import sys, plams_cli.jobcache, plams_cli.jobcache.inspect, plams_cli.jobcache.importing\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('plams_cli.cli', 'plams_cli.core', "
            "'click', 'rich', 'psutil', 'dill')))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
