"""Which ``qsub`` is this: the probe PBS and Grid Engine share (both install ``qsub``/``qstat``).

A ``qsub`` that is a script calling SLURM is SLURM's Torque wrapper (PBS syntax).
Otherwise ``qstat --version`` answers ``Version: 6.1.3`` (Torque) or
``pbs_version = 2022.1.1`` (PBS Pro / OpenPBS), and Grid Engine's ``qstat -help`` starts
with ``SGE 8.1.9`` / ``OGS/GE 2011.11`` / ``UGE 8.6.7`` / ``GE 6.2u5``. The commands run
through the detection's :class:`~._backend.Probe`, so each runs once for both back-ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from plams_cli.runners.grid._backend import Probe

__all__ = ["QsubKind", "classify_qsub", "QSUB_COMMANDS"]

#: the commands both families install
QSUB_COMMANDS = ("qsub", "qstat", "qdel")

_TORQUE_VERSION = re.compile(r"^\s*Version:\s*(\S+)", re.MULTILINE)
_PBSPRO_VERSION = re.compile(r"pbs_version\s*=\s*(\S+)")
_SGE_VERSION = re.compile(r"^\s*((?:SGE|OGS/GE|UGE|GE|Univa Grid Engine|Altair Grid Engine)\s+\S+)", re.MULTILINE)


@dataclass(frozen=True)
class QsubKind:
    """What the ``qsub``/``qstat`` on the search path are.

    ``kind`` is ``"missing"`` (not both on the path), ``"slurm-wrapper"``, ``"pbs"``,
    ``"sge"`` or ``"unknown"``; ``version`` and ``evidence`` (the words that told) go
    into the detection's reasons.
    """

    kind: Literal["missing", "slurm-wrapper", "pbs", "sge", "unknown"]
    commands: dict[str, str | None]
    version: str | None = None
    evidence: str = ""


def _is_slurm_wrapper(qsub: str) -> bool:
    """``True`` when ``qsub`` is a script that drives SLURM (slurm-wlm-torque's Perl wrapper)."""
    try:
        with open(qsub, "rb") as handle:
            head = handle.read(16384)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return False
    return b"sbatch" in head or b"Slurm" in head or b"slurm" in head


def classify_qsub(probe: Probe) -> QsubKind:
    """Tell the PBS family, Grid Engine and SLURM's PBS wrappers apart."""
    commands = probe.which(QSUB_COMMANDS)
    qsub, qstat = commands["qsub"], commands["qstat"]
    if qsub is None or qstat is None:
        return QsubKind("missing", commands)
    if _is_slurm_wrapper(qsub):
        return QsubKind("slurm-wrapper", commands, "SLURM Torque wrapper",
                        f"{qsub} is SLURM's PBS/Torque-compatible wrapper (PBS syntax)")
    result = probe.run([qstat, "--version"])
    text = result.stdout + "\n" + result.stderr
    match = _PBSPRO_VERSION.search(text) or _TORQUE_VERSION.search(text)
    if match:
        flavour = "PBS Pro/OpenPBS" if "pbs_version" in text else "Torque"
        return QsubKind("pbs", commands, match.group(1),
                        f"qstat --version answers like {flavour}: {match.group(0).strip()}")
    result = probe.run([qstat, "-help"])
    match = _SGE_VERSION.search(result.stdout + "\n" + result.stderr)
    if match:
        return QsubKind("sge", commands, match.group(1), f"qstat -help names {match.group(1)}")
    return QsubKind("unknown", commands,
                    evidence=f"qsub found, but qstat answers neither like PBS nor like Grid Engine ({qstat})")
