"""The grid package's rooms: back-end contract and registry, records and leftovers, the logger.

No scheduler needed; the cancel records against the real SLURM are in test_grid_cancel.py.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import plams_cli.runners.grid._backend as backend_module
from plams_cli.errors import GridError
from plams_cli.runners import detect as detect_module
from plams_cli.runners import grid
from plams_cli.runners.grid import (
    Accounting,
    Backend,
    Candidate,
    CommandResult,
    Probe,
    QueueState,
    find_leftovers,
    read_job_record,
    registered,
    resolve_parser,
    write_job_record,
    write_wrapper,
)
from plams_cli.runners.grid import _records as records
from plams_cli.runners.grid import pbs as grid_pbs
from plams_cli.runners.grid import sge as grid_sge
from plams_cli.runners.grid import slurm as grid_slurm
from plams_cli.runners.grid._log import LOGGER_NAME, logger


def test_the_package_loads_on_first_use_of_a_name_and_registers_the_backends(tmp_path: Path) -> None:
    """``plams_cli.runners.grid`` imports its rooms on first use; the back-ends are registered whatever comes first."""
    code = ("import sys\n"
            "from plams_cli.runners.grid._records import find_leftovers\n"
            "assert 'plams_cli.runners.grid._base' not in sys.modules\n"
            "from plams_cli.runners.grid._backend import registered\n"
            "assert [b.name for b in registered()][:3] == ['slurm', 'pbs', 'sge']\n"
            "import plams_cli.runners.grid as g\n"
            "assert g.GridRunner.__module__ == 'plams_cli.runners.grid._base' and g.slurm.__name__.endswith('slurm')\n"
            "assert set(g.__all__) <= set(dir(g))\n"
            "try:\n    g.nope\nexcept AttributeError as e:\n    assert 'nope' in str(e)\n"
            "else:\n    raise SystemExit(3)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_backends_are_registered_in_order_of_preference() -> None:
    backends = registered()
    assert [b.name for b in backends][:3] == ["slurm", "pbs", "sge"]
    assert all(isinstance(b, Backend) for b in backends)
    assert detect_module.ORDER == ("slurm", "pbs", "sge")


@pytest.mark.parametrize("name", ["slurm", "pbs", "sge"], ids=["slurm", "pbs", "sge"])
@pytest.mark.parametrize("role", ["getid", "running", "accounting"], ids=["getid", "running", "accounting"])
def test_yaml_names_and_old_module_paths_reach_the_backend(name: str, role: str) -> None:
    import importlib

    new = importlib.import_module(f"plams_cli.runners.grid.{name}")
    old = importlib.import_module(f"plams_cli.runners.{name}")
    assert getattr(old, role) is getattr(new, role)
    assert resolve_parser(name, role) is getattr(new, role)
    assert resolve_parser(f"plams_cli.runners.{name}:{role}", role) is getattr(new, role)
    assert getattr(new, role).__self__ is new.BACKEND  # the registered back-end's method


def test_user_parser_by_module_and_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_site_parsers.py").write_text("def getid(stdout):\n    return stdout.split()[-1]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    parser = resolve_parser("my_site_parsers:getid", "getid")
    assert parser("Submitted batch job 77") == "77"
    with pytest.raises(GridError, match="cannot find parser 'my_site_parsers:nosuch'"):
        resolve_parser("my_site_parsers:nosuch", "getid")


def test_an_incomplete_backend_cannot_be_made() -> None:
    class Half(Backend):
        name = "half"

        def getid(self, stdout: str, stderr: str = "") -> str | None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]


class _Absent(Backend):
    """A scheduler that is never installed: tests that detection asks every registered one."""

    name = "absent"
    preference = 5  # asked first, found never

    def getid(self, stdout: str, stderr: str = "") -> str | None:
        return None

    def running(self, result: CommandResult, ids: Sequence[str]) -> dict[str, QueueState]:
        return {}

    def accounting(self, job_id: str, timeout_s: float = 30.0) -> Accounting | None:
        return None

    def probe(self, probe: Probe) -> Candidate:
        found = probe.which(["plams-no-such-scheduler-command"])
        return Candidate(self.name, found, reason="plams-no-such-scheduler-command not found on PATH")


@pytest.fixture
def absent_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    backend = _Absent()
    monkeypatch.setitem(backend_module._REGISTRY, backend.name, backend)
    yield backend


def test_detection_loops_over_registered_backends(absent_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    found = detect_module.detect()
    names = [c.name for c in found.candidates]
    assert names[:4] == ["absent", "slurm", "pbs", "sge"]
    absent = found.candidates[0]
    assert not absent.found and not absent.chosen and absent.commands == {"plams-no-such-scheduler-command": None}
    assert found.grid != "absent"


def test_probe_runs_each_command_once(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    argv = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x'); print('answer')"]
    probe = Probe()
    first, second = probe.run(argv), probe.run(argv)
    assert first is second and first.ok and first.stdout == "answer\n"
    assert counter.read_text() == "x"
    folder, name = os.path.split(sys.executable)
    assert Probe(folder).which([name, "plams-no-such-command"]) == {name: sys.executable,
                                                                    "plams-no-such-command": None}


def test_backend_probes_say_why_nothing_is_here(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    probe = Probe(str(empty))
    assert grid_slurm.BACKEND.probe(probe).reason == "sbatch not found on PATH"
    assert grid_pbs.BACKEND.probe(probe).reason == "qsub/qstat not found on PATH"
    assert grid_sge.BACKEND.probe(probe).reason == "qsub/qstat not found on PATH"


def test_qstat_that_answers_like_grid_engine(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in (("qsub", "exit 0"), ("qdel", "exit 0"),
                       ("qstat", 'if [ "$1" = -help ]; then echo "SGE 8.1.9"; echo usage; fi; exit 1')):
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    probe = Probe(str(folder))
    sge, pbs = grid_sge.BACKEND.probe(probe), grid_pbs.BACKEND.probe(probe)
    assert sge.found and sge.version == "SGE 8.1.9" and sge.reason == "qstat -help names SGE 8.1.9"
    assert not pbs.found and pbs.reason == "qstat answers like Grid Engine, not PBS"


def test_wrapper_is_written_whole_and_executable(tmp_path: Path) -> None:
    wrapper, exitname = write_wrapper(str(tmp_path), "a job.run", "a job.out", None)
    assert (wrapper, exitname) == ("a_job.run.grid.sh", "a job.run.exitcode")
    path = tmp_path / wrapper
    assert stat.S_IMODE(path.stat().st_mode) & 0o111 and path.read_text().startswith("#!/bin/sh\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [wrapper]  # no temporary file left
    (tmp_path / "a job.run").write_text("#!/bin/sh\necho hi\nexit 5\n")
    (tmp_path / "a job.run").chmod(0o755)
    done = subprocess.run([str(path)], cwd="/", capture_output=True, text=True, timeout=30)
    assert done.returncode == 5 and (tmp_path / "a job.out").read_text() == "hi\n"
    record = records.read_exit_file(records.exit_file(str(tmp_path), "a job.run"))
    assert record is not None and record["exit_code"] == 5 and record["end"] >= record["start"]


def test_job_record_round_trip_and_leftovers(tmp_path: Path) -> None:
    done, left = tmp_path / "done", tmp_path / "left"
    done.mkdir()
    left.mkdir()
    for folder in (done, left):
        write_job_record(str(folder), "job.run", {"job_id": "42", "grid": "slurm", "host": "h", "cancel": "scancel 42"})
    assert sorted(p.name for p in left.iterdir()) == ["job.run.jobid"]  # written atomically, nothing beside it
    assert read_job_record(str(left / "job.run.jobid")) == {"job_id": "42", "grid": "slurm", "host": "h",
                                                            "cancel": "scancel 42"}
    (done / "job.run.exitcode").write_text('{"exit_code": 0, "job_id": "42"}\n')
    found = list(find_leftovers(str(tmp_path)))
    assert [(j.job_id, j.grid, j.host, j.cancel, j.folder) for j in found] == [("42", "slurm", "h", "scancel 42",
                                                                               str(left))]
    records.clear_records(str(done), "job.run")
    assert list(done.iterdir()) == []


def test_leftovers_pass_over_the_folders_of_finished_jobs(tmp_path: Path) -> None:
    """A restart names the folders of the finished jobs it loaded: they (and what they hold) are not read."""
    for folder in ("finished", "finished/inner", "other"):
        (tmp_path / folder).mkdir()
        write_job_record(str(tmp_path / folder), "job.run", {"job_id": folder, "grid": "slurm", "host": "h"})
    everything = sorted(job.job_id for job in find_leftovers(str(tmp_path)))
    assert everything == ["finished", "finished/inner", "other"]
    found = list(find_leftovers(str(tmp_path), finished={str(tmp_path / "finished")}))
    assert [job.job_id for job in found] == ["other"]


def test_leftovers_walk_what_os_walk_walks(tmp_path: Path) -> None:
    """The walk behind find_leftovers: os.walk's folders and files, in its order, links not followed."""
    for folder in ("a/x", "a/y/deep", "b", ".hidden/z"):
        (tmp_path / folder).mkdir(parents=True)
    for file in ("top.txt", "a/x/job.run.jobid", "a/y/f", "a/y/deep/g", ".hidden/z/h", "b/.dot"):
        (tmp_path / file).write_text("x")
    (tmp_path / "link-to-a").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "link-to-file").symlink_to(tmp_path / "top.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    expected = [(folder, sorted(files)) for folder, _dirs, files in os.walk(tmp_path)]
    walked = [(folder, sorted(files)) for folder, files in records._files_by_folder(str(tmp_path))]
    assert [folder for folder, _ in walked] == [str(folder) for folder, _ in expected]
    assert walked == [(str(folder), files) for folder, files in expected]


def test_cli_asks_the_grid_for_leftovers() -> None:
    from plams_cli.cli import _grid_leftovers

    assert _grid_leftovers.find_leftovers is grid.find_leftovers
    assert _grid_leftovers.stop_leftovers is grid.stop_leftovers


def test_grid_messages_reach_stderr_until_plams_listens(capsys: pytest.CaptureFixture[str]) -> None:
    assert logger.name == LOGGER_NAME == "plams_cli.runners.grid"
    logger.warning("queue query failed: %s", "down")
    assert capsys.readouterr().err == "plams: queue query failed: down\n"
    heard: list[logging.LogRecord] = []

    class Bridge(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            heard.append(record)

    bridge = Bridge()
    parent = logging.getLogger("plams_cli.runners")
    parent.addHandler(bridge)
    try:
        logger.warning("cancelled slurm job %s", "7")
    finally:
        parent.removeHandler(bridge)
    assert capsys.readouterr().err == ""
    assert [(r.name, r.levelno, r.getMessage()) for r in heard] == [
        ("plams_cli.runners.grid", logging.WARNING, "cancelled slurm job 7")]


def test_no_raw_stderr_writes_in_the_grid() -> None:
    folder = Path(grid.__file__).parent
    paths = [*folder.glob("*.py"), *(folder.parent / f"{n}.py" for n in ("detect", "slurm", "pbs", "sge"))]
    assert [p.name for p in paths if "sys.stderr.write" in p.read_text(encoding="utf-8")] == []


def test_old_import_paths_keep_working() -> None:
    code = textwrap.dedent("""
        import sys
        import plams_cli.runners.grid
        assert "plams_cli.runners.detect" not in sys.modules  # the grid package never imports it back
        from plams_cli.runners.grid import (GridRunner, grid_settings, run_command, grid_definitions,
            flags_from_runflags, resolve_parser, read_job_record, write_job_record, CommandResult,
            QueueState, Accounting, RUNNING_STATE_CODES, read_exit_file, JOB_RECORD_SUFFIX)
        from plams_cli.runners.detect import detect, detect_grid, Candidate, Detection, PROBE_TIMEOUT_S
        from plams_cli.runners.slurm import getid, running, accounting, parse_sacct, parse_scontrol
        from plams_cli.runners.pbs import parse_qstat_full, short_id
        from plams_cli.runners.sge import parse_qacct
        from plams_cli.runners import GridRunner as G
        from plams_cli import GridRunner as H
        assert G is H is GridRunner
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
