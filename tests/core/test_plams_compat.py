"""Side by side with real PLAMS (PyPI ``plams`` 2026.104, ``import scm.plams``): issue 12.

Each test runs the same snippet against PLAMS and against plams_cli and asserts the same
outcome, or, for a deliberate difference named in the README ("Coming from PLAMS"),
asserts ours. PLAMS installs beside us (its console script is ``scm-plams``, its package
``scm``), so it is imported directly; its jobs run with their own JobManager in
``tmp_path`` and never touch our ``config``.
"""

from __future__ import annotations

import os
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import plams_cli
from plams_cli import Settings
from tests.needs import missing


def _reference() -> types.ModuleType:
    try:
        import scm.plams
    except ImportError:  # pragma: no cover - the test extra installs it
        missing("PLAMS is not installed: pip install 'plams==2026.104'")
    return cast(types.ModuleType, scm.plams)


P = _reference()
SETTINGS = [pytest.param(P.Settings, id="plams"), pytest.param(Settings, id="ours")]


# --- a realistic settings tree, built the same way with either class ---------------------
def build_tree(S: type, int_key: bool = True) -> Any:  # noqa: N803 - the Settings class under test
    s = S()
    s.input.ams.Task = "GeometryOptimization"
    s.input.ams.Properties.NormalModes = "Yes"
    s.input.ams.System.Atoms._1 = "O 0.0 0.0 0.0\nH 1.0 0.0 0.0\nH 0.0 1.0 0.0"
    s.input.ams.System.Charge = 0
    s.input.adf.Basis.Type = "TZ2P"
    s.input.adf.basis.core = "None"  # another case of an existing key: stored as "Basis"
    s.input.adf.XC.GGA = "PBE"
    s.input.adf.Constraints = [S({"Atom": 1, "Dist": 1.0}), S({"Block": {"b": [1, 2]}}), 3]
    if int_key:  # PLAMS's CP2K writer upper-cases every key
        s.input.adf[1] = "an int key"
    s.input.adf.Empty = S()
    s.input.force_eval.subsys.kind.O = S({"basis_set": "DZVP", "potential": "GTH-PBE"})
    s.input.force_eval.subsys.kind.H.basis_set = "DZVP"
    s.input.force_eval.dft.qs.method = "GPW"
    s.input.force_eval.dft.at_if = S({"${A} == 1": S({"print": "on"})})
    s.input.contrl.scftyp = "rhf"
    s.input.contrl.runtyp = "energy"
    s.runscript.nproc = 4
    s.zeta = True
    s.alpha = "x"
    defaults = S({"pickle": True, "keep": "all", "runscript": {"shebang": "#!/bin/sh"}})
    s.soft_update(defaults)
    return s.copy()  # what Job(settings=s) does


def _user_get_input(settings: Any, S: type[Any]) -> str:  # noqa: N803
    """A get_input as PLAMS users write them: iterate keys, recurse into branches, print values."""

    def block(name: Any, value: Any, indent: str) -> str:
        if isinstance(value, S):
            return f"{indent}{name}\n" + "".join(block(k, value[k], indent + "  ") for k in value) + f"{indent}End\n"
        if isinstance(value, list):
            return "".join(block(name, item, indent) for item in value)
        return f"{indent}{name} {value}\n"

    return "".join(block(key, settings.input[key], "") for key in settings.input)


def _items_dump(settings: Any, S: type) -> str:  # noqa: N803
    """The other walk input generators use: items() (insertion order)."""
    return "".join(f"{k}={_items_dump(v, S) if isinstance(v, S) else v!s};" for k, v in settings.items())


@pytest.mark.parametrize("render", [
    pytest.param(lambda s, S: str(s), id="str"),
    pytest.param(lambda s, S: repr(s), id="repr"),
    pytest.param(lambda s, S: str(s.input.adf.Constraints), id="list-of-settings"),
    pytest.param(lambda s, S: repr(list(s)) + repr(list(s.input.adf)), id="iteration"),
    pytest.param(_user_get_input, id="user-get_input"),
    pytest.param(_items_dump, id="items"),
    pytest.param(lambda s, S: str(s.merge(S({"b": 1, "a": {"z": 1, "y": 2}}))), id="merge"),
    pytest.param(lambda s, S: str(__import__("copy").deepcopy(s)), id="deepcopy"),
])
def test_settings_text_is_byte_identical(render: Callable[[Any, type], str]) -> None:
    ours, theirs = build_tree(Settings), build_tree(P.Settings)
    assert render(ours, Settings) == render(theirs, P.Settings)


