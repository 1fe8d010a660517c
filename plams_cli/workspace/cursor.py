"""The result of :meth:`Workspace.find_jobs`: a cursor over the matching jobs, as signac's.

A :class:`JobsCursor` keeps the workspace and the filter. Without a filter, ``len`` and
``in`` ask the workspace each time, so they see jobs created after the search; the list of
ids that iteration walks is read once, on first use, and kept (signac 2.4 does the same:
call ``find_jobs`` again for a fresh one). With a filter, the search runs at once, so a
malformed filter or a corrupted job raises from ``find_jobs`` itself, and its ids are kept.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

from .job import Job

if TYPE_CHECKING:
    from .project import Workspace

__all__ = ["JobsCursor", "dotted_items"]


def dotted_items(data: Mapping[str, Any], prefix: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``("a.b", value)`` for every leaf of a nested mapping (an empty mapping is a leaf).

    Parameters
    ----------
    data
        A nested mapping.
    prefix
        The dotted key of ``data`` itself, if it is nested.

    Yields
    ------
    tuple
        The dotted key and the value.
    """
    for key, value in data.items():
        dotted = key if prefix is None else prefix + "." + key
        if isinstance(value, Mapping) and value:
            yield from dotted_items(value, dotted)
        else:
            yield dotted, value


