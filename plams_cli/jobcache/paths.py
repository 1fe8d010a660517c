"""Where the job cache lives, and which host names mean this machine."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["resolve_cache_path", "is_local_host", "local_hostname", "ENV_VAR", "OFF"]

#: the environment variable naming the cache file (or ``off``)
ENV_VAR = "PLAMS_JOBCACHE"
#: the value that turns the cache off
OFF = "off"
_FILE_NAME = "jobcache.sqlite"


def resolve_cache_path(option: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The job cache file: ``option`` (``--cache PATH``), else ``$PLAMS_JOBCACHE``, else
    ``jobcache.sqlite`` in the user data folder of platformdirs.

    Returns ``None`` when the value chosen is ``off``: nothing is recorded then. ``~``
    and environment variables in the path are expanded; the result is absolute.
    """
    value = option if option else env.get(ENV_VAR) or None
    if value is None:
        from platformdirs import user_data_dir

        return os.path.join(user_data_dir("plams-cli", appauthor=False), _FILE_NAME)
    if value.strip().lower() == OFF:
        return None
    return os.path.abspath(os.path.expandvars(os.path.expanduser(value)))


def local_hostname() -> str:
    """This machine's name, as runs record it (``socket.gethostname()``)."""
    return socket.gethostname()


def is_local_host(hostname: str) -> bool:
    """Whether ``hostname`` names this machine: ``localhost`` (job_manager's name) or
    this machine's host name."""
    return hostname == "localhost" or hostname == socket.gethostname()
