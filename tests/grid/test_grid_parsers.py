"""Parsers and flag building, on pasted real output (no scheduler needed).

SLURM and PBS outputs were captured from Debian 12's slurm-wlm 22.05.8 and its
slurm-wlm-torque wrappers; Grid Engine's from Son of Grid Engine 8.1.9 as documented
(``qstat``, ``qacct -j``) — this machine cannot install it beside the wrappers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from plams_cli.errors import GridError, QueueQueryError, SchedulerNotFoundError
from plams_cli.runners import pbs, sge, slurm
from plams_cli.runners.grid import CommandResult, flags_from_runflags, grid_settings, resolve_parser
from plams_cli.runners.grid._backend import Accounting


def result(stdout: str = "", stderr: str = "", rc: int | None = 0) -> CommandResult:
    return CommandResult(("cmd",), rc, stdout, stderr)


SLURM_SPECIAL = {"queue": "-p ", "memory": "--mem=", "nodes": "-N "}


@pytest.mark.parametrize(
    ("runflags", "expected"),
    [
        ({"queue": "short", "nodes": 2, "J": "name"}, ["-J", "name", "-N", "2", "-p", "short"]),
        ({"memory": "4G"}, ["--mem=4G"]),
        ({"J": "a name with spaces"}, ["-J", "a name with spaces"]),
        ({"H": True, "x": False, "y": None}, ["-H"]),
        ({"nested": {"a": 1}}, []),
    ],
    ids=["sorted-special-generic", "glued", "spaces-kept", "booleans", "mappings-skipped"],
)
def test_flags_from_runflags(runflags: dict[str, Any], expected: list[str]) -> None:
    assert flags_from_runflags(runflags, SLURM_SPECIAL) == expected


def test_pbs_special_with_inner_space() -> None:
    special = {"nodes": "-l nodes=", "queue": "-q "}
    assert flags_from_runflags({"nodes": 2, "queue": "q1"}, special) == ["-l", "nodes=2", "-q", "q1"]


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [("7\n", "7"), ("8;plamslocal\n", "8"), ("sbatch: warning: x\n9\n", "9"), ("", None),
     ("Submitted batch job 5\n", None)],
    ids=["plain", "cluster", "warning-first", "empty", "not-parsable"],
)
def test_slurm_getid(stdout: str, expected: str | None) -> None:
    assert slurm.getid(stdout) == expected


def test_slurm_running_mixed_states() -> None:
    states = slurm.running(result("12 R\n13 PD\n14 CD\n15 CA\n16 CG\n"), ["12", "13", "14", "15", "16", "17"])
    assert {k: (v.state, v.finished) for k, v in states.items()} == {
        "12": ("R", False), "13": ("PD", False), "14": ("CD", True), "15": ("CA", True), "16": ("CG", False),
    }
    assert "17" not in states  # gone from the controller: finished


def test_slurm_running_all_ids_gone_is_an_answer() -> None:
    out = result("", "slurm_load_jobs error: Invalid job id specified\n", 1)
    assert slurm.running(out, ["99999"]) == {}


@pytest.mark.parametrize(
    "failure",
    [
        result("", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", 1),
        result("", "timed out after 30 s", None),
        result("", "squeue: error: Munge encode failed: Failed to connect to \"/run/munge/munge.socket.2\"", 1),
    ],
    ids=["controller-down", "timeout", "munge"],
)
def test_slurm_running_failure_is_unknown(failure: CommandResult) -> None:
    with pytest.raises(QueueQueryError):
        slurm.running(failure, ["12"])


SCONTROL_FAILED = """\
JobId=2 JobName=pj
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A
   Partition=debug AllocNode:Sid=localhost:2632
   Command=/tmp/probe/j.sh
   WorkDir=/tmp/probe
"""
SCONTROL_CANCELLED = """\
JobId=41 JobName=plt0a1b2c3d
   JobState=CANCELLED Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15
"""


def test_parse_scontrol() -> None:
    failed = slurm.parse_scontrol(SCONTROL_FAILED)
    assert failed is not None and (failed.state, failed.exit_code, failed.killed) == ("FAILED", 3, False)
    cancelled = slurm.parse_scontrol(SCONTROL_CANCELLED)
    assert cancelled is not None and cancelled.killed is True
    assert "CANCELLED" in cancelled.describe() and "signal 15" in cancelled.describe()


def test_parse_sacct() -> None:
    acc = slurm.parse_sacct("41|CANCELLED by 0|0:15\n", "41")
    assert acc is not None and (acc.state, acc.killed) == ("CANCELLED", True)
    assert "by 0" in acc.reason
    timeout = slurm.parse_sacct("42|TIMEOUT|0:0\n", "42")
    assert timeout is not None and timeout.killed is True
    assert slurm.parse_sacct("", "41") is None


QSTAT_TABLE = """\
Job id              Name             Username        Time Use S Queue          
------------------- ---------------- --------------- -------- - ---------------
3                   pbsj             root            00:00:00 C plamstest      
4                   other            root            00:00:00 R plamstest      
5                   queued           root            00:00:00 Q debug          
"""


def test_pbs_running() -> None:
    states = pbs.running(result(QSTAT_TABLE), ["3", "4", "5", "6"])
    assert {k: (v.state, v.finished) for k, v in states.items()} == {
        "3": ("C", True), "4": ("R", False), "5": ("Q", False),
    }


def test_pbs_running_full_ids_and_unknown_job() -> None:
    table = QSTAT_TABLE.replace("4      ", "4.srv  ")
    out = result(table, "qstat: Unknown Job Id 6.srv.example.org\n", 153)
    states = pbs.running(out, ["4.srv.example.org", "6.srv.example.org"])
    assert list(states) == ["4.srv.example.org"]


def test_pbs_running_failure_is_unknown() -> None:
    with pytest.raises(QueueQueryError):
        pbs.running(result("", "Connection refused\nqstat: cannot connect to server srv (errno=111)\n", 2), ["3"])


QSTAT_FULL_WRAPPER = """\
Job Id:\t3
\tJob_Name = pbsj
\tJob_Owner = root@localhost
\tjob_state = C
\tqueue = plamstest
\texec_host = localhost/1
"""
QSTAT_FULL_TORQUE = """\
Job Id: 123.srv
    Job_Name = run.sh
    job_state = C
    exit_status = 271
    comment = job killed: walltime 65 exceeded limit 60
