"""Running a scheduler command: :func:`run_command` and the :class:`CommandResult` it gives.

Every scheduler command (submit, queue query, accounting, cancel, detection probes) runs
through :func:`run_command`: no shell, output captured, a time limit, and never an
exception for a command that fails; the back-ends read the result.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CommandResult", "run_command"]


@dataclass(frozen=True)
class CommandResult:
    """What a scheduler command did: its arguments, exit status and output.

    ``returncode`` is ``None`` when the command could not be run or timed out; ``stderr``
    then says why.
    """

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """``True`` when the command ran and exited 0."""
        return self.returncode == 0

    def describe(self) -> str:
        """One line for error messages: the command, its status and what it printed."""
        status = "could not run" if self.returncode is None else f"exit {self.returncode}"
        text = " ".join((self.stderr.strip() or self.stdout.strip()).split())
        return f"{shlex.join(self.argv)} ({status}){': ' + text if text else ''}"


def run_command(
    argv: Sequence[str], timeout_s: float = 30.0, cwd: str | None = None
) -> CommandResult:
    """Run a scheduler command without a shell and capture its output.

    Never raises for a failing command: a missing program or a timeout gives
    ``returncode=None`` and the reason in ``stderr``.
    """
    args = tuple(str(a) for a in argv)
    try:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
            stdin=subprocess.DEVNULL, errors="replace",
        )
    except subprocess.TimeoutExpired:
        return CommandResult(args, None, "", f"timed out after {timeout_s:g} s")
    except OSError as exc:
        return CommandResult(args, None, "", exc.strerror or str(exc))
    return CommandResult(args, proc.returncode, proc.stdout, proc.stderr)
