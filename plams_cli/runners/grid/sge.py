"""Grid Engine's differences (SGE, Son of Grid Engine, OGS, Univa/Altair GE): :class:`SgeBackend`.

Only the parsers and the probe live here; the commands are in the ``gridrunner.sge``
branch of the YAML defaults (``qsub -terse``, ``qstat``, ``qdel IDS``). ``qstat`` cannot
be asked about chosen ids in table form, so the check lists the user's jobs and looks for
ours. The settings name the parsers ``sge``: the module-level ``getid``, ``running`` and
``accounting`` are the registered back-end's methods.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from plams_cli.errors import QueueQueryError
from plams_cli.runners.grid._backend import Accounting, Backend, Candidate, Probe, QueueState, register
from plams_cli.runners.grid._command import CommandResult, run_command
from plams_cli.runners.grid._qsub import classify_qsub

__all__ = ["SgeBackend", "BACKEND", "getid", "running", "accounting", "parse_qacct"]

_ID = re.compile(r"^\s*(\d+)(?:\.\S+)?\s*$")
_SUBMITTED = re.compile(r"Your job(?:-array)? (\d+)")
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


class SgeBackend(Backend):
    """Grid Engine: ``qsub -terse`` ids, ``qstat`` listings, ``qacct`` accounting."""

    name = "sge"
    preference = 30

    def getid(self, stdout: str, stderr: str = "") -> str | None:
        """The job id printed by ``qsub -terse`` (``"123"``, arrays ``"123.1-10:1"``) or plain ``qsub``."""
        for line in stdout.splitlines():
            match = _ID.match(line) or _SUBMITTED.search(line)
            if match:
                return match.group(1)
        return None

    def running(self, result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
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

    def accounting(self, job_id: str, timeout_s: float = 30.0) -> Accounting | None:
        """How job ``job_id`` ended, from ``qacct -j`` (flushed every ``flush_time``)."""
        result = run_command(["qacct", "-j", job_id], timeout_s)
        return parse_qacct(result.stdout) if result.ok else None

    def probe(self, probe: Probe) -> Candidate:
        """Grid Engine is here when ``qstat -help`` names it (and ``qsub`` is not SLURM's PBS wrapper)."""
        qsub = classify_qsub(probe)
        cand = Candidate(self.name, dict(qsub.commands))
        if qsub.kind == "sge":
            cand.found, cand.version, cand.reason = True, qsub.version, qsub.evidence
        elif qsub.kind == "missing":
            cand.reason = "qsub/qstat not found on PATH"
        elif qsub.kind == "slurm-wrapper":
            cand.reason = "qsub is SLURM's PBS wrapper, not Grid Engine"
        elif qsub.kind == "pbs":
            cand.reason = "qstat answers like PBS, not Grid Engine"
        else:
            cand.reason = qsub.evidence
        return cand


#: the registered Grid Engine back-end
BACKEND = register(SgeBackend())
#: the parsers the settings name ``sge`` (``commands.getid: sge`` …)
getid = BACKEND.getid
running = BACKEND.running
accounting = BACKEND.accounting
