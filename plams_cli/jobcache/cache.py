"""``JobCache``: every recorded job, by host, in one SQLite file (see :mod:`.store`)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from plams_cli.errors import UserError
from plams_cli.jobcache.job import Job, compile_pattern
from plams_cli.jobcache.paths import is_local_host
from plams_cli.jobcache.server import JobServer
from plams_cli.jobcache.store import COLUMNS, DEFAULT_TIMEOUT_S, Store
from plams_cli.jobcache.table import plain_table, shown_columns
from plams_cli.jobcache.update import UpdateReport

__all__ = ["JobCache"]


class JobCache:
    """The job servers of one cache file, with job_manager's methods.

    Parameters
    ----------
    cache
        The cache file (``~`` and ``$VARS`` are expanded). Nothing is read or created
        until it is used.
    load
        Read the jobs at once (:meth:`load`).
    timeout_s
        How long a write waits for another writer before :class:`LockException`.

    Attributes
    ----------
    job_servers
        Host name -> :class:`JobServer`; ``localhost`` is always there.

    Notes
    -----
    Unlike job_manager, :meth:`load` takes no lock that :meth:`dump` releases: each is
    one transaction, and :meth:`dump` writes only what changed, row by row, the newer
    modification winning. Jobs recorded by others in between are kept.
    See ``plams jobs --help`` for the command line.
    """

    def __init__(self, cache: str, load: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.cache = os.path.normpath(os.path.abspath(os.path.expandvars(os.path.expanduser(cache))))
        self.store = Store(self.cache, timeout_s)
        self.job_servers: dict[str, JobServer] = {"localhost": JobServer()}
        if load:
            self.load()

    def __repr__(self) -> str:
        return f"JobCache({self.cache!r}, {sum(len(s.jobs) for s in self.job_servers.values())} jobs)"

    def close(self) -> None:
        """Close the database connection."""
        self.store.close()

    # --- the fast path of every run -------------------------------------------------
    def record(self, hostname: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or update jobs of ``hostname`` in one transaction (see :meth:`Store.record`).

        Raises
        ------
        UserError
            A row with an unknown key, no path or a bad status; nothing is written.
        LockException
            The cache stayed locked past the timeout.
        JobCacheError, CorruptedCacheError, CacheVersionError
            The cache cannot be written, is corrupt or foreign, or is newer.
        """
        self.store.record(hostname, rows)

    def record_values(self, values: Sequence[tuple[Any, ...]]) -> None:
        """Insert or update rows made already, the host name and the columns in order (see :meth:`Store.record_values`).

        Raises
        ------
        LockException
            The cache stayed locked past the timeout.
        JobCacheError, CorruptedCacheError, CacheVersionError
            The cache cannot be written, is corrupt or foreign, or is newer.
        """
        self.store.record_values(values)

    def lacking(self, hostname: str, status: str, paths: Sequence[str]) -> list[str]:
        """The paths among ``paths`` without a row of ``hostname`` in ``status`` (see :meth:`Store.lacking`).

        Raises
        ------
        JobCacheError, CorruptedCacheError, CacheVersionError
            The cache cannot be read, is corrupt or foreign, or is newer.
        """
        return self.store.lacking(hostname, status, paths)

    # --- job_manager's API -----------------------------------------------------------
    def load(self) -> None:
        """Read every job from the cache file (a missing file is an empty cache)."""
        servers: dict[str, JobServer] = {"localhost": JobServer()}
        for row in self.store.rows():
            hostname, values = row[0], dict(zip(COLUMNS, row[2:], strict=True))
            server = servers.get(hostname)
            if server is None:
                server = servers[hostname] = JobServer(hostname)
            path = values.pop("path")
            job = Job(values.pop("job_id"), values.pop("program"), path, **values)
            job._saved = (path, job.timestamp())
            server.jobs.append(job)
        self.job_servers = servers

    def dump(self) -> None:
        """Write the jobs added, changed or deleted since :meth:`load` in one transaction.

        A job changed by the user replaces its row when it is newer; a status found by
        :meth:`update` is written only if nobody changed the row meanwhile; a deleted job
        goes only if nobody changed it since it was read.
        """
        jobs = [(host, job) for host, server in self.job_servers.items() for job in server.jobs]
        deleted = [(host, path, mtime) for host, server in self.job_servers.items() for path, mtime in server._deleted]
        self.store.save(jobs, deleted)
        for _, job in jobs:
            job._saved = (job.path, job.timestamp())
            job._edited = job._auto = False
        for server in self.job_servers.values():
            server._deleted.clear()

    def add_server(self, hostname: str) -> JobServer:
        """Add an empty :class:`JobServer` for ``hostname`` and return it.

        Raises
        ------
        UserError
            There is one already.
        """
        if hostname in self.job_servers:
            raise UserError(f"cannot add host {hostname!r}: it is there already")
        server = self.job_servers[hostname] = JobServer(hostname)
        return server

    def server(self, hostname: str) -> JobServer:
        """The :class:`JobServer` of ``hostname``, added when missing."""
        return self.job_servers.get(hostname) or self.add_server(hostname)

    def update(self) -> UpdateReport:
        """Check the statuses of this machine's jobs (``localhost`` and this host's name).

        Changes stay in memory until :meth:`dump`. Queue queries that failed are listed
        in the report's ``failures``; those statuses are left as they were.
        """
        report = UpdateReport()
        for hostname, server in self.job_servers.items():
            if is_local_host(hostname):
                report.add(server.auto_update())
            elif server.jobs:
                report.skipped_hosts.append(hostname)
        return report

    auto_update = update  # job_manager's name

    def merge(self, other: JobCache, other_hostname: str) -> None:
        """Merge the jobs of ``other`` (loaded) into these (in memory; :meth:`dump` saves).

        ``other``'s own machine — its ``localhost`` and the host that created its file —
        becomes ``other_hostname``; a host known here is merged with
        :meth:`JobServer.merge`, a new host is copied.
        """
        created_on = other.store.meta("created_on")
        for hostname, theirs in other.job_servers.items():
            name = other_hostname if hostname == "localhost" or hostname == created_on else hostname
            self.server(name).merge(theirs)

    def select(self, hosts: Sequence[str] | None = None,
               pattern: str | re.Pattern[str] | None = None) -> dict[str, list[tuple[int, Job]]]:
        """Host -> ``(index, job)`` of the jobs on ``hosts`` (all for ``None``) that match ``pattern``."""
        regex = compile_pattern(pattern)
        chosen: dict[str, list[tuple[int, Job]]] = {}
        for hostname, server in self.job_servers.items():
            if hosts and hostname not in hosts:
                continue
            items = [(index, job) for index, job in enumerate(server.jobs) if job.match(regex)]
            if items:
                chosen[hostname] = items
        return chosen

    def pretty_print(self, hosts: Sequence[str] | None = None, pattern: str | re.Pattern[str] | None = None,
                     short: bool = False, file: IO[str] | None = None) -> None:
        """Print the jobs on ``hosts`` that match ``pattern`` as an aligned table (``jm list``).

        Columns empty for every job shown are left out; ``short`` prints the host, index,
        job id and status only. Nothing is printed when no job is chosen.
        """
        records = [{"hostname": hostname, "index": index, **job.job_spec()}
                   for hostname, items in self.select(hosts, pattern).items() for index, job in items]
        if records:
            (file or sys.stdout).write(plain_table(records, shown_columns(records, short)))
