"""The scheduler back-end contract: :class:`Backend`, what it answers, and the registry.

A back-end holds what differs between queueing systems and is code, not settings:
reading the job id a submit command printed, reading a queue listing, asking the
accounting how a job ended, and probing whether its scheduler is installed here. The
commands themselves (``sbatch --parsable``, ``squeue …``) are data in the grid's
settings branch (see :mod:`._config`), which names the back-end's parsers
(``getid: slurm``).

Each back-end module (:mod:`.slurm`, :mod:`.pbs`, :mod:`.sge`) registers one instance
with :func:`register`; detection (:mod:`._detect`) loops over :func:`registered` in
order of :attr:`Backend.preference`.
"""

from __future__ import annotations

import abc
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from plams_cli.runners.grid._command import CommandResult, run_command

__all__ = ["QueueState", "Accounting", "Candidate", "Probe", "Backend", "register", "registered",
           "PROBE_TIMEOUT_S"]

#: seconds one detection probe may take; a hung command is not retried
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class QueueState:
    """The state of one job as a queue listing shows it.

    ``state`` is the scheduler's code (``PD``, ``R``, ``CD`` …); ``finished`` is ``True``
    when the job has left the running states for good.
    """

    state: str
    finished: bool


@dataclass(frozen=True)
class Accounting:
    """How a job ended, as the scheduler's accounting tells it.

    Parameters
    ----------
    state
        The final state (``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TIMEOUT`` …).
    exit_code
        The exit code the scheduler recorded, when it did.
    reason
        Extra words (who cancelled, the scheduler's reason), possibly empty.
    killed
        ``True`` when the scheduler stopped the job before its script ended (so no
        exit-code file is to be expected); ``False`` when it ran to its end; ``None``
        when the state does not say.
    source
        The command that told (``sacct``, ``scontrol``, ``qstat -f`` …).
    active
        ``True`` when the scheduler says the job is not over (pending, running …): a
        queue listing that did not show it was wrong, and the job is waited for again.
    """

    state: str
    exit_code: int | None = None
    reason: str = ""
    killed: bool | None = None
    source: str = ""
    active: bool = False

    def describe(self) -> str:
        """Human words, e.g. ``state CANCELLED by 0, exit code 0:15 (from sacct)``."""
        words = f"state {self.state}"
        if self.reason:
            words += f" ({self.reason})"
        if self.exit_code is not None:
            words += f", exit code {self.exit_code}"
        if self.source:
            words += f" (from {self.source})"
        return words


@dataclass
class Candidate:
    """One queueing system considered: what was found, and why it was (not) chosen."""

    name: str
    commands: dict[str, str | None] = field(default_factory=dict)
    found: bool = False
    version: str | None = None
    chosen: bool = False
    reason: str = ""


class Probe:
    """What the back-ends' probes share in one detection: the search path and the answers.

    Each command runs at most once per detection (PBS and Grid Engine both ask the same
    ``qstat``), without retries.

    Parameters
    ----------
    path
        The search path for commands (``None``: ``$PATH``).
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._answers: dict[tuple[str, ...], CommandResult] = {}

    def which(self, names: Sequence[str]) -> dict[str, str | None]:
        """Program name -> its path on the search path, or ``None``."""
        return {name: shutil.which(name, path=self.path) for name in names}

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv`` (once per detection; later calls get the same answer)."""
        key = tuple(argv)
        if key not in self._answers:
            self._answers[key] = run_command(key, PROBE_TIMEOUT_S)
        return self._answers[key]


class Backend(abc.ABC):
    """What differs between queueing systems, as code.

    Subclasses set :attr:`name` (the grid name their parsers are known by in the settings,
    ``getid: slurm``) and implement the abstract methods; one instance is registered with
    :func:`register`.
    """

    #: the name settings use for this back-end's parsers, and detection reports
    name: ClassVar[str]
    #: detection's order: the lowest found wins (SLURM 10 beats a PBS-compatible qsub, 20)
    preference: ClassVar[int] = 100

    @abc.abstractmethod
    def getid(self, stdout: str, stderr: str = "") -> str | None:
        """The job id in what the submit command printed, or ``None`` when there is none."""

    @abc.abstractmethod
    def running(self, result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
        """Parse the queue query ``result`` about ``ids``: job id -> state, for the jobs it lists.

        Raises
        ------
        QueueQueryError
            The query failed: the states are unknown (not the same as finished).
        """

    @abc.abstractmethod
    def accounting(self, job_id: str, timeout_s: float = 30.0) -> Accounting | None:
        """How job ``job_id`` ended (or that it is not over); ``None`` when nobody knows."""

    @abc.abstractmethod
    def probe(self, probe: Probe) -> Candidate:
        """Whether this scheduler is installed here, with its version and the reason."""


_B = TypeVar("_B", bound=Backend)
_REGISTRY: dict[str, Backend] = {}


def register(backend: _B) -> _B:
    """Add ``backend`` to the back-ends detection considers (replacing one of the same name)."""
    _REGISTRY[backend.name] = backend
    return backend


def registered() -> list[Backend]:
    """The registered back-ends, in order of preference (the built-in ones are always among them)."""
    import plams_cli.runners.grid._detect  # noqa: F401 - imports (and so registers) the built-in back-ends

    return sorted(_REGISTRY.values(), key=lambda backend: (backend.preference, backend.name))
