"""Making the Dask cluster and client a ``DaskRunner`` uses: the only module that imports Dask.

It is imported when a runner starts its workers (the first job), never with
``plams_cli``: a run that uses no ``DaskRunner`` pays nothing for Dask.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import importlib
import importlib.util
import inspect
import signal
import sys
import threading
import warnings
from typing import Any

from plams_cli.errors import ConfigError, DaskNotInstalledError, SchedulerConnectionError
from plams_cli.runners.dask._settings import CLUSTERS, LOCAL_KEYS, DaskSettings

__all__ = ["require_dask", "dask_installed", "make_cluster", "connect", "worker_plugin", "PACKAGES"]

#: the packages of the extra ``plams-cli[dask]``
PACKAGES = ("dask", "distributed", "dask_jobqueue")
#: what a batch cluster's workers preload (its ``dask_setup``)
WORKER_MODULE = "plams_cli.runners.dask._worker"
#: the Dask setting (an environment variable of the worker batch jobs) of how a nanny starts its worker
FORK_VARIABLE = "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD"


def dask_installed() -> dict[str, str | None]:
    """Each package of the extra and its version (``None`` when missing), without importing Dask."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        try:
            versions[name] = metadata.version(name.replace("_", "-")) if found else None
        except metadata.PackageNotFoundError:
            versions[name] = "unknown" if found else None
    return versions


def require_dask(cluster: str) -> None:
    """Raise :class:`DaskNotInstalledError` unless the packages ``cluster`` needs are installed."""
    needed = PACKAGES if cluster != "local" else PACKAGES[:2]
    versions = dask_installed()
    missing = [name for name in needed if versions[name] is None]
    if missing:
        raise DaskNotInstalledError(
            f"DaskRunner needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            "install the extra with: pip install 'plams-cli[dask]'")


_import_lock = threading.Lock()


def _import_jobqueue() -> Any:
    """``dask_jobqueue``, imported without the SIGINT handler its ``runner`` module sets at import.

    That handler (``sys.exit()``) would replace the run's own (Ctrl-C cancels the jobs), and
    in any thread but the main one the import fails outright; so ``signal.signal`` does
    nothing for the length of the import.
    """
    with _import_lock:
        module = sys.modules.get("dask_jobqueue")
        if module is not None:
            return module
        real = signal.signal
        signal.signal = lambda *args, **kwargs: None
        try:
            return importlib.import_module("dask_jobqueue")
        finally:
            signal.signal = real


def _scheduler_options(settings: DaskSettings) -> dict[str, Any]:
    options = dict(settings.cluster_kwargs.get("scheduler_options") or {})
    options.setdefault("dashboard_address", ":0")  # a free port: two runs never fight over 8787
    return options


def make_cluster(settings: DaskSettings, kind: str) -> Any:
    """A started cluster of ``kind`` (``local`` or a batch one), with no workers yet.

    The scheduler counts a worker lost mid-task against ``settings.retries`` (Dask's
    ``allowed-failures``); workers advertise the resource ``cores``.

    Raises
    ------
    ConfigError
        The cluster class refused a setting (the message names it).
    """
    import dask
    import distributed  # noqa: F401 - its config defaults must be loaded before config.set below
    # (on leaving, config.set puts back what was there, and would drop them)

    if kind != "local":
        _import_jobqueue()

    kwargs = dict(settings.cluster_kwargs)
    cores = settings.worker_cores
    with dask.config.set({"distributed.scheduler.allowed-failures": settings.retries}):
        try:
            return _build(kind, kwargs, cores, settings)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:  # an unknown key, a value Dask cannot parse
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            refused = f"daskrunner: the {kind} cluster refused its settings: {first}"
    # The half-made cluster goes now (its frames went with the exception), without the
    # "unclosed cluster" ResourceWarning its __del__ would print at some later moment.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    raise ConfigError(refused)


def _accepted(cls: Any) -> set[str]:
    """The keyword arguments a dask-jobqueue cluster class takes (its own and its job class's)."""
    names: set[str] = set()
    for owner in (*cls.__mro__, *cls.job_cls.__mro__):
        init = owner.__dict__.get("__init__")
        if init is None:
            continue
        with contextlib.suppress(TypeError, ValueError):
            names |= {p.name for p in inspect.signature(init).parameters.values()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
    return names


def _check_keys(kind: str, cls: Any, kwargs: dict[str, Any]) -> None:
    """Refuse a setting the cluster class does not take before making one (a half-made one lingers)."""
    accepted = _accepted(cls)
    for key in sorted(kwargs):
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted))
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"daskrunner: the {kind} cluster has no setting {key!r}{hint}; "
                              f"it takes: {', '.join(sorted(accepted))}")


def _build(kind: str, kwargs: dict[str, Any], cores: int, settings: DaskSettings) -> Any:
    if kind == "local":
        from distributed import LocalCluster

        local = {key: kwargs[key] for key in LOCAL_KEYS & set(kwargs)}
        # Workers in this process (the runscripts are processes anyway): worker processes
        # would be started by multiprocessing, which re-imports the script run as __main__.
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=0, threads_per_worker=cores, processes=False, resources={"cores": cores},
            memory_limit=local.get("memory", "auto"),
            dashboard_address=":0", worker_dashboard_address=None, silence_logs=40)
    cls = getattr(_import_jobqueue(), str(CLUSTERS[kind]))
    _check_keys(kind, cls, kwargs)
    kwargs["scheduler_options"] = _scheduler_options(settings)
    kwargs.setdefault("python", sys.executable)
    extra = list(kwargs.pop("worker_extra_args", None) or [])
    kwargs["worker_extra_args"] = [*extra, "--resources", f"cores={cores}", "--preload", WORKER_MODULE]
    # The nanny forks its worker process rather than spawn a fresh interpreter that imports
    # Dask again (about half a second of each worker's start); the preload gives the forked
    # worker back the signal handling a spawned one has (see _worker.dask_setup).
    kwargs["job_script_prologue"] = [f"export {FORK_VARIABLE}=fork",
                                     *(kwargs.get("job_script_prologue") or [])]
    # One worker process per batch job unless asked: dask-jobqueue would split a few cores
    # into one-thread processes, each advertising all of the batch job's cores.
    kwargs.setdefault("processes", 1)
    kwargs.setdefault("cores", 1)
    kwargs.setdefault("memory", "2GB")
    return cls(**kwargs)


def connect(address: Any, timeout_s: float) -> Any:
    """A ``distributed.Client`` of ``address`` (a cluster or a scheduler address).

    Raises
    ------
    SchedulerConnectionError
        The scheduler did not answer within ``timeout_s``.
    """
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        where = address if isinstance(address, str) else type(address).__name__
        raise SchedulerConnectionError(
            f"no answer from the Dask scheduler at {where} within {timeout_s:g} s ({exc})") from exc


def worker_plugin() -> Any:
    """A worker plugin that stops the worker's runscripts when the worker closes."""
    from distributed import WorkerPlugin

    class StopRunscripts(WorkerPlugin):
        """On a worker's close (the cluster closed, its batch job cancelled): no runscript lives on."""

        name = "plams-stop-runscripts"

        def teardown(self, worker: Any) -> None:
            from plams_cli.runners.dask._worker import stop_runscripts

            stop_runscripts(None, grace_s=1.0)

    return StopRunscripts()