@pytest.mark.parametrize("interface", [
    pytest.param(("scm.plams.interfaces.thirdparty.cp2k", "Cp2kJob"), id="cp2k"),
    pytest.param(("scm.plams.interfaces.thirdparty.gamess", "GamessJob"), id="gamess"),
])
def test_plams_input_generators_write_the_same_file(interface: tuple[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PLAMS's own get_input() (CP2K, GAMESS), run on a PLAMS job and on ours, writes the same input."""
    import importlib

    module = importlib.import_module(interface[0])
    job_class = getattr(module, interface[1])
    theirs = job_class(name="calc", settings=build_tree(P.Settings, int_key=False)).get_input()

    class Ours(plams_cli.SingleJob):
        get_input = job_class.get_input
        print_molecule = getattr(job_class, "print_molecule", None)

    monkeypatch.setattr(module, "Settings", Settings)  # its isinstance() checks, for our class
    ours = Ours(name="calc", settings=build_tree(Settings, int_key=False)).get_input()
    assert ours == theirs and len(ours) > 100


def test_get_nested_and_set_nested_signatures() -> None:
    outcomes = []
    for S in (P.Settings, Settings):  # noqa: N806
        s = S()
        s.a.b = [S({"c": 1})]
        row: list[Any] = [s.get_nested(("a", "b", 0, "c")), s.get_nested(("a", "x"), False, "dflt"),
                          s.get_nested(("a", "x"), default=7), "x" in s.a]
        try:
            s.get_nested(("a", "x"), True)
        except KeyError:
            row.append("KeyError")
        s.set_nested(("a", "new", "leaf"), 1)
        try:
            s.set_nested(("q", "r"), 1, True)
        except KeyError:
            row.append("KeyError")
        s.set_nested(("a", "b", 0, "c"), 2, True)
        row += [str(s), s.contains_nested(("a", "new")), s.pop_nested(("a", "new", "leaf")), "q" in s]
        outcomes.append(row)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("S", SETTINGS)
def test_suppress_missing_raises_key_error_inside(S: type) -> None:  # noqa: N803
    s = S()
    s.a.b = 1
    with s.suppress_missing():
        with pytest.raises(KeyError):
            s.x.y = 1
        assert s.a.b == 1 and s.A.b == 1
    assert "x" not in s
    s.x.y = 2
    assert s.x.y == 2


def test_suppress_missing_is_per_thread() -> None:
    """Deliberate difference: PLAMS switches automatic branches off in every thread."""
    seen: list[str] = []

    def other() -> None:
        t = Settings()
        t.p.q = 1
        seen.append(str(t))

    with Settings.suppress_missing():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == ["p: \t\n  q: \t1\n"]


@pytest.mark.parametrize("S", SETTINGS)
def test_plus_equals_soft_updates_in_place(S: type) -> None:  # noqa: N803
    s = S({"b": 1, "n": {"x": 1}})
    same = s
    s += S({"b": 2, "a": 3, "n": {"y": 2}})
    assert s is same and str(s) == "b: \t1\nn: \t\n  x: \t1\n  y: \t2\na: \t3\n"


@pytest.mark.parametrize("S", SETTINGS)
def test_dir_lists_identifier_keys_only(S: type) -> None:  # noqa: N803
    names: set[object] = set(dir(S({"ok": 1, "two words": 2, 3: 3, "_x": 4})))
    assert {"ok", "_x"} <= names and "two words" not in names and 3 not in names and "copy" in names


def test_copy_is_deep_where_plams_shares_leaves() -> None:
    """Deliberate difference: PLAMS's copy() shares leaf values (lists) with the original."""
    results = []
    for S in (P.Settings, Settings):  # noqa: N806
        s = S()
        s.a.values_ = [1]
        c = s.copy()
        c.a.values_.append(2)
        results.append(s.a.values_)
    assert results == [[1, 2], [1]]


# --- jobs side by side -----------------------------------------------------------------------
class _Recorder:
    """get_input / prerun / get_runscript shared by both job classes (bound below)."""

    def prerun(self: Any) -> None:
        self.settings.input.from_prerun = str(self.status)

    def get_input(self: Any) -> str:
        self.seen = [*getattr(self, "seen", []), (str(self.status), "pickle" in self.settings,
                                                   os.path.isdir(self.path), self.settings.input.from_prerun)]
        return "".join(f"{key} {self.settings.input[key]}\n" for key in self.settings.input)

    def get_runscript(self: Any) -> str:
        body = f"cat {self._filename('inp')}\necho 'BEGIN a'\necho 1 2\necho 'END a'\necho 'BEGIN b'\n"
        return body + "echo 3 4 5\necho 'END b'\n"


class PlamsJob(P.SingleJob):  # type: ignore[misc,name-defined]
    prerun = _Recorder.prerun
    get_input = _Recorder.get_input
    get_runscript = _Recorder.get_runscript


class OurJob(plams_cli.SingleJob):
    prerun = _Recorder.prerun
    get_input = _Recorder.get_input
    get_runscript = _Recorder.get_runscript


@pytest.fixture
def plams_manager(tmp_path: Path) -> Iterator[Any]:
    P.config.log.stdout = 0
    manager = P.JobManager(P.config.jobmanager, path=str(tmp_path), folder="plams_ref")
    yield manager
    manager._clean()


def _make(job_class: type) -> Any:
    job = job_class(name="calc")
    job.settings.input.zeta = 1
    job.settings.input.alpha = "a"
    job.settings.runscript.pre = "echo pre"
    job.settings.runscript.post = "echo post"
    return job


@pytest.fixture
def both(plams_manager: Any, run_in: Any) -> tuple[Any, Any]:
    theirs, ours = _make(PlamsJob), _make(OurJob)
    theirs.run(jobmanager=plams_manager)
    ours.run()
    assert theirs.ok() and ours.ok()
    return theirs, ours


@pytest.mark.parametrize("kind", ["inp", "run", "out"])
def test_job_files_are_byte_identical(both: tuple[Any, Any], kind: str) -> None:
    theirs, ours = both
    read = [Path(job.path, job._filename(kind)).read_bytes() for job in both]
    assert read[0] == read[1]
    if kind == "run":
        assert read[1] == (b"#!/bin/sh\n\necho pre\n\n" + ours.get_runscript().encode() + b"echo post\n\n")


def test_runscript_body_without_newline_before_post() -> None:
    """Deliberate difference: PLAMS glues ``post`` to a body's last line; we put a newline between."""
    texts = []
    for job_class in (PlamsJob, OurJob):
        job = job_class(name="glued")
        job.settings.runscript.shebang = "#!/bin/sh"
        job.settings.runscript.post = "echo post"
        job.get_runscript = lambda: "echo body"  # type: ignore[method-assign]
        texts.append(job.full_runscript())
    assert texts == ["#!/bin/sh\n\necho bodyecho post\n\n", "#!/bin/sh\n\necho body\necho post\n\n"]


@pytest.mark.parametrize("keys", [("pre", "post"), ("Pre", "POST"), ("PRE", "post"), ("pre", None), (None, "Post")])
def test_runscript_pre_and_post_in_any_case_as_plams_writes_them(keys: tuple[str | None, str | None]) -> None:
    texts = []
    for job_class in (PlamsJob, OurJob):
        job = job_class(name="cased")
        job.settings.runscript.shebang = "#!/bin/bash"
        job.settings.runscript.stdout_redirect = False
        for key, value in zip(keys, ("echo before", "echo after"), strict=True):
            if key is not None:
                job.settings.runscript[key] = value
        texts.append(job.full_runscript())
    assert texts[0] == texts[1]
    assert ("echo before" in texts[1]) == (keys[0] is not None) and ("echo after" in texts[1]) == (keys[1] is not None)


def test_prerun_and_get_input_see_plams_state(both: tuple[Any, Any]) -> None:
    """PLAMS calls get_input() twice (hash, then write); we call it once, in the state of its first call."""
    theirs, ours = both
    assert theirs.seen == [("registered", True, True, "registered"), ("running", True, True, "registered")]
    assert ours.seen == [theirs.seen[0]]


@pytest.mark.parametrize("call", [
    pytest.param(lambda r: r.get_output_chunk(begin="BEGIN", end="END"), id="chunk-all"),
    pytest.param(lambda r: r.get_output_chunk(begin="BEGIN", end="END", match=2, inc_begin=True), id="chunk-2"),
    pytest.param(lambda r: r.get_output_chunk(end="END", inc_end=True), id="chunk-from-start"),
    pytest.param(lambda r: r.get_output_chunk(begin="BEGIN b", process=lambda x: x.upper()), id="chunk-process"),
    pytest.param(lambda r: r.awk_output("{s += NF} END {print s}"), id="awk-output"),
    pytest.param(lambda r: r.awk_file("$JN.in", "$1 == x {print $2}", x="zeta"), id="awk-variable"),
    pytest.param(lambda r: r.awk_file("$JN.out", "{print $1 +}"), id="awk-error-empty"),
    pytest.param(lambda r: r.grep_output("END"), id="grep"),
])
def test_results_readers_agree(both: tuple[Any, Any], call: Callable[[Any], Any]) -> None:
    theirs, ours = both
    assert call(ours.results) == call(theirs.results)


def test_awk_progfile(both: tuple[Any, Any], tmp_path: Path) -> None:
    program = tmp_path / "count.awk"
    program.write_text("END {print NR}\n")
    lines = str(len(both[1].results.read_file("$JN.out").splitlines()))
    assert [job.results.awk_output(progfile=str(program)) for job in both] == [[lines], [lines]]
    with pytest.raises(P.FileError):
        both[0].results.awk_output(progfile=str(tmp_path / "none.awk"))
    with pytest.raises(plams_cli.FileError):
        both[1].results.awk_output(progfile=str(tmp_path / "none.awk"))


def test_missing_file_is_a_results_error_and_a_file_error(both: tuple[Any, Any]) -> None:
    theirs, ours = both
    with pytest.raises(P.ResultsError):
        theirs.results.read_file("$JN.foo")
    for kind in (plams_cli.ResultsError, plams_cli.FileError, FileNotFoundError):
        with pytest.raises(kind):
            ours.results.read_file("$JN.foo")
    with pytest.raises(P.FileError):
        theirs.results["$JN.foo"]
    with pytest.raises(plams_cli.FileError):
        ours.results["$JN.foo"]


def test_add_to_class_and_add_to_instance(both: tuple[Any, Any]) -> None:
    theirs, ours = both
    answers = []
    for job, results_class, module in ((theirs, P.Results, P), (ours, plams_cli.Results, plams_cli)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # PLAMS 2026 deprecates add_to_class

            @module.add_to_class(results_class)  # type: ignore[untyped-decorator]
            def first_word(self: Any) -> str:
                return str(self.read_file("$JN.out").split()[0])

        @module.add_to_instance(job.results)  # type: ignore[untyped-decorator]
        def last_word(self: Any) -> str:
            return str(self.read_file("$JN.out").split()[-1])

        @module.add_to_instance(job)  # type: ignore[untyped-decorator]
        def shout(self: Any) -> str:
            return str(self.name.upper())

        answers.append((first_word, job.results.first_word(), job.results.last_word(), job.shout(),
                        hasattr(results_class(job), "last_word")))
        delattr(results_class, "first_word")
    assert answers[0] == answers[1] == (None, "pre", "post", "CALC", False)


def test_added_results_method_waits_for_the_job(run_in: Any) -> None:
    """A method added to Results waits for the job's files, like the class's own methods."""
    runner = plams_cli.JobRunner(parallel=True)

    @plams_cli.add_to_class(plams_cli.Results)
    def text(self: Any) -> str:
        return str(self.read_file("$JN.out"))

    try:
        job = plams_cli.ShellJob(name="slow", runscript="sleep 0.5; echo done\n")
        results = job.run(jobrunner=runner)
        assert cast(Any, results).text() == "done\n" and job.ok()
    finally:
        delattr(plams_cli.Results, "text")


def test_load_folder_or_file_and_strict_class(both: tuple[Any, Any], run_in: Any) -> None:
    theirs, ours = both
    outcome = []
    for job, base, job_class in ((theirs, P.SingleJob, PlamsJob), (ours, plams_cli.SingleJob, OurJob)):
        from_folder = job_class.load(job.path)
        from_file = job_class.load(os.path.join(job.path, "calc.dill"))
        with pytest.raises(ValueError, match="strict=False"):
            base.load(job.path)
        loose = base.load(job.path, strict=False)
        outcome.append([type(x) is job_class for x in (from_folder, from_file, loose)]
                       + [str(from_folder.status), sorted(from_file.results.files) == sorted(job.results.files)])
    assert outcome[0] == outcome[1] == [True, True, True, "successful", True]


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_load_refuses_a_path_without_a_saved_job(tmp_path: Path, where: str) -> None:
    path = tmp_path / "job"
    if where == "empty":
        path.mkdir()
    with pytest.raises(P.FileError):
        P.SingleJob.load(str(path))
    with pytest.raises(plams_cli.FileError):
        plams_cli.SingleJob.load(str(path))


def _external_folder(root: Path) -> Path:
    folder = root / "outside"
    folder.mkdir(parents=True)
    (folder / "outside.out").write_text("BEGIN x\nEnergy -1.5\nEND x\n")
    (folder / "outside.in").write_text("task energy\n")
    (folder / "notes.txt").write_text("hand made\n")
    return folder


@pytest.mark.parametrize("finalize", [False, True], ids=["copied", "finalized"])
def test_load_external_adopts_a_folder(tmp_path: Path, fresh_config: Any, finalize: bool) -> None:
    outcome: list[tuple[Any, ...]] = []
    for base, label in ((PlamsJob, "plams"), (OurJob, "ours")):
        folder = _external_folder(tmp_path / label)
        job = base.load_external(str(folder), finalize=finalize)
        outcome.append((type(job) is base, job.name, str(job.status), sorted(job._filenames),
                        sorted(f for f in job.results.files if not f.endswith(".dill")),
                        job.results.get_output_chunk(begin="BEGIN", end="END"),
                        job.results.grep_output("Energy"), job.settings.pickle,
                        os.path.isfile(folder / "outside.dill")))
        named = base.load_external(str(folder), jobname="other")
        outcome.append((named.name, sorted(named._filenames)))
    assert outcome[0] == outcome[2] and outcome[1] == outcome[3]
    assert outcome[2][2] == ("successful" if finalize else "copied")


def test_load_external_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(P.FileError):
        PlamsJob.load_external(str(tmp_path / "none"))
    with pytest.raises(plams_cli.FileError):
        OurJob.load_external(str(tmp_path / "none"))


@pytest.mark.parametrize("keys", [("saferun", "repeat"), ("saferun", "delay"), ("job", "pickle_protocol")],
                         ids=lambda keys: ".".join(keys))
def test_config_defaults_match(keys: tuple[str, ...]) -> None:
    assert plams_cli.config.get_nested(keys) == P.config.get_nested(keys)


@pytest.mark.parametrize("package", ["scm.plams", "plams_cli"])
def test_config_set_before_init(package: str, tmp_path: Path, child_env: dict[str, str]) -> None:
    """Deliberate difference: PLAMS's init() resets config; ours keeps what was set before it."""
    import subprocess
    import sys

    code = (f"from {package} import config, init, finish\n"
            "config.log.stdout = 0\nconfig.sleepstep = 1\n"
            f"init(path={str(tmp_path)!r}, folder='w')\nprint('sleepstep', config.sleepstep)\nfinish()\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True,
                         check=True, timeout=120)
    values = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("sleepstep ")]
    assert values == (["5"] if package == "scm.plams" else ["1"])


def test_hashing_default_is_ours() -> None:
    """Deliberate difference: PLAMS hashes the input only; we hash input and runscript."""
    assert (P.config.jobmanager.hashing, plams_cli.config.jobmanager.hashing) == ("input", "input+runscript")


def test_pickle_protocol_minus_one_saves_with_the_highest(run_in: Any) -> None:
    import pickletools

    job = plams_cli.ShellJob(name="pickled", runscript="true\n")
    job.run()
    assert job.path is not None
    data = Path(job.path, "pickled.dill").read_bytes()
    first = next(pickletools.genops(data))
    assert first[0].name == "PROTO" and first[1] == __import__("pickle").HIGHEST_PROTOCOL


# --- soft_update on random trees, side by side ------------------------------------------
_KEYS = st.one_of(st.sampled_from(["a", "A", "b", "B", "pickle", "Pickle", "runscript", "RunScript"]),
                  st.integers(0, 2))
_LEAVES = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none())


def _one_case(mapping: dict[Any, Any]) -> bool:
    # (a dict with "a" and "A" makes different Settings in PLAMS and here: not what this compares)
    return len({str(key).lower() for key in mapping}) == len(mapping)


_TREES = st.recursive(
    st.dictionaries(_KEYS, _LEAVES, max_size=4).filter(_one_case),
    lambda children: st.dictionaries(_KEYS, st.one_of(_LEAVES, children), max_size=4).filter(_one_case),
    max_leaves=12)


@hypothesis_settings(max_examples=300, deadline=None)
@given(mine=_TREES, other=_TREES)
def test_soft_update_of_random_trees_matches_plams(mine: dict[Any, Any], other: dict[Any, Any]) -> None:
    """Keys of any case and of other types, branches on either side: the same tree, in the same order."""
    results = []
    for S in (P.Settings, Settings):  # noqa: N806
        s = S(mine)
        s.soft_update(S(other))
        results.append((str(s), _items_dump(s, S)))
    assert results[0] == results[1]


# (string keys only, as in config.job: the trees a kept plan serves)
_NAMED_KEYS = st.sampled_from(["a", "A", "b", "B", "c", "pickle", "Pickle", "runscript", "RunScript"])
_NAMED_TREES = st.recursive(
    st.dictionaries(_NAMED_KEYS, _LEAVES, max_size=4).filter(_one_case),
    lambda children: st.dictionaries(_NAMED_KEYS, st.one_of(_LEAVES, children), max_size=4).filter(_one_case),
    max_leaves=12)


@hypothesis_settings(max_examples=200, deadline=None)
@given(mines=st.lists(_NAMED_TREES, min_size=4, max_size=4), other=_NAMED_TREES, change=_TREES)
def test_soft_update_from_the_same_defaults_again_and_again_matches_plams(
        mines: list[dict[Any, Any]], other: dict[Any, Any], change: dict[Any, Any]) -> None:
    """As every job merges config.job: one defaults object, used again and again, changed in between.

    Our soft_update keeps a plan of a defaults object it has seen before; the trees must be
    PLAMS's whatever the defaults became (keys added, leaves replaced, branches changed in
    place), and what a tree got must be its own copy.
    """
    results = []
    for S in (P.Settings, Settings):  # noqa: N806
        defaults = S(other)
        trees = []
        for i, mine in enumerate(mines):
            if i == 3:
                defaults.update(S(change))  # (merges branches in place: the plan's branches change)
            s = S(mine)
            s.soft_update(defaults)
            trees.append((str(s), _items_dump(s, S)))
            for key in list(s):  # a tree's branches are its own: emptying them leaves the defaults whole
                if isinstance(s[key], S) and key not in mine:
                    s[key].clear()
        results.append((trees, str(defaults)))
    assert results[0] == results[1]


@pytest.mark.parametrize("S", SETTINGS)
def test_soft_update_takes_the_first_of_keys_differing_in_case(S: type) -> None:  # noqa: N803
    s = S({"b": 0})
    s.soft_update({"a": 1, "A": 2, "B": 3})  # a plain dict may hold both cases: the first one counts
    assert (dict(s), list(s)) == ({"b": 0, "a": 1}, ["a", "b"])
