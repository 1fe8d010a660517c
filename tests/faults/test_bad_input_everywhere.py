"""Bad input to every command and option: one ``Error:`` line, the agreed status, nothing left behind.

The rule (README, ``man/plams.1``): 2 for anything wrong in what the user gave (arguments,
options, named files, environment variables, defaults files), 1 for a failure while doing
the work. Each case below was run against a folder holding a good script, a folder, a
file, a FIFO, a symlink loop and a workspace; the folder must look the same afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import report
from .conftest import Call, tracebacks, tree

DEEP = '{"a": ' * 3000 + "1" + "}" * 3000
LONG = "w" * 300
FAULT = "bad input to every command and option"
CACHE = {"PLAMS_JOBCACHE": "{tmp}/cache/jobs.sqlite"}

# (id, arguments, extra environment, the status, words the Error line holds); in arguments and
# environment {tmp} is the test's folder
CASES: list[tuple[str, list[str | bytes], dict[str, str], int, list[str]]] = [
    # plams SCRIPT
    ("script-missing", ["missing.plms"], {}, 2, ["'SCRIPT...'", "does not exist"]),
    ("script-empty-name", [""], {}, 2, ["'SCRIPT...'"]),
    ("script-folder", ["adir"], {}, 2, ["'SCRIPT...'", "is a directory"]),
    ("script-fifo", ["fifo"], {}, 2, ["'SCRIPT...'", "is a FIFO, not a regular file"]),
    ("script-device", ["/dev/null"], {}, 2, ["'SCRIPT...'", "is a character device"]),
    ("script-symlink-loop", ["loop"], {}, 2, ["'SCRIPT...'", "Too many levels of symbolic links"]),
    ("script-non-utf8-name", [b"\xff.plms"], {}, 2, ["'SCRIPT...'", "does not exist"]),
    ("unknown-word", ["frobnicate"], {}, 2, ["No such command or script 'frobnicate'", "grid"]),
    ("unknown-word-close", ["wrokspace"], {}, 2, ["No such command or script", "Did you mean 'workspace'"]),
    # -p
    ("path-missing", ["-p", "nowhere", "s.plms"], {}, 2, ["'-p' / '--path'", "does not exist"]),
    ("path-empty", ["-p", "", "s.plms"], {}, 2, ["'-p' / '--path'"]),
    ("path-file", ["-p", "afile.txt", "s.plms"], {}, 2, ["'-p' / '--path'", "is a file"]),
    ("path-fifo", ["-p", "fifo", "s.plms"], {}, 2, ["'-p' / '--path'", "is a FIFO, not a directory"]),
    ("path-symlink-loop", ["-p", "loop", "s.plms"], {}, 2, ["'-p' / '--path'", "symbolic links"]),
    ("path-proc", ["-p", "/proc", "s.plms"], {}, 2, ["'-p' / '--path'", "/proc", "takes no new folders"]),
    # -f
    ("folder-empty", ["-f", "", "s.plms"], {}, 2, ["'-f' / '--folder'", "does not name a folder"]),
    ("folder-dot", ["-f", ".", "s.plms"], {}, 2, ["'-f' / '--folder'", "does not name a folder"]),
    ("folder-dotdot", ["-f", "..", "s.plms"], {}, 2, ["'-f' / '--folder'", "does not name a folder"]),
    ("folder-newline", ["-f", "a\nb", "s.plms"], {}, 2, ["'-f' / '--folder'", "control character"]),
    ("folder-tab", ["-f", "a\tb", "s.plms"], {}, 2, ["'-f' / '--folder'", "control character"]),
    ("folder-too-long", ["-f", LONG, "s.plms"], {}, 2, ["'-f' / '--folder'", "too long"]),
    ("folder-parent-missing", ["-f", "no/such/w", "s.plms"], {}, 2, ["'-f' / '--folder'", "does not exist"]),
    ("folder-file-as-folder", ["-f", "afile.txt/w", "s.plms"], {}, 2, ["'-f' / '--folder'", "is not a folder"]),
    ("folder-loop-as-folder", ["-f", "loop/w", "s.plms"], {}, 2, ["'-f' / '--folder'", "symbolic links"]),
    # -l
    ("load-missing", ["-l", "gone", "s.plms"], {}, 2, ["'-l' / '--load'", "does not exist"]),
    ("load-file", ["-l", "afile.txt", "s.plms"], {}, 2, ["'-l' / '--load'", "is a file"]),
    ("load-fifo", ["-l", "fifo", "s.plms"], {}, 2, ["'-l' / '--load'", "is a FIFO"]),
    ("load-symlink-loop", ["-l", "loop", "s.plms"], {}, 2, ["'-l' / '--load'", "symbolic links"]),
    # -v, -j
    ("var-empty", ["-v", "", "s.plms"], {}, 2, ["'-v' / '--var'", "no '='"]),
    ("var-bad-name", ["-v", "a-b=1", "s.plms"], {}, 2, ["'-v' / '--var'", "not a valid Python variable name"]),
    ("jobs-negative", ["-j", "-1", "s.plms"], {}, 2, ["'-j' / '--jobs'"]),
    ("jobs-word", ["-j", "many", "s.plms"], {}, 2, ["'-j' / '--jobs'", "many"]),
    ("jobs-empty", ["-j", "", "s.plms"], {}, 2, ["'-j' / '--jobs'"]),
    # -r
    ("restart-file", ["-r", "-f", "afile.txt", "s.plms"], {}, 2, ["'-r' / '--restart'", "not a folder"]),
    ("restart-fifo", ["-r", "-f", "fifo", "s.plms"], {}, 2, ["'-r' / '--restart'"]),
    ("restart-user-folder", ["-r", "-f", "adir", "s.plms"], {}, 2,
     ["'-r' / '--restart'", "not a plams working folder"]),
    # defaults files and environment variables
    ("defaults-missing", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/nope.yaml"}, 2, ["PLAMS_DEFAULTS", "not a file"]),
    ("defaults-folder", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/adir"}, 2, ["PLAMS_DEFAULTS", "not a file"]),
    ("defaults-fifo", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/fifo"}, 2, ["PLAMS_DEFAULTS", "not a file"]),
    ("defaults-binary", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/binary.yaml"}, 2, ["defaults file", "not UTF-8"]),
    ("defaults-invalid-yaml", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/bad.yaml"}, 2, ["defaults file", "not valid YAML"]),
    ("defaults-bad-value", ["s.plms"], {"PLAMS_DEFAULTS": "{tmp}/level.yaml"}, 2, ["log.stdout", "from 0 to 7"]),
    ("defaults-grid-list", ["grid", "list"], {"PLAMS_DEFAULTS": "{tmp}/bad.yaml"}, 2, ["not valid YAML"]),
    ("plams-grid-unknown", ["grid", "detect"], {"PLAMS_GRID": "nosuch"}, 2, ["PLAMS_GRID=nosuch", "no grid named"]),
    # plams grid
    ("grid-show-unknown", ["grid", "show", "nosuch"], {}, 2, ["no grid named 'nosuch'"]),
    ("grid-show-close", ["grid", "show", "slrum"], {}, 2, ["Did you mean 'slurm'"]),
    ("grid-show-empty", ["grid", "show", ""], {}, 2, ["no grid named ''"]),
    ("grid-unknown-command", ["grid", "nosuch"], {}, 2, ["No such command 'nosuch'"]),
    ("grid-bad-option", ["grid", "list", "--bad"], {}, 2, ["No such option", "--bad"]),
    # plams workspace
    ("ws-root-missing", ["workspace", "find", "-w", "nowhere"], {}, 2, ["is not a workspace"]),
    ("ws-root-file", ["workspace", "find", "--root", "afile.txt"], {}, 2, ["not a workspace"]),
    ("ws-root-plain-folder", ["workspace", "show", "abc", "-w", "adir"], {}, 2, ["is not a workspace"]),
    ("ws-check-root-missing", ["workspace", "check", "-w", "nowhere"], {}, 2, ["is not a workspace"]),
    ("ws-bad-json", ["workspace", "find", "-w", "ws", "{bad"], {}, 2, ["not valid JSON"]),
    ("ws-not-object", ["workspace", "find", "-w", "ws", "[1]"], {}, 2, ["must be a JSON object"]),
    ("ws-deep-json", ["workspace", "find", "-w", "ws", DEEP], {}, 2, ["nested too deeply"]),
    ("ws-bad-regex", ["workspace", "find", "-w", "ws", '{"a": {"$regex": "("}}'], {}, 2, ["FILTER_JSON"]),
    ("ws-bad-operator", ["workspace", "find", "-w", "ws", '{"a": {"$bogus": 1}}'], {}, 2, ["FILTER_JSON"]),
    ("ws-unknown-id", ["workspace", "show", "-w", "ws", "0" * 32], {}, 2, ["no job with id"]),
    ("ws-not-an-id", ["workspace", "show", "-w", "ws", "xyz!"], {}, 2, ["not a job id"]),
    ("ws-short-r-is-gone", ["workspace", "find", "-r", "ws"], {}, 2, ["No such option", "-r"]),
    ("ws-init-file", ["workspace", "init", "afile.txt"], {}, 2, ["afile.txt", "is a file"]),
    # plams jobs (the cache named by PLAMS_JOBCACHE lies in the test's folder: nothing may create it)
    ("jobs-bad-regex", ["jobs", "list", "--pattern", "("], CACHE, 2, ["bad regular expression"]),
    ("jobs-bad-status", ["jobs", "list", "--status", "nosuch"], CACHE, 2, ["'--status'", "nosuch"]),
    ("jobs-unknown-key", ["jobs", "add", "path=/x", "foo=1"], CACHE, 2, ["unknown key 'foo'"]),
    ("jobs-bad-status-value", ["jobs", "add", "path=/x", "status=bogus"], CACHE, 2, ["unknown status 'bogus'"]),
    ("jobs-index-out-of-range", ["jobs", "modify", "-i", "99", "comment=x"], CACHE, 2, ["no job 99"]),
    ("jobs-modify-nothing-chosen", ["jobs", "modify", "comment=x"], CACHE, 2, ["-i INDEX or --pattern"]),
    ("jobs-delete-bad-index", ["jobs", "delete", "-i", "5", "--yes"], CACHE, 2, ["no job 5"]),
    ("jobs-merge-missing", ["jobs", "merge", "nope.sqlite", "host"], CACHE, 2, ["'OTHER'", "does not exist"]),
    ("jobs-merge-foreign", ["jobs", "merge", "afile.txt", "host"], CACHE, 2, ["afile.txt"]),
    ("jobs-import-missing", ["jobs", "import", "nowhere"], CACHE, 2, ["'FOLDERS...'", "does not exist"]),
    ("jobs-show-missing", ["jobs", "show", "nowhere"], CACHE, 2, ["nowhere", "does not exist"]),
    ("jobs-show-plain-file", ["jobs", "show", "afile.txt"], CACHE, 2, ["afile.txt"]),
    ("jobs-show-fifo", ["jobs", "show", "fifo"], CACHE, 2, ["fifo"]),
    ("jobs-cache-is-a-folder", ["jobs", "list"], {"PLAMS_JOBCACHE": "{tmp}/adir"}, 2, ["adir"]),
    ("jobs-cache-foreign", ["jobs", "list"], {"PLAMS_JOBCACHE": "{tmp}/afile.txt"}, 2, ["afile.txt"]),
    ("jobs-unknown-command", ["jobs", "nosuch"], CACHE, 2, ["No such command 'nosuch'"]),
]


def _setup(folder: Path) -> None:
    (folder / "s.plms").write_text("ShellJob(name='x', runscript='echo x').run()\n")
    (folder / "adir").mkdir()
    (folder / "afile.txt").write_text("mine\n")
    os.mkfifo(folder / "fifo")
    os.symlink("loop", folder / "loop")
    (folder / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (folder / "bad.yaml").write_text("log: {stdout: [\n")
    (folder / "level.yaml").write_text("log:\n  stdout: 99\n")
    from plams_cli.workspace import Workspace

    Workspace(folder / "ws", create=True).open_job({"a": 1}).init()


@pytest.mark.parametrize(("args", "extra", "status", "words"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_is_one_error_line_with_the_agreed_status(request: pytest.FixtureRequest, tmp_path: Path,
                                                            plams_env: Call, args: list[str | bytes],
                                                            extra: dict[str, str], status: int,
                                                            words: list[str]) -> None:
    _setup(tmp_path)
    before = tree(tmp_path)
    environment = {key: value.replace("{tmp}", str(tmp_path)) for key, value in extra.items()}
    result = plams_env(*args, cwd=tmp_path, extra=environment, timeout=60)
    lines = result.stderr.splitlines()
    seen = {"tracebacks": tracebacks(result.stderr, result.stdout), "leftovers": len(set(tree(tmp_path)) ^ set(before))}
    report.record(FAULT, 1, tracebacks=seen["tracebacks"], leftovers=seen["leftovers"],
                  part=request.node.callspec.id,
                  note="each command and option given missing, empty, binary, non-UTF-8, FIFO, device, "
                       "directory-as-file, file-as-directory, symlink-loop, control-character, over-long values, "
                       "broken defaults files, unknown grids, bad filters: one `Error:` line, exit 2, folder unchanged")
    assert (result.returncode, result.stdout) == (status, ""), result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert seen == {"tracebacks": 0, "leftovers": 0}
    assert tree(tmp_path) == before