class JobsCursor:
    """The jobs matching a filter, in id order; get it from :meth:`Workspace.find_jobs`.

    Supports ``len``, ``in``, iteration, indexing (``cursor[0]``, a slice gives a list),
    :meth:`groupby`, :meth:`to_dataframe` (with pandas installed) and an HTML view in
    notebooks. Comparing with a list of jobs compares the jobs.

    Parameters
    ----------
    workspace
        The workspace searched.
    filter
        A MongoDB-style filter; ``None`` or ``{}`` matches every job.

    Raises
    ------
    FilterError
        A ``ValueError``: the filter is malformed, or cannot be applied to the data.
    JobsCorruptedError
        If a filter is given and some job's state point file is broken.
    """

    __slots__ = ("_ws", "_filter", "_id_cache", "_id_set_cache")

    #: Whether the HTML view tabulates the jobs with pandas (when it is installed).
    _use_pandas_for_html_repr = True

    def __init__(self, workspace: Workspace, filter: Mapping[str, Any] | None = None) -> None:
        self._ws = workspace
        self._filter: dict[str, Any] | None = dict(filter) if filter else None
        self._id_cache: list[str] | None = None
        self._id_set_cache: set[str] | None = None
        if self._filter is not None:
            self._id_cache = workspace.find_job_ids(self._filter)

    @property
    def _ids(self) -> list[str]:
        if self._id_cache is None:
            self._id_cache = self._ws.find_job_ids(self._filter)
        return self._id_cache

    def __len__(self) -> int:
        """Return the number of matching jobs (without a filter: of jobs now)."""
        if self._filter is None:
            return len(self._ws)
        return len(self._ids)

    def __contains__(self, job: object) -> bool:
        """Return whether ``job`` (a :class:`Job` or an id) is among the matches."""
        if self._filter is None:
            return job in self._ws
        if self._id_set_cache is None:
            self._id_set_cache = set(self._ids)
        if isinstance(job, Job):
            return job.workspace == self._ws and job.id in self._id_set_cache
        return isinstance(job, str) and job in self._id_set_cache

    def __iter__(self) -> Iterator[Job]:
        """Iterate over the matching jobs, ordered by id."""
        ws = self._ws
        return (Job(ws, job_id, existing=True) for job_id in self._ids)

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> list[Job]: ...

    def __getitem__(self, index: int | slice) -> Job | list[Job]:
        """Return the job at ``index`` in id order, or a list of jobs for a slice."""
        if isinstance(index, slice):
            return [Job(self._ws, job_id, existing=True) for job_id in self._ids[index]]
        return Job(self._ws, self._ids[index], existing=True)

    def __eq__(self, other: object) -> bool:
        """Cursors are equal with the same workspace and filter; a list, with the same jobs."""
        if isinstance(other, JobsCursor):
            return self._ws == other._ws and self._filter == other._filter
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show the workspace and the filter, as signac does."""
        return f"JobsCursor(project={self._ws!r}, filter={self._filter!r})"

    # ------------------------------------------------------------------ grouping
    def groupby(
        self, key: str | Iterable[str] | Callable[[Job], Any] | None = None, default: Any = None
    ) -> Iterator[tuple[Any, Iterator[Job]]]:
        """Group the jobs by state point or document values, as signac's ``groupby``.

        Parameters
        ----------
        key
            A state point key (``"a"`` or ``"sp.a"``), a document key (``"doc.a"``), an
            iterable of such keys (the group key is then a tuple), a callable taking a
            job, or ``None`` (one group per job, keyed by its id).
        default
            The value for jobs without the key; ``None`` leaves such jobs out. Only used
            with string keys.

        Yields
        ------
        tuple
            The group's key and an iterator over its jobs, sorted by key.

        Raises
        ------
        TypeError
            If the keys of different jobs cannot be ordered (e.g. ``1`` and ``"a"``).
        """
        filter_ = self._filter
        if default is not None and not isinstance(key, (str, Iterable)):
            warnings.warn(
                "the default of groupby is ignored unless the key is a string or strings",
                stacklevel=2,
            )
        keyfunction: Callable[[Job], Any]
        if isinstance(key, str):
            name = key.split(".", 1)[-1]
            in_doc = _is_doc_key(key)
            if default is None:
                filter_ = _and({key: {"$exists": True}}, filter_)
                if in_doc:
                    def keyfunction(job: Job) -> Any:
                        return job.document[name]
                else:
                    def keyfunction(job: Job) -> Any:
                        return job.cached_statepoint[name]
            elif in_doc:
                def keyfunction(job: Job) -> Any:
                    return job.document.get(name, default)
            else:
                def keyfunction(job: Job) -> Any:
                    return job.cached_statepoint.get(name, default)
        elif isinstance(key, Iterable):
            keys = list(key)
            sp_keys = [k.split(".", 1)[-1] for k in keys if not _is_doc_key(k)]
            doc_keys = [k.split(".", 1)[-1] for k in keys if _is_doc_key(k)]
            if default is None:
                filter_ = _and({k: {"$exists": True} for k in keys}, filter_)

                def keyfunction(job: Job) -> Any:
                    sp = job.cached_statepoint
                    return tuple([sp[k] for k in sp_keys] + [job.document[k] for k in doc_keys])
            else:
                def keyfunction(job: Job) -> Any:
                    sp = job.cached_statepoint
                    return tuple(
                        [sp.get(k, default) for k in sp_keys]
                        + [job.document.get(k, default) for k in doc_keys]
                    )
        elif key is None:
            def keyfunction(job: Job) -> Any:
                return job.id
        else:
            keyfunction = key
        jobs = sorted(JobsCursor(self._ws, filter_), key=keyfunction)
        yield from itertools.groupby(jobs, key=keyfunction)

    # ------------------------------------------------------------------ tables
    def to_dataframe(
        self,
        sp_prefix: str = "sp.",
        doc_prefix: str = "doc.",
        usecols: Iterable[str] | Callable[[str], bool] | None = None,
        flatten: bool = False,
    ) -> Any:  # a pandas.DataFrame; pandas is optional and untyped
        """Return the state points and documents as a pandas DataFrame indexed by job id.

        Needs pandas (``pip install pandas``); the columns are those of signac's
        ``to_dataframe`` for the same arguments.

        Parameters
        ----------
        sp_prefix
            Prefix of the state point columns.
        doc_prefix
            Prefix of the document columns.
        usecols
            The columns to keep: names (with prefix), or a callable taking a name.
        flatten
            Nested keys become dotted columns (``sp.a.b``) instead of dict values.

        Returns
        -------
        pandas.DataFrame
            One row per job.

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        import pandas

        keep: Callable[[str], bool]
        if usecols is None:
            keep = bool  # every column name is a non-empty string
        elif callable(usecols):
            keep = usecols
        else:
            keep = set(usecols).__contains__

        def items(data: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
            return dotted_items(data) if flatten else data.items()

        rows = {}
        for job in self:
            row = {sp_prefix + k: v for k, v in items(job.cached_statepoint) if keep(sp_prefix + k)}
            row.update((doc_prefix + k, v) for k, v in items(job.doc()) if keep(doc_prefix + k))
            rows[job.id] = row
        return pandas.DataFrame.from_dict(data=rows, orient="index").infer_objects()

    def _repr_html_jobs(self) -> str:
        count = len(self)
        if count <= 100 and self._use_pandas_for_html_repr:
            try:
                import pandas
            except ImportError:
                warnings.warn("install pandas for a table of the jobs", stacklevel=2)
            else:
                with pandas.option_context("display.max_rows", 20):
                    return str(self.to_dataframe()._repr_html_())
        return f"<br/><strong>{count}</strong> job(s) found"

    def _repr_html_(self) -> str:
        """Return the HTML view notebooks show: the repr and a table of the jobs."""
        return repr(self) + self._repr_html_jobs()


def _is_doc_key(key: str) -> bool:
    return "." in key and key.split(".", 1)[0] == "doc"


def _and(condition: dict[str, Any], filter_: dict[str, Any] | None) -> dict[str, Any]:
    return condition if filter_ is None else {"$and": [condition, filter_]}
