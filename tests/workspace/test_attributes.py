"""Attribute access on state points and documents, side by side with signac."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as Api
from typing import Any

import pytest

from ._side_by_side import same_outcome

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _sp_underscore(api: Api, root: str) -> Any:
    job = api.init_project(root).open_job({"_x": 1, "a": {"_y": 2}}).init()
    seen = [job.sp._x, job.sp.a._y]
    job.sp._z = 3
    del job.sp._x
    return [*seen, job.sp(), job.id]


def _doc_underscore(api: Api, root: str) -> Any:
    job = api.init_project(root).open_job({"a": 1}).init()
    job.doc._q = 1
    job.doc.n = {"_r": 2}
    seen = [job.doc._q, job.doc.n._r, job.doc()]
    del job.doc._q
    return [*seen, job.doc(), hasattr(job.doc, "_q"), hasattr(job.doc, "missing")]


def _doc_dunder(api: Api, root: str) -> Any:
    job = api.init_project(root).open_job({"a": 1}).init()
    return job.doc.__nothing__


def _missing_key(api: Api, root: str) -> Any:
    return api.init_project(root).open_job({"a": 1}).init().sp.b


@pytest.mark.parametrize(
    "snippet",
    [_sp_underscore, _doc_underscore, _doc_dunder, _missing_key],
    ids=["statepoint-underscore-keys", "document-underscore-keys", "dunder", "missing-key"],
)
def test_attribute_access_as_signac(snippet: Any, tmp_path: Path) -> None:
    same_outcome(snippet, tmp_path)
