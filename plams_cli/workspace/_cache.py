"""The state point cache: id -> state point for every job, without opening job folders.

Files under ``.signac/``:

* ``plams_statepoint_cache`` — our cache, by column: one ``marshal`` blob per top-level
  state point key, so a search loads only the keys its filter names (marshal because it
  is several times faster to read than JSON; the file is checked by a magic line holding
  the marshal version and rebuilt when it does not fit);
* ``plams_statepoint_journal`` — lines ``"<id>": [<signature>, <state point>],`` appended
  with one ``O_APPEND`` write whenever this package creates or moves a job, so a new
  process sees new jobs before the cache is rebuilt;
* ``statepoint_cache.json.gz`` — signac 2's cache, written by
  :meth:`StatepointCache.write_signac` (``Workspace.update_cache``) for signac's benefit.
  It is not read: it holds no file signatures, so it cannot be checked against the disk.

None of them says *which* jobs exist: the listing of ``workspace/`` does. And none is
believed without a check: each entry carries the *signature* of the state point file it
was read from (modification and change times, size, inode), and is used only while the
file on disk still has that signature, one ``stat`` per job. As git does with its index,
an entry whose file changed in the same clock tick as the cache was written is not
trusted either (the change might not show in the times), and is read again.
"""

from __future__ import annotations

import json
import marshal
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from plams_cli._fs import atomic_write
from plams_cli.errors import JobsCorruptedError

from ._io import FILE_MODE
from .statepoint import STATEPOINT_FILENAME

__all__ = [
    "StatepointCache",
    "Signature",
    "Pair",
    "signature",
    "stat_statepoints",
    "CACHE_FILENAME",
    "JOURNAL_FILENAME",
    "SIGNAC_CACHE_FILENAME",
]

CACHE_FILENAME = "plams_statepoint_cache"
JOURNAL_FILENAME = "plams_statepoint_journal"
SIGNAC_CACHE_FILENAME = "statepoint_cache.json.gz"

_MAGIC = f"plams-statepoint-cache 2 marshal {marshal.version}\n".encode()
_ABSENT = ...  # marks "key not in this state point" in a column; JSON has no Ellipsis

#: Rebuild the cache file once this many listed jobs are missing from it (or 10 %).
REBUILD_MISSES = 1000
#: Entries written less than this long ago may be racy; older ones are rewritten.
_RACY_REWRITE_NS = 1_000_000_000

#: ``(st_mtime_ns, st_ctime_ns, st_size, st_ino)`` of a state point file.
Signature = tuple[int, int, int, int]
#: A state point with the signature of the file it was read from.
Pair = tuple[Signature, dict[str, Any]]
StatepointReader = Callable[[str], Pair]


