"""A signac 2 script runs unchanged on plams_cli.workspace: each snippet, side by side.

Every case runs the same code against signac 2.4 and against ours (see
``_side_by_side.py``) and asserts the same outcome: the value returned, or the kind of
error raised (built-in category and signac's error name).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as Api
from typing import Any, cast

import numpy as np
import pytest
from click.testing import CliRunner

from plams_cli.cli.main import cli
from plams_cli.workspace import JobsCursor, Workspace

from ._side_by_side import captured, rel, same_outcome

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _three(api: Api, root: str) -> Any:
    project = api.init_project(root)
    for a in range(3):
        job = project.open_job({"a": a, "b": a % 2, "n": {"c": [a, 1]}}).init()
        job.doc.d = -a
    return project


# ---------------------------------------------------------------------- errors
def destination_exists_is_a_runtime_error(api: Api, root: str) -> Any:
    project = api.init_project(root)
    project.open_job({"a": 1}).init()
    job = project.open_job({"a": 2}).init()
    try:
        job.sp.a = 1
    except RuntimeError as exc:
        return isinstance(exc, api.DestinationExistsError), os.path.isdir(job.path)
    return "no error"


def corrupted_jobs_are_a_runtime_error(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job = project.open_job({"a": 1}).init()
    Path(job.fn("signac_statepoint.json")).write_text("corrupted")
    try:
        project.check()
    except RuntimeError as exc:
        return isinstance(exc, api.JobsCorruptedError), cast(Any, exc).job_ids
    return "no error"


def corrupted_statepoint_raises_when_read(api: Api, root: str) -> Any:
    job_id = api.init_project(root).open_job({"a": 1}).init().id
    Path(root, "workspace", job_id, "signac_statepoint.json").write_text("corrupted")
    job = api.get_project(root).open_job(id=job_id)
    return job.statepoint


def get_project_of_a_plain_folder(api: Api, root: str) -> Any:
    return api.get_project(root)


def open_project_of_a_plain_folder(api: Api, root: str) -> Any:
    return api.Project(root)


def init_creates_the_workspace_folder(api: Api, root: str) -> Any:
    project = api.init_project(root)
    return os.path.isdir(os.path.join(root, "workspace")), str(project) == root, len(project)


def broken_workspace_link(api: Api, root: str) -> Any:
    project = api.init_project(root)
    os.rmdir(project.workspace)
    os.symlink(os.path.join(root, "gone"), project.workspace)
    return list(project.find_jobs())


def workspace_is_a_file(api: Api, root: str) -> Any:
    project = api.init_project(root)
    os.rmdir(project.workspace)
    Path(project.workspace).write_text("not a folder")
    return list(project.find_jobs())


def signac_1_project_is_refused_and_kept(api: Api, root: str) -> Any:
    Path(root, "signac.rc").write_text("project = old\nworkspace_dir = workspace\n")
    try:
        api.init_project(root)
    except api.IncompatibleSchemaVersion:
        return "refused", sorted(os.listdir(root)), Path(root, "signac.rc").read_text()
    return "accepted"


def signac_1_project_found_by_get_project(api: Api, root: str) -> Any:
    Path(root, "signac.rc").write_text("project = old\n")
    os.mkdir(os.path.join(root, "sub"))
    return api.get_project(os.path.join(root, "sub"))


# ---------------------------------------------------------------------- the cursor
def cursor_without_filter(api: Api, root: str) -> Any:
    project = _three(api, root)
    cursor = project.find_jobs()
    new = project.open_job({"a": 10}).init()
    seen = [len(cursor), new in cursor, sorted(job.sp.a for job in cursor)]
    newer = project.open_job({"a": 11}).init()
    # len and in ask the workspace again; the ids iteration walks are kept once read.
    seen += [len(cursor), newer in cursor, len(list(cursor)), type(cursor).__name__]
    return seen


def cursor_with_filter(api: Api, root: str) -> Any:
    project = _three(api, root)
    cursor = project.find_jobs({"a": {"$gt": 0}})
    first = project.open_job({"a": 1, "b": 1, "n": {"c": [1, 1]}})
    return (
        len(cursor),
        first in cursor,
        project.open_job({"a": 0, "b": 0, "n": {"c": [0, 1]}}) in cursor,
        sorted(job.sp.a for job in cursor),
        sorted(job.sp.a for job in cursor),  # iterated twice
        bool(cursor),
        cursor[0].id in {job.id for job in cursor},
        len(list(cursor[0:2])),
        cursor == project.find_jobs({"a": {"$gt": 0}}),
        cursor == project.find_jobs({"a": 0}),
    )


GROUP_KEYS = [
    ("b", None),
    ("sp.b", None),
    ("doc.d", None),
    (("b", "doc.d"), None),
    ("missing", None),
    ("missing", -1),
    (("b", "missing"), "x"),
    (None, None),
]


def groupby_keys(api: Api, root: str) -> Any:
    project = _three(api, root)
    project.open_job({"other": 1}).init()
    result = []
    for key, default in GROUP_KEYS:
        for source in (project, project.find_jobs({"a": {"$exists": True}})):
            result.append(
                [(k, sorted(j.id for j in group)) for k, group in source.groupby(key, default=default)]
            )
    by_parity = project.groupby(lambda job: job.sp.get("a", 1) % 2)
    result.append([(k, sorted(j.id for j in group)) for k, group in by_parity])
    return result


def groupby_mixed_types(api: Api, root: str) -> Any:
    project = api.init_project(root)
    project.open_job({"k": 1}).init()
    project.open_job({"k": "x"}).init()
    return list(project.groupby("k"))


@pytest.mark.parametrize("options", [{}, {"flatten": True}, {"usecols": ["sp.a", "doc.d"]},
                                     {"sp_prefix": "", "doc_prefix": "document:", "flatten": True},
                                     {"usecols": lambda column: column.endswith("b")}],
                         ids=["plain", "flatten", "usecols", "prefixes", "usecols-callable"])  # fmt: skip
def test_to_dataframe_as_signac(tmp_path: Path, options: dict[str, Any]) -> None:
    def frame(api: Api, root: str) -> Any:
        project = _three(api, root)
        project.open_job({"other": "x"}).init().doc.note = "only here"
        df = project.find_jobs().to_dataframe(**options).sort_index()
        columns = sorted(df.columns)
        whole = project.to_dataframe(**options).sort_index()
        return columns, df[columns].to_json(), whole[columns].to_json()

    columns, _, _ = same_outcome(frame, tmp_path)[1]
    assert columns  # a frame with columns, not an empty one on both sides


def html_view(api: Api, root: str) -> Any:
    project = _three(api, root)
    html = project.find_jobs({"b": 0})._repr_html_()
    return html.startswith("JobsCursor(project="), html.count("<tr>"), "filter={'b': 0}" in html


# ---------------------------------------------------------------------- jobs
def copy_follows_the_move(api: Api, root: str) -> Any:
    job = api.init_project(root).open_job({"a": 1}).init()
    twin = copy.copy(job)
    job.sp.a = 5
    other = copy.copy(twin)
    other.sp.b = 2
    return twin.id == job.id == other.id, twin.sp(), job.sp(), os.path.isdir(twin.path)


def cached_statepoint_is_read_only(api: Api, root: str) -> Any:
    job = api.init_project(root).open_job({"a": 1}).init()
    assert job.cached_statepoint["a"] == 1
    job.cached_statepoint["a"] = 2


def uninitialised_job_takes_an_existing_statepoint(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job = project.open_job({"a": 5}).init()
    other = project.open_job({"b": 1})
    other.statepoint = {"a": 5}
    return other.id == job.id, other.sp(), len(project), other == job


def repr_round_trips(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job = project.open_job({"a": 1, "s": "x", "n": None, "l": [1.5, True]}).init()
    again = eval(repr(job), dict(api.names))
    return again == job, again.id, again.sp(), eval(repr(project), dict(api.names)) == project


def file_name_constants(api: Api, root: str) -> Any:
    return api.Job.FN_STATE_POINT, api.Job.FN_DOCUMENT, api.Project.FN_DOCUMENT, api.Job.KEY_DATA


def open_and_close(api: Api, root: str) -> Any:
    start = os.getcwd()
    job = api.init_project(root).open_job({"a": 1})
    job.open()
    inside = os.getcwd() == job.path
    job.close()
    job.close()  # a second close does nothing
    return inside, os.getcwd() == start, job in api.get_project(root)


def numpy_values_warn(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job, opened = captured(lambda: project.open_job({"a": np.int64(3)}))
    _, doc_set = captured(lambda: setattr(job.doc, "x", np.float64(1.5)))
    _, doc_array = captured(lambda: job.doc.update(arr=np.arange(3)))
    _, project_doc = captured(lambda: setattr(project.doc, "y", np.int32(2)))
    _, plain = captured(lambda: setattr(job.doc, "z", 1.5))
    kinds = [sorted(set(w)) for w in (opened, doc_set, doc_array, project_doc, plain)]
    return kinds, job.sp(), job.doc(), type(job.doc.x).__name__


# ---------------------------------------------------------------------- the project
def project_document(api: Api, root: str) -> Any:
    project = api.init_project(root)
    project.doc.a = 1
    project.document["b"] = {"c": [1, 2]}
    with open(os.path.join(root, "signac_project_document.json")) as file:
        on_disk = json.load(file)
    fresh = api.get_project(root)
    before = fresh.doc(), list(fresh.doc.b.c)
    fresh.doc = {"x": 1}
    project.document = {"y": {"z": 2}}
    return on_disk, before, api.get_project(root).document(), project.isfile(project.FN_DOCUMENT)


def project_data(api: Api, root: str) -> Any:
    project = api.init_project(root)
    project.data["x"] = 1.5
    project.data.y = "text"
    project.stores["other"]["z"] = 2
    project.stores.third.w = True
    with project.data:
        arrays = project.data["x"], project.data.y
    return (
        arrays,
        sorted(project.stores),
        project.isfile("signac_data.h5"),
        rel(project.fn("signac_data.h5"), root),
        dict(api.get_project(root).stores["other"]),
    )


def get_project_searches_up(api: Api, root: str) -> Any:
    project = api.init_project(root)
    deep = os.path.join(root, "a", "b")
    os.makedirs(deep)
    found = api.get_project(deep)
    try:
        api.get_project(deep, search=False)
    except LookupError:
        refused = True
    return found == project, found.path == root, refused


def get_project_of_a_missing_folder(api: Api, root: str) -> Any:
    return api.get_project(os.path.join(root, "nope"))


def get_job_from_inside(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job = project.open_job({"a": 1}).init()
    os.makedirs(job.fn("sub/deeper"))
    found = [api.get_job(job.fn("sub/deeper")), api.get_job(job.path)]
    nested = api.init_project(job.fn("inner"))  # a project inside a job folder
    inner_job = nested.open_job({"b": 2}).init()
    found.append(api.get_job(inner_job.fn(".")))
    return [(j.id, j.sp(), rel(j.project.path, root)) for j in found]


def get_job_outside_a_job(api: Api, root: str) -> Any:
    api.init_project(root)
    return api.get_job(root)


def min_len_unique_id(api: Api, root: str) -> Any:
    project = api.init_project(root)
    lengths = [project.min_len_unique_id()]
    for a in range(40):
        project.open_job({"a": a}).init()
        lengths.append(project.min_len_unique_id())
    return lengths


SCHEMA_STATEPOINTS: list[dict[str, Any]] = [
    {"a": 1, "b": {"c": "x", "d": [1, 2]}, "const": 0, "f": 1.5},
    {"a": 2, "b": {"c": "y", "d": [1, 2]}, "const": 0, "f": 2},
    {"a": "s", "b": {"c": "x"}, "const": 0, "e": {}},
    {"a": None, "const": 0, "f": True, "g": [[1], [2, 3]]},
    {"a": 3.5, "const": 0, "f": 1e-7, "many": 1},
]
SCHEMA_STATEPOINTS += [{"const": 0, "many": i} for i in range(2, 9)]


def detect_schema(api: Api, root: str) -> Any:
    project = api.init_project(root)
    jobs = [project.open_job(sp).init() for sp in SCHEMA_STATEPOINTS]

    def plain(schema: Any) -> Any:
        return {k: {t.__name__: sorted(map(repr, v)) for t, v in vals.items()} for k, vals in schema.items()}

    full = project.detect_schema()
    return (
        plain(full),
        plain(project.detect_schema(exclude_const=True)),
        plain(project.detect_schema(subset=[jobs[0], jobs[2].id])),
        str(full),
        full.format(depth=2),
        full.format(precision=1, max_num_range=3),
        repr(full),
        sorted(full.difference(project.detect_schema(subset=jobs[:2]))),
        len(full),
    )


def repair_from_the_cache(api: Api, root: str) -> Any:
    project = api.init_project(root)
    jobs = [project.open_job({"a": a}).init() for a in range(3)]
    project.update_cache()
    Path(jobs[0].fn("signac_statepoint.json")).write_text("corrupted")
    Path(jobs[1].fn("signac_statepoint.json")).write_text(json.dumps({"a": 99}))
    os.unlink(jobs[2].fn("signac_statepoint.json"))
    fresh = api.get_project(root)
    try:
        fresh.check()
    except api.JobsCorruptedError as exc:
        before = sorted(exc.job_ids)
    fresh.repair()
    fresh.check()
    again = api.get_project(root)
    return before == sorted(j.id for j in jobs), sorted(j.sp.a for j in again), len(again)


def _forget_caches(root: str) -> None:
    for name in os.listdir(os.path.join(root, ".signac")):
        if name != "config":  # forget every cache: the files are all there is
            os.unlink(os.path.join(root, ".signac", name))


def repair_moves_a_folder_to_its_id(api: Api, root: str) -> Any:
    project = api.init_project(root)
    job = project.open_job({"a": 1}).init()
    job.doc.kept = True
    Path(job.fn("signac_statepoint.json")).write_text(json.dumps({"a": 7}))
    _forget_caches(root)
    api.get_project(root).repair()
    again = api.get_project(root)
    moved = again.open_job({"a": 7})
    return moved in again, moved.doc(), sorted(os.listdir(again.workspace)) == [moved.id]


def repair_without_a_cache_fails(api: Api, root: str) -> Any:
    project = api.init_project(root)
    lost = project.open_job({"a": 2}).init()
    Path(lost.fn("signac_statepoint.json")).write_text("junk")
    _forget_caches(root)
    try:
        api.get_project(root).repair()
    except api.JobsCorruptedError as exc:
        return "failed", exc.job_ids == [lost.id]
    return "repaired"


CASES = [
    destination_exists_is_a_runtime_error,
    corrupted_jobs_are_a_runtime_error,
    corrupted_statepoint_raises_when_read,
    get_project_of_a_plain_folder,
    open_project_of_a_plain_folder,
    init_creates_the_workspace_folder,
    broken_workspace_link,
    workspace_is_a_file,
    signac_1_project_is_refused_and_kept,
    signac_1_project_found_by_get_project,
    cursor_without_filter,
    cursor_with_filter,
    groupby_keys,
    groupby_mixed_types,
    html_view,
    copy_follows_the_move,
    cached_statepoint_is_read_only,
    uninitialised_job_takes_an_existing_statepoint,
    repr_round_trips,
    file_name_constants,
    open_and_close,
    numpy_values_warn,
    project_document,
    project_data,
    get_project_searches_up,
    get_project_of_a_missing_folder,
    get_job_from_inside,
    get_job_outside_a_job,
    min_len_unique_id,
    detect_schema,
    repair_from_the_cache,
    repair_moves_a_folder_to_its_id,
    repair_without_a_cache_fails,
]


@pytest.mark.parametrize("snippet", CASES, ids=[c.__name__ for c in CASES])
def test_same_outcome_as_signac(snippet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    same_outcome(snippet, tmp_path)


def test_errors_keep_their_other_categories(ws: Workspace) -> None:
    # Ours stay OSErrors too (code written for earlier plams-cli catches them so), and a
    # refused move leaves the job object as it was (signac's shows the refused state point).
    ws.open_job({"a": 1}).init()
    job = ws.open_job({"a": 2}).init()
    with pytest.raises(OSError) as info:
        job.sp.a = 1
    assert isinstance(info.value, RuntimeError) and job.sp() == {"a": 2}
    assert Workspace(ws.root).open_job(id=job.id).sp() == {"a": 2}


def test_find_jobs_is_a_cursor_that_raises_at_once(ws: Workspace) -> None:
    # The deliberate difference: a filter is applied when find_jobs is called (signac:
    # on first use), so a bad filter or a corrupted job raises from find_jobs itself.
    ws.open_job({"a": 1}).init()
    cursor = ws.find_jobs({"a": 1})
    assert isinstance(cursor, JobsCursor) and len(cursor) == 1
    ws.open_job({"a": 1, "b": 2}).init()
    ws.open_job({"a": 1, "c": 2})
    assert len(cursor) == 1 and len(ws.find_jobs({"a": 1})) == 2


def test_schema_command_prints_what_signac_prints(tmp_path: Path) -> None:
    root = tmp_path / "project"
    project = Workspace(root, create=True)
    for sp in SCHEMA_STATEPOINTS:
        project.open_job(sp).init()
    theirs = subprocess.run(
        [sys.executable, "-m", "signac", "schema"], cwd=root, capture_output=True, text=True, check=True
    )
    result = CliRunner().invoke(cli, ["workspace", "schema", "-w", str(root)])
    assert not result.exception, result.output
    assert result.stdout == theirs.stdout
    theirs_x = subprocess.run(
        [sys.executable, "-m", "signac", "schema", "-x", "-t", "2"],
        cwd=root, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = CliRunner().invoke(cli, ["workspace", "schema", "-w", str(root), "-x", "-t", "2"])
    assert result.stdout == theirs_x.stdout
    as_json = CliRunner().invoke(cli, ["workspace", "schema", "-w", str(root), "--json"])
    data = json.loads(as_json.stdout)
    assert data["b.d"] == {"list": [[1, 2]]} and data["many"]["int"] == list(range(1, 9))


def test_schema_command_outside_a_workspace(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["workspace", "schema", "-w", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # a wrong input (issue 11)
    assert "not a workspace" in result.stderr and "Traceback" not in result.output


def test_project_document_written_here_reads_in_signac(tmp_path: Path) -> None:
    import signac

    ws = Workspace(tmp_path, create=True)
    with ws.doc.locked():
        ws.doc.count = ws.doc.get("count", 0) + 1
    ws.data["x"] = np.arange(3)
    project = signac.get_project(str(tmp_path))
    assert project.doc() == {"count": 1}
    with project.data:
        assert project.data["x"][()].tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [".signac", ".signac_project_document.json.lock", "signac_data.h5",
         "signac_project_document.json", "workspace"]
    )  # fmt: skip
    shutil.rmtree(tmp_path / "workspace")
    assert len(Workspace(tmp_path)) == 0  # a workspace without its folder is empty
