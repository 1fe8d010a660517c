"""What a ``DaskRunner`` is asked for: the ``daskrunner`` branch of the YAML defaults, then its arguments.

Keys of the branch (``daskrunner:`` in ``plams_defaults.yaml`` or the user's file); the
runner's keyword arguments win key by key:

``cluster``
    ``local`` (``distributed.LocalCluster``: workers are threads of this process, each
    runscript a process of its own), ``slurm``,
    ``pbs``, ``sge`` (``dask_jobqueue``'s ``SLURMCluster``, ``PBSCluster``,
    ``SGECluster``: each worker is a batch job) or ``auto`` (the queueing system
    ``plams grid detect`` finds).
``jobs``
    Worker batch jobs (``local``: workers) started with the first job.
``adaptive``
    ``{minimum: 0, maximum: 10}`` scales the workers with the load instead of ``jobs``.
``cores``, ``processes``, ``memory``, ``walltime``, ``queue``, ``account``, ``job_extra_directives``, ``interface``, …
    Passed to the cluster class as they are (``None`` values are left out): one batch job
    has ``cores`` cores, shared by its ``processes`` worker processes (default 1: one
    worker with ``cores`` threads). ``local`` takes
    ``cores`` (threads per worker) and ``memory`` and ignores the batch keys.
``retries``
    How often a job whose worker was lost mid-job is run again (default 0: it crashes).
``connect_timeout_s``
    How long the scheduler may take to answer; then the jobs crash with an error.

Each worker advertises the Dask resource ``cores`` (its share of the batch job's
cores); a job takes ``cores`` of it (default 1, ``job.run(jobrunner=dr, cores=4)``), so
a 4-core job lands only on a worker with 4 cores free.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plams_cli.defaults import load_defaults
from plams_cli.errors import ConfigError

__all__ = ["DaskSettings", "CLUSTERS", "RUNNER_KEYS", "dask_defaults"]

#: the cluster kinds, and the dask_jobqueue class of each batch one
CLUSTERS = {"local": None, "slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "auto": None}
#: keys of the branch the runner itself reads; every other key goes to the cluster class
RUNNER_KEYS = frozenset({"cluster", "jobs", "adaptive", "retries", "connect_timeout_s", "scheduler_address"})
#: keys of the branch a LocalCluster understands (the rest are batch-job settings)
LOCAL_KEYS = frozenset({"cores", "memory"})


def dask_defaults() -> dict[str, Any]:
    """The ``daskrunner`` branch of the YAML defaults (packaged, then the user's)."""
    branch = load_defaults().get("daskrunner") or {}
    if not isinstance(branch, dict):
        raise ConfigError("the 'daskrunner' section of the defaults must be a mapping")
    return branch


def _positive_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"daskrunner {name} = {value!r}: must be a whole number, at least {minimum}")
    return value


@dataclass(frozen=True)
class DaskSettings:
    """The resolved settings of one runner (see the module docs for the keys)."""

    cluster: str
    jobs: int
    adaptive: dict[str, int] | None
    retries: int
    connect_timeout_s: float
    scheduler_address: str | None
    #: keyword arguments of the cluster class
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def resolve(cls, overrides: Mapping[str, Any]) -> DaskSettings:
        """The defaults' branch with ``overrides`` (the runner's arguments, ``None`` meaning "not given").

        Raises
        ------
        ConfigError
            An unknown cluster kind, or a count or time that is not one.
        """
        merged = dict(dask_defaults())
        merged.update({key: value for key, value in overrides.items() if value is not None})
        kind = str(merged.get("cluster") or "local")
        if kind not in CLUSTERS:
            close = difflib.get_close_matches(kind, list(CLUSTERS))
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"daskrunner cluster = {kind!r}: must be one of {', '.join(CLUSTERS)}{hint}")
        adaptive = merged.get("adaptive")
        if adaptive is not None:
            if not isinstance(adaptive, Mapping) or not set(adaptive) <= {"minimum", "maximum"}:
                raise ConfigError(f"daskrunner adaptive = {adaptive!r}: must be a mapping of minimum and maximum")
            adaptive = {key: _positive_int(f"adaptive.{key}", value) for key, value in adaptive.items()}
        timeout = merged.get("connect_timeout_s", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"daskrunner connect_timeout_s = {timeout!r}: must be a positive number of seconds")
        address = merged.get("scheduler_address")
        return cls(
            cluster=kind,
            jobs=_positive_int("jobs", merged.get("jobs", 1)),
            adaptive=adaptive,
            retries=_positive_int("retries", merged.get("retries", 0)),
            connect_timeout_s=float(timeout),
            scheduler_address=str(address) if address else None,
            cluster_kwargs={key: value for key, value in merged.items()
                            if key not in RUNNER_KEYS and value is not None},
        )

    @property
    def worker_cores(self) -> int:
        """Cores of one worker process: the Dask resource ``cores`` it advertises."""
        cores = self.cluster_kwargs.get("cores", 1)
        processes = self.cluster_kwargs.get("processes", 1) if self.cluster != "local" else 1
        return max(1, int(cores) // max(1, int(processes)))
