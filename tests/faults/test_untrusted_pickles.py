"""No ``plams`` command executes code from a ``.dill`` file unless asked to load it (``-l``, ``-r``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from . import report
from .conftest import Call, tracebacks

FAULT = "untrusted .dill files next to every command"


class _Evil:
    """Unpickling this creates the file ``marker``: code run from a ``.dill``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


COMMANDS = [
    (["s.plms"], 0), (["-f", "plams.1", "s.plms"], 0), (["-p", "plams.1", "s.plms"], 0), (["--help"], 0),
    (["grid", "list"], 0), (["grid", "show", "slurm"], 0), (["workspace", "find", "-w", "ws"], 0),
    (["workspace", "show", "-w", "ws", "0" * 32], 2), (["workspace", "check", "-w", "ws"], 0),
    (["workspace", "init", "plams.1"], 0),
]


@pytest.mark.parametrize(("args", "status"), COMMANDS, ids=[" ".join(args) for args, _ in COMMANDS])
def test_no_command_unpickles_unasked(request: pytest.FixtureRequest, tmp_path: Path, plams_env: Call,
                                      args: list[str], status: int) -> None:
    from plams_cli.workspace import Workspace

    marker = tmp_path / "code-ran"
    evil = pickle.dumps(_Evil(marker))
    (tmp_path / "s.plms").write_text("ShellJob(name='x', runscript='true').run()\n")
    for folder in ("plams.1/x", "plams.1/evil", "ws/workspace/evil"):
        (tmp_path / folder).mkdir(parents=True)
    for path in ("evil.dill", "plams.1/x/x.dill", "plams.1/evil/evil.dill", "ws/workspace/evil/evil.dill"):
        (tmp_path / path).write_bytes(evil)
    (tmp_path / "plams.1" / "logfile").write_text("")
    (tmp_path / "plams.1" / ".plams-run").write_text('{"folder": "plams.1"}')
    Workspace(tmp_path / "ws", create=True)
    result = plams_env(*args, cwd=tmp_path)
    report.record(FAULT, 1, tracebacks=tracebacks(result.stderr), leftovers=int(marker.exists()),
                  part=request.node.callspec.id,
                  note="a .dill that runs code when read, in the current folder, an old working folder and a "
                       "workspace: no command but -l/-r reads it (leftovers: the code ran)")
    assert result.returncode == status, result.stderr
    assert not marker.exists()


def test_load_does_run_the_code_so_it_is_the_users_choice(tmp_path: Path, plams_env: Call) -> None:
    """The control: the same file given to -l runs its code, which is why -l and load() are documented so."""
    marker = tmp_path / "code-ran"
    (tmp_path / "old" / "evil").mkdir(parents=True)
    (tmp_path / "old" / "evil" / "evil.dill").write_bytes(pickle.dumps(_Evil(marker)))
    (tmp_path / "s.plms").write_text("x = 1\n")
    plams_env("-q", "-l", "old", "s.plms", cwd=tmp_path)
    assert marker.exists()