"""


def test_parse_qstat_full() -> None:
    wrapper = pbs.parse_qstat_full(QSTAT_FULL_WRAPPER)
    assert wrapper is not None and (wrapper.state, wrapper.exit_code, wrapper.killed) == ("C", None, None)
    torque = pbs.parse_qstat_full(QSTAT_FULL_TORQUE)
    assert torque is not None and torque.killed is True and "walltime" in torque.reason


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [("3\n", "3"), ("123.srv.example.org\n", "123.srv.example.org"), ("There was an error\n", None)],
    ids=["wrapper", "torque", "error-text"],
)
def test_pbs_getid(stdout: str, expected: str | None) -> None:
    assert pbs.getid(stdout) == expected


SGE_QSTAT = """\
job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID 
-----------------------------------------------------------------------------------------------------------------
     12 0.55500 sleep.sh   root         r     11/22/2026 21:40:12 all.q@vm                           1        
     13 0.00000 sleep.sh   root         qw    11/22/2026 21:40:13                                    1        
"""
SGE_QACCT = """\
==============================================================
qname        all.q
hostname     vm
jobname      sleep.sh
jobnumber    14
failed       100 : assumedly after job
exit_status  137                  (Killed)
"""


def test_sge_parsers() -> None:
    states = sge.running(result(SGE_QSTAT), ["12", "13", "14"])
    assert {k: v.state for k, v in states.items()} == {"12": "r", "13": "qw"}
    assert sge.getid("15\n") == "15"
    assert sge.getid('Your job 16 ("x") has been submitted\n') == "16"
    acc = sge.parse_qacct(SGE_QACCT)
    assert acc is not None and acc.exit_code == 137 and acc.killed is True
    clean_exit = SGE_QACCT.replace("failed       100 : assumedly after job", "failed       0").replace("137", "3")
    assert cast(Accounting, sge.parse_qacct(clean_exit)).killed is False


def test_unknown_grid_lists_valid_names() -> None:
    with pytest.raises(SchedulerNotFoundError, match="pbs, sge, slurm") as info:
        grid_settings("slrum")
    assert "Did you mean 'slurm'" in str(info.value)
    assert isinstance(info.value, GridError)


def test_resolve_parser() -> None:
    assert resolve_parser("slurm", "getid") is slurm.getid
    assert resolve_parser("plams_cli.runners.pbs:getid", "getid") is pbs.getid
    with pytest.raises(GridError, match="cannot find parser"):
        resolve_parser("nosuch", "getid")


def test_accounting_says_when_a_job_is_not_over() -> None:
    running = slurm.parse_scontrol("JobId=7 JobName=x\n   JobState=RUNNING Reason=None ExitCode=0:0\n")
    assert running is not None and running.active and running.killed is None
    assert slurm.parse_sacct("8|PENDING|0:0\n", "8").active  # type: ignore[union-attr]
    assert not slurm.parse_sacct("9|COMPLETED|0:0\n", "9").active  # type: ignore[union-attr]
    assert pbs.parse_qstat_full("Job Id: 5.srv\n    job_state = Q\n").active  # type: ignore[union-attr]
    assert not pbs.parse_qstat_full("Job Id: 5.srv\n    job_state = C\n").active  # type: ignore[union-attr]
    listed = slurm.running(CommandResult(("squeue",), 0, "10 SE\n11 CD\n", ""), ["10", "11"])
    assert not listed["10"].finished and listed["11"].finished  # SPECIAL_EXIT: held after requeue


def test_workdir_missing_on_the_node_is_explained(tmp_path: Path) -> None:
    from plams_cli.runners.grid import WORKDIR_MISSING_EXIT, GridRunner
    from plams_cli.runners.grid._base import _Tracked

    gr = GridRunner("slurm")
    record = tmp_path / "job.run.exitcode"
    with pytest.raises(GridError, match="could not enter its folder .* compute nodes share"):
        gr._checked_code(_Tracked("12", "job"), WORKDIR_MISSING_EXIT, str(record))
    (tmp_path / ".job.run.exitcode.start").touch()  # the runscript started: 97 is its own code
    assert gr._checked_code(_Tracked("12", "job"), WORKDIR_MISSING_EXIT, str(record)) == WORKDIR_MISSING_EXIT


def test_failing_queue_is_reported_again_while_it_fails(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    import plams_cli.runners.grid._base as grid
    from plams_cli.errors import QueueQueryError
    from plams_cli.runners.grid import GridRunner
    from plams_cli.runners.grid._base import _Tracked

    monkeypatch.setattr(grid, "FAILURE_REPORT_INTERVAL_S", 0.0)
    gr = GridRunner("slurm")

    def broken(ids: object) -> dict[str, object]:
        raise QueueQueryError("queue query failed: squeue (exit 1): down")

    monkeypatch.setattr(gr, "query", broken)
    with caplog.at_level("WARNING", logger="plams_cli.runners.grid"):
        for _ in range(3):
            gr._poll_once([_Tracked("1", "a")])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and "asking again later" in messages[0]
    assert "still failing after 3 tries" in messages[2] and "1 job(s) waiting" in messages[2]
