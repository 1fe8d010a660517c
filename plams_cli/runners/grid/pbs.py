"""PBS's differences (Torque, PBS Pro / OpenPBS, SLURM's Torque wrappers): :class:`PbsBackend`.

Only the parsers and the probe live here; the commands are in the ``gridrunner.pbs``
branch of the YAML defaults (``qsub``, ``qstat IDS``, ``qdel IDS``). The settings name
the parsers ``pbs``: the module-level ``getid``, ``running`` and ``accounting`` are the
registered back-end's methods.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Sequence

from plams_cli.errors import QueueQueryError
from plams_cli.runners.grid import slurm
from plams_cli.runners.grid._backend import Accounting, Backend, Candidate, Probe, QueueState, register
from plams_cli.runners.grid._command import CommandResult, run_command
from plams_cli.runners.grid._qsub import classify_qsub

__all__ = ["PbsBackend", "BACKEND", "getid", "running", "accounting", "parse_qstat_full", "short_id",
           "ACTIVE_STATES", "FINISHED_STATES"]

#: C: completed (Torque keeps it for keep_completed seconds), F: finished (PBS Pro -x),
#: X: finished subjob
FINISHED_STATES = frozenset({"C", "F", "X"})
#: qstat's job_state of jobs that are not over: queued, running, held, waiting, in
#: transit, exiting, begun (array), suspended, moved
ACTIVE_STATES = frozenset({"Q", "R", "H", "W", "T", "E", "B", "S", "U", "M"})
_ID = re.compile(r"^\s*(\d+(?:\[\d*\])?(?:\.[\w.-]+)?)\s*$")
#: qstat's words for an id it does not know (any more)
_GONE = ("Unknown Job Id", "Job has finished", "job has finished")


def short_id(job_id: str) -> str:
    """``"123.server.example.org"`` -> ``"123"``: qstat may cut long ids in its columns."""
    return job_id.split(".", 1)[0]


_FIELD = re.compile(r"^\s*([\w.]+)\s*=\s*(.*?)\s*$", re.MULTILINE)


def parse_qstat_full(text: str) -> Accounting | None:
    """Parse ``qstat -f ID``: ``job_state``, ``exit_status`` / ``Exit_status``, ``comment``."""
    fields = {k.lower(): v for k, v in _FIELD.findall(text)}
    state = fields.get("job_state")
    if not state:
        return None
    status = fields.get("exit_status", "")
    exit_code = int(status) if status.lstrip("-").isdigit() else None
    killed: bool | None = None
    if exit_code is not None:
        # Torque/PBS Pro: negative = the job never ran; > 256 = killed by signal (code-256)
        killed = exit_code < 0 or exit_code > 256
    return Accounting(
        state=state, exit_code=exit_code, reason=fields.get("comment", ""),
        killed=killed, source="qstat -f", active=state in ACTIVE_STATES,
    )


class PbsBackend(Backend):
    """The PBS family: ``qsub`` ids, ``qstat`` tables, ``qstat -f`` accounting."""

    name = "pbs"
    preference = 20

    def getid(self, stdout: str, stderr: str = "") -> str | None:
        """The job id printed by ``qsub``: ``"123"`` or ``"123.server"``."""
        for line in stdout.splitlines():
            match = _ID.match(line)
            if match:
                return match.group(1)
        return None

    def running(self, result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
        """Parse ``qstat ID ID …`` (the default table: ``Job id  Name  User  Time Use S Queue``).

        Torque lists completed jobs as ``C`` for a while; PBS Pro says ``Job has finished``;
        an unknown id makes qstat exit non-zero (Torque: 153) while listing the others.

        Raises
        ------
        QueueQueryError
            qstat failed for another reason (server down, timeout …).
        """
        if not result.ok:
            known_failure = result.returncode is not None and (
                result.returncode == 153 or any(g in result.stderr for g in _GONE)
            )
            if not known_failure:
                raise QueueQueryError(f"queue query failed: {result.describe()}")
        wanted = {short_id(i): i for i in ids}
        states: dict[str, QueueState] = {}
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[0].startswith(("Job", "---")):
                continue
            key = short_id(parts[0].rstrip("*"))
            if key in wanted:
                code = parts[-2]
                states[wanted[key]] = QueueState(code, code in FINISHED_STATES)
        return states

    def accounting(self, job_id: str, timeout_s: float = 30.0) -> Accounting | None:
        """How job ``job_id`` ended, from ``qstat -f`` (PBS Pro also needs ``-x``).

        SLURM's Torque wrappers answer ``qstat -f`` with ``job_state = C`` and nothing on how
        the job ended; when that is all there is and SLURM's ``scontrol`` is on the PATH, the
        wrappers' SLURM is asked (its state says CANCELLED, TIMEOUT …).
        """
        answer = None
        for argv in (["qstat", "-f", job_id], ["qstat", "-x", "-f", job_id]):
            result = run_command(argv, timeout_s)
            if result.ok:
                answer = parse_qstat_full(result.stdout)
                if answer is not None:
                    break
        if (answer is None or (answer.exit_code is None and not answer.reason)) and shutil.which("scontrol"):
            under = slurm.accounting(short_id(job_id), timeout_s)
            if under is not None:
                return dataclasses.replace(under, source=f"{under.source}, SLURM under the PBS wrappers")
        return answer

    def probe(self, probe: Probe) -> Candidate:
        """The PBS family is here when ``qsub`` is SLURM's PBS wrapper or ``qstat --version`` answers like PBS."""
        qsub = classify_qsub(probe)
        cand = Candidate(self.name, dict(qsub.commands))
        if qsub.kind in ("slurm-wrapper", "pbs"):
            cand.found, cand.version, cand.reason = True, qsub.version, qsub.evidence
        elif qsub.kind == "missing":
            cand.reason = "qsub/qstat not found on PATH"
        elif qsub.kind == "sge":
            cand.reason = "qstat answers like Grid Engine, not PBS"
        else:
            cand.reason = qsub.evidence
        return cand


#: the registered PBS back-end
BACKEND = register(PbsBackend())
#: the parsers the settings name ``pbs`` (``commands.getid: pbs`` …)
getid = BACKEND.getid
running = BACKEND.running
accounting = BACKEND.accounting