def signature(st: os.stat_result) -> Signature:
    """Return the signature of a state point file from its ``stat`` result."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def stat_statepoints(workspace: str, job_ids: list[str]) -> list[Signature | None]:
    """Return the signature of each job's state point file, None where there is none.

    Parameters
    ----------
    workspace
        The ``workspace`` folder.
    job_ids
        The job ids (folder names).

    Returns
    -------
    list
        One signature or None per id, in order.
    """
    suffix = os.sep + STATEPOINT_FILENAME
    stat = os.stat
    out: list[Signature | None] = []
    append = out.append
    if stat in os.supports_dir_fd:
        # Relative to an open folder: the kernel skips resolving the workspace path for
        # each of thousands of jobs, a third of the cost of the whole loop.
        try:
            fd = os.open(workspace, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return [None] * len(job_ids)
        try:
            for job_id in job_ids:
                try:
                    st = stat(job_id + suffix, dir_fd=fd)
                except OSError:
                    append(None)
                else:
                    append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        finally:
            os.close(fd)
        return out
    prefix = workspace + os.sep  # pragma: no cover - platforms without dir_fd
    for job_id in job_ids:  # pragma: no cover
        try:
            st = stat(prefix + job_id + suffix)
        except OSError:
            append(None)
        else:
            append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    return out  # pragma: no cover


class _CacheFile(NamedTuple):
    ids: list[str]
    sigs: list[Signature]
    columns: dict[str, tuple[int, int]]
    body: bytes
    mtime_ns: int


_EMPTY = _CacheFile([], [], {}, b"", 0)


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
    def append(self, job_id: str, blob: str, sig: Signature) -> None:
        """Record that job ``job_id`` exists with the sorted-JSON state point ``blob``.

        Parameters
        ----------
        job_id
            The job id.
        blob
            The state point as JSON text without newlines.
        sig
            The signature of the state point file holding ``blob``.
        """
        if self._journal_fd is None:
            try:
                self._journal_fd = os.open(
                    self.journal_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666
                )
            except OSError:
                return  # a read-only .signac folder: the cache is only a speed-up
        line = f'"{job_id}": [[{sig[0]}, {sig[1]}, {sig[2]}, {sig[3]}], {blob}],\n'
        try:
            os.write(self._journal_fd, line.encode())
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

    def read_journal(self) -> dict[str, Pair]:
        """Return the journal's trustworthy entries ``{id: (signature, state point)}``.

        Torn lines (a writer killed mid-line) and entries whose file changed in the tick
        of the journal's last write are left out.
        """
        try:
            with open(self.journal_file, "rb") as file:
                mtime_ns = os.fstat(file.fileno()).st_mtime_ns
                text = file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return {}
        body = text.rstrip().rstrip(",")
        if not body:
            return {}
        try:
            raw = dict(json.loads("{" + body + "}"))
        except ValueError:
            raw = {}
            for line in text.splitlines():
                try:
                    raw.update(json.loads("{" + line.rstrip().rstrip(",") + "}"))
                except ValueError:
                    continue
        entries: dict[str, Pair] = {}
        for job_id, value in raw.items():
            try:
                sig_list, sp = value
                sig = (int(sig_list[0]), int(sig_list[1]), int(sig_list[2]), int(sig_list[3]))
            except (TypeError, ValueError, IndexError):
                continue  # not an entry of this format
            if type(sp) is dict and sig[1] < mtime_ns:
                entries[job_id] = (sig, sp)
        return entries

    # ------------------------------------------------------------------ column file
    def _read_file(self) -> _CacheFile:
        try:
            with open(self.cache_file, "rb") as file:
                mtime_ns = os.fstat(file.fileno()).st_mtime_ns
                raw = file.read()
        except OSError:
            return _EMPTY
        if not raw.startswith(_MAGIC):
            return _EMPTY
        try:
            start = len(_MAGIC)
            size = int.from_bytes(raw[start : start + 8], "little")
            header = marshal.loads(raw[start + 8 : start + 8 + size])
            ids, sigs, columns = header["ids"], header["sigs"], header["columns"]
        except (ValueError, EOFError, TypeError, KeyError):
            return _EMPTY
        if not (type(ids) is list and type(sigs) is list and len(ids) == len(sigs)):
            return _EMPTY
        return _CacheFile(ids, sigs, columns, raw[start + 8 + size :], mtime_ns)

    @staticmethod
    def _column(cached: _CacheFile, key: str) -> list[Any] | None:
        offset, size = cached.columns[key]
        try:
            values = marshal.loads(cached.body[offset : offset + size])
        except (ValueError, EOFError, TypeError):
            return None
        return values if isinstance(values, list) and len(values) == len(cached.ids) else None

    def load_columns(
        self,
        job_ids: list[str],
        sigs: list[Signature | None],
        read_statepoint: StatepointReader,
        keys: set[str] | None = None,
    ) -> tuple[list[str], dict[str, list[Any]], list[str]]:
        """Return the state points of the jobs in ``job_ids`` by top-level key.

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        sigs
            The current signature of each job's state point file (None: no file).
        read_statepoint
            ``read_statepoint(job_id)`` reads ``(signature, state point)`` from the job
            folder, for jobs no cache entry is valid for. It raises
            :class:`JobsCorruptedError` for a broken job and :class:`FileNotFoundError`
            for one removed since the listing.
        keys
            The top-level keys wanted (all when None).

        Returns
        -------
        tuple
            The ids found (those removed meanwhile and the corrupted ones left out),
            ``{key: [value per id]}`` with ``...`` (Ellipsis) where a state point lacks
            the key, and the ids of corrupted jobs.
        """
        fast, cached = self._current_columns(self._read_file(), job_ids, sigs, keys)
        if fast is not None:
            return list(job_ids), fast, []
        decoded: dict[str, list[Any]] = {}
        for key in cached.columns if keys is None else keys & cached.columns.keys():
            values = self._column(cached, key)
            if values is None:  # damaged file: read everything the slow way
                cached, decoded = _EMPTY, {}
                break
            decoded[key] = values
        row_of = {job_id: row for row, job_id in enumerate(cached.ids)}
        cached_sigs, mtime_ns = cached.sigs, cached.mtime_ns
        # Per listed id: its row in the cache file, or None when it must be looked up.
        found: list[int | None] = []
        misses: list[tuple[str, Signature | None]] = []
        racy = 0
        for job_id, sig in zip(job_ids, sigs, strict=False):
            row = row_of.get(job_id)
            if row is not None and sig is not None and cached_sigs[row] == sig:
                if sig[1] < mtime_ns:
                    found.append(row)
                    continue
                racy += 1
            found.append(None)
            misses.append((job_id, sig))
        fresh, corrupted = self._resolve(misses, read_statepoint)
        # Keep the listing's order: signac indexes jobs in that order, and where values
        # such as 1 and True fall together in its index, the first one decides $type.
        ids: list[str] = []
        rows: list[int | dict[str, Any]] = []
        for job_id, row in zip(job_ids, found, strict=False):
            if row is not None:
                ids.append(job_id)
                rows.append(row)
            elif job_id in fresh:
                ids.append(job_id)
                rows.append(fresh[job_id][1])
        out = _by_key(rows, decoded, fresh, keys)
        if fresh:
            stale = racy and time.time_ns() - mtime_ns > _RACY_REWRITE_NS
            if stale or len(fresh) >= min(REBUILD_MISSES, max(1, len(job_ids) // 10)):
                self.rebuild(job_ids, read_statepoint, sigs=sigs, known=fresh)
        return ids, out, corrupted

    def _current_columns(
        self,
        cached: _CacheFile,
        job_ids: list[str],
        sigs: list[Signature | None],
        keys: set[str] | None,
    ) -> tuple[dict[str, list[Any]] | None, _CacheFile]:
        """The wanted columns straight from ``cached`` if it is current, and the cache to go on from.

        Current means: the same listing, the same files, in the same order as when the
        cache was written. Otherwise the columns are None, and the cache to go on from is
        ``cached`` (or an empty one when the file is damaged).
        """
        if not (
            cached.ids == job_ids
            and cached.sigs == sigs
            and (not sigs or max(sig[1] for sig in sigs) < cached.mtime_ns)  # type: ignore[index]
        ):
            return None, cached
        fast: dict[str, list[Any]] = {}
        for key in cached.columns if keys is None else keys & cached.columns.keys():
            values = self._column(cached, key)
            if values is None:  # damaged file: fall back to the slow way
                return None, _EMPTY
            fast[key] = values
        return fast, cached

    def _resolve(
        self, misses: list[tuple[str, Signature | None]], read_statepoint: StatepointReader
    ) -> tuple[dict[str, Pair], list[str]]:
        """Find the jobs the cache file has no valid entry for in the journal or their folder."""
        fresh: dict[str, Pair] = {}
        corrupted: list[str] = []
        journal: dict[str, Pair] | None = None
        for job_id, sig in misses:
            if sig is not None:
                if journal is None:
                    journal = self.read_journal()
                pair = journal.get(job_id)
                if pair is not None and pair[0] == sig:
                    fresh[job_id] = pair
                    continue
            try:
                fresh[job_id] = read_statepoint(job_id)
            except JobsCorruptedError:
                corrupted.append(job_id)
            except FileNotFoundError:
                continue  # removed since the listing
        return fresh, corrupted

    def load(
        self,
        job_ids: list[str],
        sigs: list[Signature | None],
        read_statepoint: StatepointReader,
    ) -> tuple[dict[str, Pair], list[str]]:
        """Return ``{id: (signature, state point)}`` of the jobs (see :meth:`load_columns`).

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        sigs
            The current signature of each job's state point file.
        read_statepoint
            Reads a state point from its job folder when no cache entry is valid.

        Returns
        -------
        tuple
            The pairs, keyed by id, state point keys sorted; and the corrupted ids.
        """
        ids, columns, corrupted = self.load_columns(job_ids, sigs, read_statepoint)
        sig_of = dict(zip(job_ids, sigs, strict=False))
        statepoints: dict[str, dict[str, Any]] = {job_id: {} for job_id in ids}
        for key in sorted(columns):
            for job_id, value in zip(ids, columns[key], strict=False):
                if value is not _ABSENT:
                    statepoints[job_id][key] = value
        # The signatures are those from before reading: a job repaired meanwhile has a
        # new one, so its pair fails the next check and is read again, which is safe.
        return {
            job_id: (sig, sp)
            for job_id, sp in statepoints.items()
            if (sig := sig_of.get(job_id)) is not None
        }, corrupted

    def _cached_pairs(self) -> dict[str, Pair]:
        """The entries of the cache file that can be trusted (see the module docstring)."""
        cached = self._read_file()
        if not cached.ids:
            return {}
        statepoints: list[dict[str, Any]] = [{} for _ in cached.ids]
        for key in sorted(cached.columns):
            values = self._column(cached, key)
            if values is None:
                return {}
            for sp, value in zip(statepoints, values, strict=False):
                if value is not _ABSENT:
                    sp[key] = value
        return {
            job_id: (sig, sp)
            for job_id, sig, sp in zip(cached.ids, cached.sigs, statepoints, strict=False)
            if sig[1] < cached.mtime_ns
        }

    def remembered(self) -> dict[str, dict[str, Any]]:
        """Return every state point the caches hold, whatever the job folders hold now.

        For :meth:`Workspace.repair`: the cache file, the journal and signac's
        ``statepoint_cache.json.gz`` are read without checking file signatures; the
        caller checks each state point against its id.

        Returns
        -------
        dict
            ``{id: state point}``.
        """
        import gzip

        found: dict[str, dict[str, Any]] = {}
        try:
            with gzip.open(self.signac_file, "rb") as file:
                signac_cache = json.loads(file.read())
        except (OSError, EOFError, ValueError):
            signac_cache = {}
        if isinstance(signac_cache, dict):
            found.update((k, v) for k, v in signac_cache.items() if type(v) is dict)
        found.update((job_id, sp) for job_id, (_, sp) in self._cached_pairs().items())
        found.update((job_id, sp) for job_id, (_, sp) in self.read_journal().items())
        return found

    def rebuild(
        self,
        job_ids: list[str],
        read_statepoint: StatepointReader,
        sigs: list[Signature | None] | None = None,
        known: dict[str, Pair] | None = None,
    ) -> tuple[dict[str, Pair], list[str]]:
        """Write the cache file for exactly ``job_ids`` and empty the journal.

        Parameters
        ----------
        job_ids
            The ids listed in the workspace folder.
        read_statepoint
            Reads ``(signature, state point)`` from a job folder when no entry is valid.
        sigs
            The current signature of each job's file; entries that no longer match are
            read again. Without it, entries are kept as they are (each is still checked
            when used).
        known
            Pairs already at hand, e.g. just read.

        Returns
        -------
        tuple
            ``{id: (signature, state point)}`` of every job written, and the ids of
            corrupted jobs (which are left out).
        """
        pairs = self._cached_pairs()
        pairs.update(self.read_journal())
        if known:
            pairs.update(known)
        if sigs is not None:
            for job_id, sig in zip(job_ids, sigs, strict=False):
                pair = pairs.get(job_id)
                if pair is not None and pair[0] != sig:
                    del pairs[job_id]
        corrupted: list[str] = []
        for job_id in job_ids:
            if job_id not in pairs:
                try:
                    pairs[job_id] = read_statepoint(job_id)
                except JobsCorruptedError:
                    corrupted.append(job_id)
                except FileNotFoundError:
                    continue
        ids = [job_id for job_id in job_ids if job_id in pairs]
        self._write(ids, pairs)
        return {job_id: pairs[job_id] for job_id in ids}, corrupted

    def _write(self, ids: list[str], pairs: dict[str, Pair]) -> None:
        keys: set[str] = set()
        for job_id in ids:
            keys.update(pairs[job_id][1])
        blobs: list[bytes] = []
        where: dict[str, tuple[int, int]] = {}
        offset = 0
        for key in sorted(keys):
            blob = marshal.dumps([pairs[job_id][1].get(key, _ABSENT) for job_id in ids])
            where[key] = (offset, len(blob))
            offset += len(blob)
            blobs.append(blob)
        header = marshal.dumps(
            {"ids": ids, "sigs": [pairs[job_id][0] for job_id in ids], "columns": where}
        )
        data = b"".join([_MAGIC, len(header).to_bytes(8, "little"), header, *blobs])
        try:
            # A cache needs no fsync: a torn file fails the checks and is rebuilt.
            atomic_write(self.cache_file, data, fsync=False, mode=FILE_MODE)
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
        atomic_write(self.signac_file, data, mode=FILE_MODE)


def _by_key(
    rows: list[int | dict[str, Any]],
    decoded: dict[str, list[Any]],
    fresh: dict[str, Pair],
    keys: set[str] | None,
) -> dict[str, list[Any]]:
    """Columns ``{key: [value per row]}``; a row is a row of ``decoded`` or a fresh state point."""
    new_keys: set[str] = set()
    for _, sp in fresh.values():
        new_keys.update(sp)
    if keys is not None:
        new_keys &= keys
    out: dict[str, list[Any]] = {}
    for key in decoded.keys() | new_keys:
        values = decoded.get(key)
        out[key] = [
            row.get(key, _ABSENT) if type(row) is dict else (_ABSENT if values is None else values[row])  # type: ignore[index]  # rows not dicts are indices
            for row in rows
        ]
    return out
