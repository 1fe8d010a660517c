"""The job cache on disk: one SQLite database in WAL mode.

Invariants
----------
- Every change is one ``BEGIN IMMEDIATE`` transaction: a writer killed in the middle
  leaves the last committed state, and SQLite's locks die with the process.
- A job is one row, identified by ``(hostname, path)``. Writers never hold a lock
  across a user's edit: :meth:`Store.record` and :meth:`Store.save` resolve conflicts
  row by row, the newer modification time winning.
- The schema version is ``PRAGMA user_version`` and the file is marked with
  ``PRAGMA application_id``: a newer schema, a foreign database or a file that is not a
  database is one clear error, and nothing is written.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from plams_cli.errors import CacheVersionError, CorruptedCacheError, JobCacheError, LockException, UserError
from plams_cli.jobcache.status import JobStatus

__all__ = ["Store", "SCHEMA_VERSION", "APPLICATION_ID", "COLUMNS", "ROW_FIELDS", "DEFAULT_TIMEOUT_S"]

SCHEMA_VERSION = 1
#: "PLJC" — marks the file as a plams-cli job cache
APPLICATION_ID = 0x504C4A43
DEFAULT_TIMEOUT_S = 10.0

#: the job columns, in table order (after ``hostname``)
COLUMNS = ("path", "job_id", "program", "input_fname", "output_fname", "status", "submit", "comment",
           "mtime", "kind", "grid", "pid_start")
#: keys a row given to :meth:`Store.record` may have
ROW_FIELDS = frozenset(COLUMNS)
_MTIME, _KIND, _GRID, _PID_START = (COLUMNS.index(name) for name in ("mtime", "kind", "grid", "pid_start"))
_TEXT_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name not in ("mtime", "pid_start"))
_TEXT_TYPES = frozenset({str, type(None)})
_STATUS_NAMES = frozenset(s.value for s in JobStatus) | frozenset(JobStatus)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    hostname TEXT NOT NULL,
    path TEXT NOT NULL,
    job_id TEXT,
    program TEXT,
    input_fname TEXT,
    output_fname TEXT,
    status TEXT NOT NULL DEFAULT 'unknown',
    submit TEXT,
    comment TEXT,
    mtime REAL NOT NULL,
    kind TEXT,
    grid TEXT,
    pid_start REAL,
    UNIQUE (hostname, path)
);
CREATE INDEX IF NOT EXISTS jobs_by_host ON jobs (hostname);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLS = ", ".join(("hostname", *COLUMNS))
_PARAMS = ", ".join(f":{c}" for c in ("hostname", *COLUMNS))
_RECORD_ORDER = ("hostname", *COLUMNS)

# A partial update: a key left out (None) keeps the stored value, and only a newer (or
# equally new: the later call) modification changes anything. Many rows per statement
# (multi-row VALUES): SQLite then writes them all in one step, with the GIL let go, where
# executemany() takes the GIL back after every row. With a busy thread beside it (a run
# whose jobs the recorder writes) that costs up to the switch interval, 5 ms, per row.
_RECORD_ROW = "(" + ", ".join("coalesce(?, 'unknown')" if c == "status" else "?" for c in _RECORD_ORDER) + ")"


@functools.cache  # (a few sizes: see _statements)
def _record_sql(rows: int, status_given: bool) -> str:
    """The statement recording ``rows`` rows; ``status_given``: each has a status, else each keeps the stored one."""
    updates = ", ".join(f"status = {'excluded.status' if status_given else 'jobs.status'}" if c == "status"
                        else f"{c} = coalesce(excluded.{c}, jobs.{c})"
                        for c in COLUMNS if c not in ("path", "mtime"))
    return (f"INSERT INTO jobs ({_COLS}) VALUES {', '.join([_RECORD_ROW] * rows)} "
            f"ON CONFLICT (hostname, path) DO UPDATE SET {updates}, mtime = excluded.mtime "
            "WHERE excluded.mtime >= jobs.mtime")


#: most rows per statement (the fewer statements, the fewer times the writer waits for the GIL)
MAX_ROWS_PER_STATEMENT = 2000
_STATUS_INDEX = _RECORD_ORDER.index("status")


def _parameter_limit(conn: sqlite3.Connection) -> int:
    """The most parameters one statement may take."""
    getlimit = getattr(conn, "getlimit", None)  # (Python 3.11)
    if getlimit is not None:
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


def _rows_per_statement(conn: sqlite3.Connection) -> int:
    """Rows one statement may take: :data:`MAX_ROWS_PER_STATEMENT`, or fewer where SQLite allows fewer parameters."""
    return max(1, min(MAX_ROWS_PER_STATEMENT, _parameter_limit(conn) // len(_RECORD_ORDER)))


def _statements(values: Sequence[tuple[Any, ...]], most: int) -> Iterator[tuple[str, list[Any]]]:
    """``(sql, parameters)`` recording ``values`` in their order: runs of rows alike (status or none) together,
    cut into pieces of ``most`` rows, then of powers of two (few statements to prepare)."""
    start = 0
    while start < len(values):
        given = values[start][_STATUS_INDEX] is not None
        end = start + 1
        while end < len(values) and (values[end][_STATUS_INDEX] is not None) is given:
            end += 1
        while start < end:
            size = min(most, end - start)
            size = size if size == most else 1 << (size.bit_length() - 1)
            yield _record_sql(size, given), list(itertools.chain.from_iterable(values[start:start + size]))
            start += size


# A whole job from the load()/dump() API: it replaces the row if it is newer.
_SAVE = (
    f"INSERT INTO jobs ({_COLS}) VALUES ({_PARAMS}) ON CONFLICT (hostname, path) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "path")
    + " WHERE excluded.mtime >= jobs.mtime"
)
# A status found by a check: written only if nobody changed the row since it was read.
_CHECKED = ("UPDATE jobs SET status = :status, mtime = :mtime "
            "WHERE hostname = :hostname AND path = :path AND mtime = :saved")
_DELETE = "DELETE FROM jobs WHERE hostname = ? AND path = ? AND mtime <= ?"


def _holders(path: str) -> str:
    """Who has ``path`` open, from ``/proc`` (Linux); empty when that cannot be told."""
    names = []
    real = os.path.realpath(path)
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return ""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") == real for fd in fds):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        names.append(f"pid {pid} ({command[:80]})" if command else f"pid {pid}")
    return ", ".join(names)


class Store:
    """The SQLite file behind a :class:`~plams_cli.jobcache.JobCache`.

    Parameters
    ----------
    path
        The database file; created (with its folder) on the first write.
    timeout_s
        How long a write waits for another writer before :class:`LockException`.

    The connection is opened on first use and shared by the threads of the process
    (calls are serialised by a lock).
    """

    def __init__(self, path: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = os.path.abspath(path)
        self.timeout_s = float(timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._ready = False  # the schema exists
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._ready = False

    def exists(self) -> bool:
        """Whether the file exists (a missing cache reads as empty and is not created by reading)."""
        return os.path.exists(self.path)

    # --- connection and errors ------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                holders = _holders(self.path)
                raise LockException(
                    f"the job cache {self.path} stayed locked for {self.timeout_s:g} s while {doing}"
                    + (f"; it is open in {holders}" if holders else "; another process holds it")
                ) from exc
            if "readonly" in text or "read-only" in text:
                raise JobCacheError(f"cannot write the job cache {self.path}: it is read-only") from exc
            raise JobCacheError(f"job cache {self.path}: {text} (while {doing})") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            raise CorruptedCacheError(
                f"{self.path} is not a readable plams job cache ({exc}); move it away or "
                "choose another with --cache / PLAMS_JOBCACHE"
            ) from exc

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if not create and not self.exists():
            return None
        if os.path.isdir(self.path):
            raise CorruptedCacheError(f"the job cache {self.path} is a folder, not a file")
        if create:
            folder = os.path.dirname(self.path)
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise JobCacheError(f"cannot create the folder of the job cache {folder}: {exc.strerror}") from exc
        try:
            with open(self.path, "rb") as handle:
                magic = handle.read(16)
        except FileNotFoundError:
            magic = b""
        except OSError as exc:
            raise JobCacheError(f"cannot read the job cache {self.path}: {exc.strerror}") from exc
        if magic and magic != b"SQLite format 3\x00":
            # SQLite would take a short file for an empty database, and write over it
            raise CorruptedCacheError(f"{self.path} is not a readable plams job cache (not an SQLite file); "
                                      "move it away or choose another with --cache / PLAMS_JOBCACHE")
        with self._errors("opening it"):
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                                   check_same_thread=False)
            try:
                # WAL with NORMAL: a crash or power cut may lose the last commits, never
                # corrupt the file; FULL would fsync on every commit of every run
                conn.execute("PRAGMA synchronous = NORMAL")
                self._check(conn)
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        return conn

    def _check(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and version == 0 and not tables:
            return  # an empty database (or a new file): ours to set up on the first write
        if app_id != APPLICATION_ID or "jobs" not in tables:
            raise CorruptedCacheError(
                f"{self.path} is an SQLite database but not a plams job cache; "
                "choose another file with --cache / PLAMS_JOBCACHE"
            )
        if version > SCHEMA_VERSION:
            raise CacheVersionError(
                f"the job cache {self.path} has schema version {version}, written by a newer plams-cli; "
                f"this one reads version {SCHEMA_VERSION}: upgrade plams-cli or use another cache"
            )
        self._ready = True

    @contextlib.contextmanager
    def write(self, doing: str = "writing") -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back on error."""
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            with self._errors(doing):
                if not self._ready:
                    # persistent, and outside a transaction by SQLite's rules; idempotent
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not self._ready:
                        self._create(conn)
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            self._ready = True

    def _create(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            import socket

            # statement by statement: executescript() would commit the open transaction
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('created_on', ?)", (socket.gethostname(),))
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        else:
            self._check(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or ``None`` when the cache does not exist (yet)."""
        with self._lock:
            conn = self._connect(create=False)
            if conn is not None and not self._ready:
                conn = None  # an empty file: nothing recorded
            with self._errors("reading it"):
                yield conn

    def lacking(self, hostname: str, status: str, paths: Sequence[str]) -> list[str]:
        """The paths among ``paths`` without a row of ``hostname`` in ``status`` (all of them when there is no cache).

        One ``count`` per chunk of paths: where every row is there, as after a restart that
        reused the jobs its first run recorded, no row is read into Python.

        Raises
        ------
        JobCacheError, CorruptedCacheError, CacheVersionError
            The cache cannot be read, is corrupt or foreign, or is newer.
        """
        lacking: list[str] = []
        with self.read() as conn:
            if conn is None:
                return list(paths)
            most = max(1, _parameter_limit(conn) - 2)  # (the host name and the status take two)
            for start in range(0, len(paths), most):
                chunk = paths[start:start + most]
                where = f"hostname = ? AND status = ? AND path IN ({', '.join('?' * len(chunk))})"
                parameters = [hostname, status, *chunk]
                (count,) = conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", parameters).fetchone()
                if count != len(chunk):
                    found = {row[0] for row in conn.execute(f"SELECT path FROM jobs WHERE {where}", parameters)}
                    lacking += [path for path in chunk if path not in found]
        return lacking

    # --- writing ----------------------------------------------------------------------
    @staticmethod
    def _row(hostname: str, row: Mapping[str, Any], now: float) -> tuple[Any, ...]:
        if not ROW_FIELDS.issuperset(row):
            unknown = sorted(set(row) - ROW_FIELDS)
            raise UserError(f"unknown job cache field {unknown[0]!r}; the fields are {', '.join(COLUMNS)}")
        path = row.get("path")
        if not path:
            raise UserError("every recorded job needs its path")
        status = row.get("status")
        if status is not None and status not in _STATUS_NAMES:
            raise UserError(f"unknown status {status!r} for {path}")
        values = list(map(row.get, COLUMNS))  # (once per recorded job: no per-column Python where avoidable)
        if not _TEXT_TYPES.issuperset(map(type, values[:_MTIME])) or type(values[_KIND]) not in _TEXT_TYPES \
                or type(values[_GRID]) not in _TEXT_TYPES:
            for index in _TEXT_INDEXES:
                value = values[index]
                if value is not None:
                    values[index] = str(value)
        mtime, pid_start = values[_MTIME], values[_PID_START]
        values[_MTIME] = now if mtime is None else float(mtime)
        if pid_start is not None:
            values[_PID_START] = float(pid_start)
        return (hostname, *values)

    def record(self, hostname: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or update ``rows`` of jobs on ``hostname`` in one transaction.

        A row needs ``path``; every other key it lacks keeps the stored value. A row
        whose ``mtime`` is older than the stored one changes nothing.

        Raises
        ------
        UserError
            A row has an unknown key, no path or a bad status (nothing is written).
        LockException, JobCacheError, CorruptedCacheError
            See :meth:`write`.
        """
        if not rows:
            return
        now = time.time()
        self.record_values([self._row(hostname, row, now) for row in rows])

    def record_values(self, values: Sequence[tuple[Any, ...]]) -> None:
        """:meth:`record` for rows made already: tuples of the host name and the :data:`COLUMNS`, in order.

        For a writer that builds its rows itself (the run's recorder): nothing is checked;
        a ``None`` keeps the stored value, and ``mtime`` must be a number.

        Raises
        ------
        LockException, JobCacheError, CorruptedCacheError
            See :meth:`write`.
        """
        if not values:
            return
        with self.write(f"recording {len(values)} job(s)") as conn:
            for sql, parameters in _statements(values, _rows_per_statement(conn)):
                conn.execute(sql, parameters)

    def save(self, jobs: Iterable[tuple[str, Any]], deleted: Iterable[tuple[str, str, float]] = ()) -> None:
        """Write the changed jobs of the load()/dump() API and delete ``deleted`` rows.

        ``jobs`` holds ``(hostname, job)``. A new or edited job replaces its row when it
        is newer; a status found by a check is written only if the row is unchanged
        since it was read; a deleted row goes only if nobody changed it since.
        """
        edited: list[dict[str, Any]] = []
        checked: list[dict[str, Any]] = []
        moved: list[tuple[str, str, float]] = list(deleted)
        for hostname, job in jobs:
            values = {"hostname": hostname, **{c: getattr(job, c) for c in COLUMNS if c not in ("status", "mtime")}}
            values["status"] = job.status.value
            values["mtime"] = job.timestamp()
            saved = job._saved
            if saved is not None and saved[0] != job.path:
                moved.append((hostname, saved[0], saved[1]))
            if saved is None or job._edited or saved[0] != job.path:
                edited.append(values)
            elif job._auto:
                checked.append({"hostname": hostname, "path": job.path, "status": values["status"],
                                "mtime": values["mtime"], "saved": saved[1]})
        if not (edited or checked or moved):
            return
        with self.write("saving jobs") as conn:
            conn.executemany(_DELETE, moved)
            conn.executemany(_SAVE, edited)
            conn.executemany(_CHECKED, checked)

    # --- reading ----------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of the ``meta`` table (``created_on``: the host that created the cache)."""
        with self.read() as conn:
            if conn is None:
                return None
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def hostnames(self) -> list[str]:
        """The host names that have jobs, sorted."""
        with self.read() as conn:
            if conn is None:
                return []
            return [r[0] for r in conn.execute("SELECT DISTINCT hostname FROM jobs ORDER BY hostname")]

    def rows(
        self,
        hosts: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        literal: str | None = None,
        order: str = "host",
    ) -> list[tuple[Any, ...]]:
        """Rows ``(hostname, index, path, job_id, …, pid_start)`` (see :data:`COLUMNS`).

        ``index`` is the job's position among its host's jobs in the order they were
        first recorded (job_manager's index). ``hosts`` and ``statuses`` keep only those;
        ``literal`` keeps the rows in which some field contains that text. ``order`` is
        ``"host"`` (host, index) or ``"mtime"`` (oldest first).
        """
        with self.read() as conn:
            if conn is None:
                return []
            where, params = [], []
            if hosts:
                where.append(f"hostname IN ({', '.join('?' * len(hosts))})")
                params += list(hosts)
            if statuses:
                where.append(f"status IN ({', '.join('?' * len(statuses))})")
                params += list(statuses)
            if literal:
                from plams_cli.jobcache.job import MATCH_FIELDS

                where.append("(" + " OR ".join(f"instr({f}, ?) > 0" for f in MATCH_FIELDS) + ")")
                params += [literal] * len(MATCH_FIELDS)
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            order_by = "mtime, id" if order == "mtime" else "hostname, id"
            found = conn.execute(f"SELECT id, hostname, {', '.join(COLUMNS)} FROM jobs{clause} ORDER BY {order_by}",
                                 params).fetchall()
            return [(row[1], index, *row[2:]) for row, index in zip(found, self._indices(conn, found), strict=True)]

    @staticmethod
    def _indices(conn: sqlite3.Connection, found: Sequence[tuple[Any, ...]]) -> list[int]:
        """The position of each ``(id, hostname, …)`` row among its host's rows, by id.

        Few rows of a host: one index range count each; many: the host's ids, bisected.
        (A window function would number all rows of the cache, the slow part of a listing.)
        """
        import bisect

        by_host: dict[str, list[int]] = {}
        for row in found:
            by_host.setdefault(row[1], []).append(row[0])
        position: dict[int, int] = {}
        for host, ids in by_host.items():
            if len(ids) <= 64:
                for rowid in ids:
                    position[rowid] = conn.execute("SELECT count(*) FROM jobs WHERE hostname = ? AND id < ?",
                                                   (host, rowid)).fetchone()[0]
            else:
                every = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE hostname = ? ORDER BY id", (host,))]
                for rowid in ids:
                    position[rowid] = bisect.bisect_left(every, rowid)
        return [position[row[0]] for row in found]
