"""The state point cache: id -> state point for every job, without opening job folders.

Files under ``.signac/``:

* ``plams_statepoint_cache`` — our cache, by column: one ``marshal`` blob per top-level
  state point key, so a search loads only the keys its filter names (marshal because it
  is several times faster to read than JSON; the file is checked by a magic line holding
  the marshal version and rebuilt when it does not fit);
* ``plams_statepoint_journal`` — lines ``"<id>": <state point>,`` appended with one
  ``O_APPEND`` write whenever this package creates a job, so a new process sees new jobs
  before the cache is rebuilt;
* ``statepoint_cache.json.gz`` — signac 2's cache; read for jobs no other file knows and
  written by :meth:`StatepointCache.write_signac` (``Workspace.update_cache``).

None of them says *which* jobs exist: the listing of ``workspace/`` does. Entries for ids
not in the listing are ignored; listed ids that no file knows are read from their folder.
An id is the hash of its state point, so an entry may be stale (its job gone) but never
wrong for its id.
"""

from __future__ import annotations

import json
import marshal
import os
import re
from typing import Any, Callable

from ._io import atomic_write

__all__ = ["StatepointCache", "CACHE_FILENAME", "JOURNAL_FILENAME", "SIGNAC_CACHE_FILENAME"]

CACHE_FILENAME = "plams_statepoint_cache"
JOURNAL_FILENAME = "plams_statepoint_journal"
SIGNAC_CACHE_FILENAME = "statepoint_cache.json.gz"

_MAGIC = f"plams-statepoint-cache 1 marshal {marshal.version}\n".encode()
JOB_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
_ABSENT = ...  # marks "key not in this state point" in a column; JSON has no Ellipsis

#: Rebuild the cache file once this many listed jobs are missing from it (or 10 %).
REBUILD_MISSES = 1000

StatepointReader = Callable[[str], dict[str, Any]]


