"""Jobs: ids, state points, init, moves, files and life cycle."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plams_cli.errors import DestinationExistsError, JobsCorruptedError, WorkspaceError
from plams_cli.workspace import (
    AmbiguousJobIdError,
    InvalidKeyError,
    JobNotFoundError,
    KeyTypeError,
    NumpyConversionWarning,
    Project,
    StatepointKeyError,
    Workspace,
    calc_id,
)


@pytest.mark.parametrize(
    ("statepoint", "expected"),
    [
        ({"a": 1}, "42b7b4f2921788ea14dac5566e6f06d0"),
        ({"b": 2, "a": 1}, calc_id({"a": 1, "b": 2})),
        ({}, "99914b932bd37a50b983c5e7c90ae93b"),
    ],
    ids=["signac-known-answer", "key-order-ignored", "empty"],
)
def test_id_is_md5_of_sorted_json(ws: Workspace, statepoint: dict[str, Any], expected: str) -> None:
    assert ws.open_job(statepoint).id == expected


def test_open_creates_nothing_init_creates(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    assert not os.path.exists(job.path)
    assert job not in ws
    job.init()
    assert job in ws and len(ws) == 1
    with open(job.fn("signac_statepoint.json")) as file:
        assert json.load(file) == {"a": 1}
    assert job.path == os.path.join(ws.root, "workspace", "42b7b4f2921788ea14dac5566e6f06d0")


@pytest.mark.parametrize("access", ["doc", "with"], ids=["reading-doc", "entering-with"])
def test_doc_and_with_initialise(ws: Workspace, access: str) -> None:
    job = ws.open_job({"a": 2})
    if access == "doc":
        assert dict(job.doc) == {}
    else:
        with job:
            assert os.getcwd() == job.path
    assert job in ws


def test_with_job_returns_to_previous_folder(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with ws.open_job({"a": 1}) as job:
        Path("out.txt").write_text("x")
    assert os.getcwd() == str(tmp_path)
    assert job.isfile("out.txt") and not job.isfile("missing.txt")


def test_open_by_id_and_prefix(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    assert ws.open_job(id=job.id) == job
    assert ws.open_job(id=job.id[:6]).statepoint() == {"a": 1}


@pytest.mark.parametrize("bad", ["0" * 32, "zz", "ffff"], ids=["unknown-full", "not-hex", "no-prefix-match"])
def test_open_unknown_id_raises_keyerror(ws: Workspace, bad: str) -> None:
    ws.open_job({"a": 1}).init()
    with pytest.raises(KeyError) as info:
        ws.open_job(id=bad)
    assert isinstance(info.value, JobNotFoundError)
    assert str(info.value) == info.value.args[0]  # the message, not KeyError's repr of it


def test_ambiguous_prefix_raises_lookuperror(ws: Workspace) -> None:
    ids = {ws.open_job({"a": i}).init().id for i in range(40)}
    first = sorted(ids)[0][0]
    assert sum(i.startswith(first) for i in ids) > 1
    with pytest.raises(LookupError) as info:
        ws.open_job(id=first)
    assert isinstance(info.value, AmbiguousJobIdError)


def test_statepoint_access_nested_and_copy(ws: Workspace) -> None:
    job = ws.open_job({"a": 1, "b": {"c": [1, 2]}})
    assert job.sp.a == 1 and job.sp["a"] == 1
    assert job.sp.b.c == [1, 2]
    copy = job.statepoint()
    copy["a"] = 99
    assert job.sp.a == 1 and type(copy) is dict


def test_statepoint_change_moves_folder(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    job.doc.x = 5
    old = job.path
    job.sp.a = 2
    assert job.id == calc_id({"a": 2})
    assert not os.path.exists(old) and os.path.isdir(job.path)
    assert job.doc.x == 5
    with open(job.fn("signac_statepoint.json")) as file:
        assert json.load(file) == {"a": 2}
    assert ws.find_job_ids() == [job.id]


def test_nested_statepoint_change_moves(ws: Workspace) -> None:
    job = ws.open_job({"a": {"b": 1}}).init()
    job.sp.a.b = 2
    assert job.statepoint() == {"a": {"b": 2}}
    assert ws.open_job(id=job.id).statepoint() == {"a": {"b": 2}}


def _set_a(job: Any) -> None:
    job.sp.a = 2


def _set_nested(job: Any) -> None:
    job.sp.b.c = 2


MOVED_A = {"a": 2, "b": {"c": 1}}
MOVED_C = {"a": 1, "b": {"c": 2}}


@pytest.mark.parametrize(
    ("change", "target"),
    [
        (_set_a, MOVED_A),
        (lambda job: job.update_statepoint({"a": 2}, overwrite=True), MOVED_A),
        (lambda job: job.reset_statepoint(MOVED_A), MOVED_A),
        (_set_nested, MOVED_C),
        (lambda job: job.update_statepoint({"b": {"c": 2}}, overwrite=True), MOVED_C),
    ],
    ids=["sp-attribute", "update_statepoint", "reset_statepoint", "nested-sp", "update-nested"],
)
def test_move_onto_existing_job_changes_nothing(
    ws: Workspace, change: Callable[[Any], None], target: dict[str, Any]
) -> None:
    job = ws.open_job({"a": 1, "b": {"c": 1}}).init()
    job.doc.mine = True
    other = ws.open_job(target).init()
    other.doc.theirs = [1, 2]
    before = {name: sorted(os.listdir(j.path)) for name, j in (("job", job), ("other", other))}
    with pytest.raises(DestinationExistsError) as info:
        change(job)
    assert isinstance(info.value, OSError) and info.value.destination == other.id
    assert job.id == calc_id({"a": 1, "b": {"c": 1}}) and job.statepoint() == {"a": 1, "b": {"c": 1}}
    fresh = Workspace(ws.root)
    assert fresh.open_job(id=job.id).statepoint() == {"a": 1, "b": {"c": 1}}
    assert fresh.open_job(id=job.id).doc() == {"mine": True}
    assert fresh.open_job(id=other.id).statepoint() == target
    assert fresh.open_job(id=other.id).doc() == {"theirs": [1, 2]}
    assert {n: sorted(os.listdir(j.path)) for n, j in (("job", job), ("other", other))} == before
    fresh.check()


def test_update_statepoint(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    job.update_statepoint({"b": 2})
    assert job.statepoint() == {"a": 1, "b": 2}
    with pytest.raises(KeyError) as info:
        job.update_statepoint({"a": 5})
    assert isinstance(info.value, StatepointKeyError)
    assert job.sp.a == 1
    job.update_statepoint({"a": 5}, overwrite=True)
    assert job.statepoint() == {"a": 5, "b": 2}


def test_reset_statepoint(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    job.reset_statepoint({"z": 0})
    assert job.statepoint() == {"z": 0} and job in ws and len(ws) == 1


@pytest.mark.parametrize(
    ("statepoint", "error"),
    [({1: 2}, TypeError), ({"a.b": 1}, ValueError), ({"a": object()}, TypeError)],
    ids=["int-key", "dotted-key", "not-json"],
)
def test_bad_statepoints_rejected(ws: Workspace, statepoint: dict[Any, Any], error: type) -> None:
    with pytest.raises(error):
        ws.open_job(statepoint)


def test_remove_clear_reset(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    job.doc.x = 1
    Path(job.fn("file.txt")).write_text("x")
    os.mkdir(job.fn("sub"))
    job.clear()
    assert job in ws and not job.isfile("file.txt") and not os.path.exists(job.fn("sub"))
    assert dict(job.doc) == {}
    job.remove()
    assert job not in ws and len(ws) == 0
    job.reset()
    assert job in ws


def test_corrupted_statepoint_detected_and_repaired(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    Path(job.fn("signac_statepoint.json")).write_text("corrupted")
    fresh = ws.open_job({"a": 1})
    with pytest.raises(JobsCorruptedError):
        fresh.init()
    with pytest.raises(JobsCorruptedError):
        ws.check()
    fresh.init(force=True)
    ws.check()


def test_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace(tmp_path)


def test_iteration_and_len(ws: Workspace) -> None:
    jobs = {ws.open_job({"i": i}).init() for i in range(5)}
    assert len(ws) == 5
    assert set(ws) == jobs
    assert sorted(j.sp.i for j in ws) == list(range(5))


def test_numpy_and_tuple_values_normalised(ws: Workspace) -> None:
    import numpy as np
    with pytest.warns(NumpyConversionWarning):  # as signac warns
        job = ws.open_job({"a": np.int64(3), "t": (1, 2)})
    assert job.id == calc_id({"a": 3, "t": [1, 2]})
    assert job.statepoint() == {"a": 3, "t": [1, 2]}


def test_project_is_an_alias(tmp_path: Path) -> None:
    assert Project is Workspace
    project = Project(tmp_path, create=True)
    job = project.open_job({"a": 1}).init()
    assert isinstance(project, Workspace) and job in Workspace(tmp_path)
    assert [j.id for j in Project(tmp_path)] == [job.id]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b"garbage\n", "cannot read .*line 1 is neither 'key = value' nor a \\[section\\]"),
        (b"\xff\xfe\x00junk", "cannot read .*not a text file"),
        (b"schema_version = two\n", "cannot read .*schema_version is 'two', not a number"),
        (b"schema_version = 1\n", "schema version 1 .*migrate"),
        (b"", "schema version 1 .*migrate"),
        (b"schema_version = 3\n", "schema version 3, newer .*update plams-cli"),
    ],
    ids=["garbage", "binary", "not-a-number", "version-1", "empty-is-version-1", "newer"],
)
def test_config_problems_are_named(tmp_path: Path, config: bytes, message: str) -> None:
    (tmp_path / ".signac").mkdir()
    (tmp_path / ".signac" / "config").write_bytes(config)
    with pytest.raises(WorkspaceError, match=message) as info:
        Workspace(tmp_path)
    if "cannot read" in message:
        assert "migrate" not in str(info.value)


def test_config_comments_sections_and_quotes_are_read(tmp_path: Path) -> None:
    (tmp_path / ".signac").mkdir()
    (tmp_path / ".signac" / "config").write_text(
        "# made by hand\nschema_version = '2'  # signac 2\n\n[flow]\nschema_version = 9\n"
    )
    assert len(Workspace(tmp_path)) == 0


NOT_STRING_KEYS = [
    (lambda job: job.update_statepoint({1: 2}), "update_statepoint"),
    (lambda job: job.update_statepoint({"n": {1: 2}}), "update-nested"),
    (lambda job: job.reset_statepoint({"a": 1, 1: 2}), "reset_statepoint"),
    (lambda job: setattr(job, "sp", {"a": 1, 1: 2}), "sp-assign"),
    (lambda job: setattr(job.sp, "n", {1: 2}), "sp-attr-nested"),
    (lambda job: job.doc.update({1: 2}), "doc-update"),
    (lambda job: setattr(job.doc, "d", {"x": {1: 2}}), "doc-nested"),
]


@pytest.mark.parametrize("change", [c for c, _ in NOT_STRING_KEYS], ids=[i for _, i in NOT_STRING_KEYS])
def test_keys_that_are_not_strings_are_refused(ws: Workspace, change: Callable[[Any], Any]) -> None:
    job = ws.open_job({"a": 1}).init()
    with pytest.raises(TypeError, match="keys must be strings, not int: 1") as info:
        change(job)
    assert isinstance(info.value, KeyTypeError)  # signac raises its own KeyTypeError
    assert job.statepoint() == {"a": 1} and job.doc() == {}
    assert [j.statepoint() for j in Workspace(ws.root)] == [{"a": 1}]


def test_dotted_key_in_update_is_refused(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    with pytest.raises(ValueError, match="dots") as info:
        job.update_statepoint({"b.c": 1})
    assert isinstance(info.value, InvalidKeyError)
    assert job.statepoint() == {"a": 1}
