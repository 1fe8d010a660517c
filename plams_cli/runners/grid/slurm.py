"""SLURM's differences for :class:`~plams_cli.runners.grid.GridRunner`: :class:`SlurmBackend`.

Only the parsers and the probe live here; the commands are in the ``gridrunner.slurm``
branch of the YAML defaults (``sbatch --parsable``, ``squeue -h -t all -o '%i %t' -j IDS``,
``scancel``). The settings name the parsers ``slurm``: the module-level ``getid``,
``running`` and ``accounting`` are the registered back-end's methods.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from plams_cli.errors import QueueQueryError
from plams_cli.runners.grid._backend import Accounting, Backend, Candidate, Probe, QueueState, register
from plams_cli.runners.grid._command import CommandResult, run_command

__all__ = ["SlurmBackend", "BACKEND", "getid", "running", "accounting", "parse_sacct", "parse_scontrol",
           "ACTIVE_STATES", "ACTIVE_STATE_NAMES", "KILLED_STATES"]

#: squeue's compact codes of jobs that are not over yet
ACTIVE_STATES = frozenset(
    {"PD", "R", "CG", "CF", "S", "ST", "SI", "SO", "RQ", "RF", "RH", "RS", "RD", "SE"}
)
#: long state names (sacct, scontrol) of jobs that are not over yet
ACTIVE_STATE_NAMES = frozenset(
    {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT",
     "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
)
#: final states in which SLURM ended the job before its script did
KILLED_STATES = frozenset(
    {"CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"}
)
_ID = re.compile(r"^\s*(\d+(?:_\d+)?)(?:;\S*)?\s*$")
_SLURM_VERSION = re.compile(r"^slurm(?:-wlm)?\s+(\S+)", re.IGNORECASE | re.MULTILINE)


class SlurmBackend(Backend):
    """SLURM: ``sbatch --parsable`` ids, ``squeue`` listings, ``sacct``/``scontrol`` accounting."""

    name = "slurm"
    preference = 10

    def getid(self, stdout: str, stderr: str = "") -> str | None:
        """The job id printed by ``sbatch --parsable`` (``"123"`` or ``"123;cluster"``).

        Lines that are not an id (warnings some sites print) are skipped.
        """
        for line in stdout.splitlines():
            match = _ID.match(line)
            if match:
                return match.group(1)
        return None

    def running(self, result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
        """Parse ``squeue -h -t all -o '%i %t' -j ID,ID,…``.

        Finished jobs stay listed (with their final state) for ``MinJobAge`` seconds; an id
        not listed has left the controller's memory. When *every* id asked about is gone,
        squeue fails with ``Invalid job id specified``: that is an answer, not an error.

        Raises
        ------
        QueueQueryError
            squeue failed in any other way (controller down, timeout, munge …).
        """
        if not result.ok:
            if result.returncode is not None and "Invalid job id" in result.stderr:
                return {}
            raise QueueQueryError(f"queue query failed: {result.describe()}")
        states: dict[str, QueueState] = {}
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            job_id, code = parts[0], parts[1]
            states[job_id] = QueueState(code, code not in ACTIVE_STATES)
        return states

    def accounting(self, job_id: str, timeout_s: float = 30.0) -> Accounting | None:
        """How job ``job_id`` ended: ``sacct`` where accounting works, else ``scontrol``.

        Returns ``None`` when neither knows the job (e.g. purged, no slurmdbd).
        """
        result = run_command(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,State,ExitCode", "-j", job_id], timeout_s
        )
        if result.ok:
            answer = parse_sacct(result.stdout, job_id)
            if answer is not None:
                return answer
        result = run_command(["scontrol", "show", "job", job_id], timeout_s)
        if result.ok:
            return parse_scontrol(result.stdout)
        return None

    def probe(self, probe: Probe) -> Candidate:
        """SLURM is here when ``sbatch --version`` answers like SLURM and squeue, scancel exist.

        ``sbatch --version`` prints ``slurm 23.02.6`` (Debian: ``slurm-wlm 22.05.8``).
        """
        cand = Candidate(self.name, probe.which(("sbatch", "squeue", "scancel")))
        sbatch = cand.commands["sbatch"]
        if sbatch is None:
            cand.reason = "sbatch not found on PATH"
            return cand
        result = probe.run([sbatch, "--version"])
        match = _SLURM_VERSION.search(result.stdout) if result.ok else None
        if match is None:
            cand.reason = f"sbatch found but 'sbatch --version' did not answer like SLURM: {result.describe()}"
            return cand
        cand.version = match.group(1)
        missing = [n for n, p in cand.commands.items() if p is None]
        if missing:
            cand.reason = f"sbatch works but {', '.join(missing)} not found on PATH"
            return cand
        cand.found = True
        cand.reason = f"sbatch --version: {result.stdout.strip()}"
        return cand


_SCONTROL_FIELD = re.compile(r"(\w+)=(\S*)")


def parse_scontrol(text: str) -> Accounting | None:
    """Parse ``scontrol show job ID``: JobState, Reason and ExitCode."""
    fields = dict(_SCONTROL_FIELD.findall(text))
    state = fields.get("JobState")
    if not state:
        return None
    return Accounting(
        state=state,
        exit_code=_exit_code(fields.get("ExitCode", "")),
        reason=_reason(fields.get("Reason", ""), fields.get("ExitCode", "")),
        killed=_killed(state),
        source="scontrol show job",
        active=state in ACTIVE_STATE_NAMES,
    )


def parse_sacct(text: str, job_id: str) -> Accounting | None:
    """Parse ``sacct -n -X -P -o JobID,State,ExitCode -j ID`` (``123|CANCELLED by 0|0:15``)."""
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0] == job_id:
            state, _, who = parts[1].partition(" ")
            reason = who.strip()
            signal = _reason("", parts[2])
            return Accounting(
                state=state,
                exit_code=_exit_code(parts[2]),
                reason=", ".join(r for r in (reason, signal) if r),
                killed=_killed(state),
                source="sacct",
                active=state in ACTIVE_STATE_NAMES,
            )
    return None


def _exit_code(text: str) -> int | None:
    code, _, _ = text.partition(":")
    return int(code) if code.isdigit() else None


def _reason(reason: str, exit_code: str) -> str:
    words = []
    if reason and reason != "None":
        words.append(reason)
    _, _, signal = exit_code.partition(":")
    if signal.isdigit() and int(signal):
        words.append(f"signal {signal}")
    return ", ".join(words)


def _killed(state: str) -> bool | None:
    if state in KILLED_STATES:
        return True
    if state in ("COMPLETED", "FAILED"):
        return False
    return None


#: the registered SLURM back-end
BACKEND = register(SlurmBackend())
#: the parsers the settings name ``slurm`` (``commands.getid: slurm`` …)
getid = BACKEND.getid
running = BACKEND.running
accounting = BACKEND.accounting