class StatepointCache:
    """Reads, appends to and rebuilds the state point cache of one workspace.

    Parameters
    ----------
    config_dir
        The ``.signac`` folder of the workspace.
    """

    __slots__ = ("config_dir", "cache_file", "journal_file", "signac_file", "_journal_fd")

    def __init__(self, config_dir: str) -> None:
        self.config_dir = config_dir
        self.cache_file = config_dir + os.sep + CACHE_FILENAME
        self.journal_file = config_dir + os.sep + JOURNAL_FILENAME
        self.signac_file = config_dir + os.sep + SIGNAC_CACHE_FILENAME
        self._journal_fd: int | None = None

    # ------------------------------------------------------------------ journal
    def append(self, job_id: str, blob: str) -> None:
        """Record that job ``job_id`` with the sorted-JSON state point ``blob`` exists.

        Parameters
        ----------
        job_id
            The job id.
        blob
            The state point as JSON text without newlines.
        """
        if self._journal_fd is None:
            try:
                self._journal_fd = os.open(
                    self.journal_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666
                )
            except OSError:
                return  # a read-only .signac folder: the cache is only a speed-up
        try:
            os.write(self._journal_fd, f'"{job_id}": {blob},\n'.encode())
        except OSError:
            pass

    def close(self) -> None:
        """Close the journal file if it is open."""
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def read_journal(self) -> dict[str, Any]:
        """Return the journal's ``{id: state point}``, skipping torn lines."""
        try:
            with open(self.journal_file, "rb") as file:
                text = file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return {}
        body = text.rstrip().rstrip(",")
        if not body:
            return {}
        try:
            return dict(json.loads("{" + body + "}"))
        except ValueError:
            pass
        entries: dict[str, Any] = {}  # a writer was killed mid-line: keep what parses
        for line in text.splitlines():
            try:
                entries.update(json.loads("{" + line.rstrip().rstrip(",") + "}"))
            except ValueError:
                continue
        return entries

    def read_signac(self) -> dict[str, Any]:
        """Return signac's gz cache, or ``{}`` when it is absent or damaged."""
        import gzip

        try:
            with gzip.open(self.signac_file, "rb") as file:
                data = json.loads(file.read())
        except (OSError, EOFError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # ------------------------------------------------------------------ column file
    def _read_file(self) -> tuple[list[str], dict[str, tuple[int, int]], bytes]:
        try:
            with open(self.cache_file, "rb") as file:
                raw = file.read()
        except OSError:
            return [], {}, b""
        if not raw.startswith(_MAGIC):
            return [], {}, b""
        try:
            start = len(_MAGIC)
            size = int.from_bytes(raw[start : start + 8], "little")
            header = marshal.loads(raw[start + 8 : start + 8 + size])
            ids, columns = header["ids"], header["columns"]
        except (ValueError, EOFError, TypeError, KeyError):
            return [], {}, b""
        return ids, columns, raw[start + 8 + size :]

    @staticmethod
    def _column(body: bytes, where: tuple[int, int], rows: int) -> list[Any] | None:
        offset, size = where
        try:
            values = marshal.loads(body[offset : offset + size])
        except (ValueError, EOFError, TypeError):
            return None
        return values if isinstance(values, list) and len(values) == rows else None

    def load_columns(
        self,
        job_ids: list[str],
        read_statepoint: StatepointReader,
        keys: set[str] | None = None,
    ) -> tuple[list[str], dict[str, list[Any]]]:
        """Return the state points of the jobs in ``job_ids`` by top-level key.

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        read_statepoint
            ``read_statepoint(job_id)`` reads a state point from its job folder; used for
            ids neither the cache, the journal nor signac's cache know.
        keys
            The top-level keys wanted (all when None).

        Returns
        -------
        tuple
            The ids found (those whose folder vanished meanwhile are left out) and
            ``{key: [value per id]}``, with ``...`` (Ellipsis) where a state point lacks
            the key.
        """
        cached_ids, columns, body = self._read_file()
        rows: list[int] | None
        if cached_ids == job_ids:
            # Same listing, same order as when the cache was written: no reindexing.
            missing, ids, rows = [], list(job_ids), None
        else:
            row_of = {job_id: row for row, job_id in enumerate(cached_ids)}
            found = [row_of.get(job_id) for job_id in job_ids]
            missing = [
                job_id
                for job_id, row in zip(job_ids, found)
                if row is None and JOB_ID_RE.match(job_id)
            ]
            ids = [job_id for job_id, row in zip(job_ids, found) if row is not None]
            rows = [row for row in found if row is not None]
        wanted = list(columns) if keys is None else [k for k in keys if k in columns]
        out: dict[str, list[Any]] = {}
        for key in wanted:
            values = self._column(body, columns[key], len(cached_ids))
            if values is None:  # damaged file: read everything the slow way
                return self._from_statepoints(
                    job_ids, self._fetch(job_ids, read_statepoint), keys
                )
            out[key] = values if rows is None else [values[row] for row in rows]
        if missing:
            full = self._fetch(missing, read_statepoint)
            extra_keys: set[str] = set()
            for sp in full.values():
                extra_keys.update(sp)
            if keys is not None:
                extra_keys &= keys
            for key in extra_keys - out.keys():
                out[key] = [_ABSENT] * len(ids)
            for key, column in out.items():
                column.extend(sp.get(key, _ABSENT) for sp in full.values())
            ids.extend(full)
            if len(full) >= min(REBUILD_MISSES, max(1, len(job_ids) // 10)):
                self.rebuild(job_ids, read_statepoint, extra=full)
        return ids, out

    @staticmethod
    def _from_statepoints(
        job_ids: list[str], statepoints: dict[str, Any], keys: set[str] | None
    ) -> tuple[list[str], dict[str, list[Any]]]:
        ids = [job_id for job_id in job_ids if job_id in statepoints]
        all_keys: set[str] = set()
        for job_id in ids:
            all_keys.update(statepoints[job_id])
        if keys is not None:
            all_keys &= keys
        return ids, {
            key: [statepoints[job_id].get(key, _ABSENT) for job_id in ids] for key in all_keys
        }

    def load(
        self, job_ids: list[str], read_statepoint: StatepointReader
    ) -> dict[str, dict[str, Any]]:
        """Return ``{id: state point}`` of the jobs in ``job_ids`` (see :meth:`load_columns`).

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        read_statepoint
            Reads a state point from its job folder when no cache knows it.

        Returns
        -------
        dict
            The state points, keyed by id, keys sorted.
        """
        ids, columns = self.load_columns(job_ids, read_statepoint)
        result: dict[str, dict[str, Any]] = {job_id: {} for job_id in ids}
        for key in sorted(columns):
            for job_id, value in zip(ids, columns[key]):
                if value is not _ABSENT:
                    result[job_id][key] = value
        return result

    def _fetch(self, job_ids: list[str], read_statepoint: StatepointReader) -> dict[str, Any]:
        found: dict[str, Any] = {}
        journal = self.read_journal()
        signac: dict[str, Any] | None = None
        for job_id in job_ids:
            sp = journal.get(job_id)
            if sp is None:
                if signac is None:
                    signac = self.read_signac()
                sp = signac.get(job_id)
            if sp is None:
                try:
                    sp = read_statepoint(job_id)
                except FileNotFoundError:
                    continue  # removed since the listing
            found[job_id] = sp
        return found

    def rebuild(
        self,
        job_ids: list[str],
        read_statepoint: StatepointReader,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write the cache file for exactly ``job_ids`` and empty the journal.

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        read_statepoint
            Reads a state point from its job folder when no cache knows it.
        extra
            State points already at hand (``{id: sp}``), e.g. just read.

        Returns
        -------
        dict
            ``{id: state point}`` of every job written.
        """
        cached_ids, columns, body = self._read_file()
        statepoints: dict[str, dict[str, Any]] = {}
        if cached_ids:
            full: dict[str, dict[str, Any]] = {job_id: {} for job_id in cached_ids}
            for key, where in columns.items():
                values = self._column(body, where, len(cached_ids))
                if values is None:  # damaged: start from nothing
                    full = {}
                    break
                for job_id, value in zip(cached_ids, values):
                    if value is not _ABSENT:
                        full[job_id][key] = value
            statepoints.update(full)
        if extra:
            statepoints.update(extra)
        missing = [job_id for job_id in job_ids if job_id not in statepoints]
        if missing:
            statepoints.update(self._fetch(missing, read_statepoint))
        ids = [job_id for job_id in job_ids if job_id in statepoints]
        self._write(ids, statepoints)
        return {job_id: statepoints[job_id] for job_id in ids}

    def _write(self, ids: list[str], statepoints: dict[str, dict[str, Any]]) -> None:
        keys: set[str] = set()
        for job_id in ids:
            keys.update(statepoints[job_id])
        blobs: list[bytes] = []
        where: dict[str, tuple[int, int]] = {}
        offset = 0
        for key in sorted(keys):
            blob = marshal.dumps([statepoints[job_id].get(key, _ABSENT) for job_id in ids])
            where[key] = (offset, len(blob))
            offset += len(blob)
            blobs.append(blob)
        header = marshal.dumps({"ids": ids, "columns": where})
        data = b"".join([_MAGIC, len(header).to_bytes(8, "little"), header, *blobs])
        try:
            # A cache needs no fsync: a torn file fails the checks and is rebuilt.
            atomic_write(self.cache_file, data, fsync=False)
            # A line another process appends between our read and this truncation is
            # lost from the journal; its job is then read from its folder once.
            os.truncate(self.journal_file, 0)
        except OSError:
            pass  # read-only .signac or no journal yet: the cache is only a speed-up

    def write_signac(self, statepoints: dict[str, Any]) -> None:
        """Write signac's ``statepoint_cache.json.gz`` holding ``statepoints``.

        Parameters
        ----------
        statepoints
            ``{id: state point}`` of every job.
        """
        import gzip

        data = gzip.compress(json.dumps(statepoints).encode(), compresslevel=1, mtime=0)
        atomic_write(self.signac_file, data)
