"""Grid Engine's differences (SGE, Son of Grid Engine, OGS, Univa/Altair GE).

Only the parsers live here; the commands are in the ``gridrunner.sge`` branch of the
YAML defaults (``qsub -terse``, ``qstat``, ``qdel IDS``). ``qstat`` cannot be asked about
chosen ids in table form, so the check lists the user's jobs and looks for ours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from plams_cli.errors import QueueQueryError
from plams_cli.runners.grid import Accounting, CommandResult, QueueState, run_command

__all__ = ["getid", "running", "accounting"]

_ID = re.compile(r"^\s*(\d+)(?:\.\S+)?\s*$")
_SUBMITTED = re.compile(r"Your job(?:-array)? (\d+)")


def getid(stdout: str, stderr: str = "") -> str | None:
    """The job id printed by ``qsub -terse`` (``"123"``, arrays ``"123.1-10:1"``) or plain ``qsub``."""
    for line in stdout.splitlines():
        match = _ID.match(line) or _SUBMITTED.search(line)
        if match:
            return match.group(1)
    return None


def running(result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
    """Parse ``qstat`` (``job-ID prior name user state submit/start at queue slots``).

    Grid Engine drops a job from ``qstat`` as soon as it ends; every listed job is active
    (``qw``, ``r``, ``t``, ``Eqw``, ``hqw`` …).

    Raises
    ------
    QueueQueryError
        qstat failed.
    """
    if not result.ok:
        raise QueueQueryError(f"queue query failed: {result.describe()}")
    wanted = set(ids)
    states: dict[str, QueueState] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] in wanted:
            states[parts[0]] = QueueState(parts[4], False)
    return states


_FIELD = re.compile(r"^(\w+)\s+(.*?)\s*$", re.MULTILINE)


def parse_qacct(text: str) -> Accounting | None:
    """Parse ``qacct -j ID``: ``failed`` (0, or a code and words) and ``exit_status``."""
    fields = dict(_FIELD.findall(text))
    if "exit_status" not in fields:
        return None
    status = fields["exit_status"].split()[0]
    exit_code = int(status) if status.isdigit() else None
    failed = fields.get("failed", "0").strip()
    killed = failed != "0" or (exit_code is not None and exit_code > 128)
    state = "FAILED" if failed != "0" else "EXITED"
    return Accounting(
        state=state, exit_code=exit_code, reason="" if failed == "0" else f"failed {failed}",
        killed=killed, source="qacct",
    )


def accounting(job_id: str, timeout_s: float = 30.0) -> Accounting | None:
    """How job ``job_id`` ended, from ``qacct -j`` (flushed every ``flush_time``)."""
    result = run_command(["qacct", "-j", job_id], timeout_s)
    return parse_qacct(result.stdout) if result.ok else None
