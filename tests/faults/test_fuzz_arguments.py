"""Random argument lists built from the real option and command names and hostile values, fed to ``plams``
in-process (click's runner): no Python traceback may ever reach the user."""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plams_cli.cli.main import LAZY_COMMANDS, cli

from . import report

FAULT = "random arguments from the real option names (hypothesis)"
EXAMPLES = 1000


def _commands() -> tuple[list[tuple[str, ...]], list[str]]:
    """Every command path (``()``, ``("grid", "show")``, …) and every command and option name plams has."""
    names: set[str] = set(LAZY_COMMANDS)
    paths: list[tuple[str, ...]] = []
    ctx = click.Context(cli, info_name="plams")
    stack: list[tuple[tuple[str, ...], click.Command]] = [((), cli)]
    while stack:
        path, command = stack.pop()
        paths.append(path)
        for param in command.params:
            names.update(param.opts + param.secondary_opts)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    names.add(name)
                    stack.append(((*path, name), sub))
    return sorted(paths), sorted(names)


PATHS, NAMES = _commands()


# Hostile values; NUL is left out: no shell can pass it in an argument, and so are paths out of the
# test's folder ("/", ".."): see _stays_inside.
HOSTILE = ["", " ", "-", "--", ".", "~", "/proc", "/dev/null", "fifo", "loop", "adir", "afile.txt",
           "s.plms", "bad.plms", "bin.plms", "a\nb", "\t", "\x1b[31m", "w" * 300, "\udcff", "é", "0", "-1",
           "99999999999",
           "x=1", "1x=2", "=", "{bad", "[1]", '{"a": 1}', '{"a": {"$regex": "("}}', '{"a": ' * 3000 + "1" + "}" * 3000,
           "0" * 32, "nosuch", "slurm", "auto", "$HOME", "%s", "{}", "*", "'", '"']
#: a frame of plams-cli, click or the standard library in the output: a traceback of ours, not of the
#: user's script (running afile.txt as a script prints its own NameError, cut to its frames)
OURS = re.compile(r'File "[^"]*(plams_cli|site-packages|/lib/python3)[^"]*", line \d+')


def _stays_inside(word: str) -> bool:
    """Whether ``word``, taken as a path, names nothing outside the test's folder.

    The commands really run: ``workspace init ../..`` or ``-p /x`` would write workspaces and
    working folders above the test's folder (where other tests' ``get_project`` searches).
    """
    return word in ("/proc", "/dev/null") or (not word.startswith("/") and ".." not in word)


#: random words too, without NUL (see HOSTILE): st.text() alone draws it now and then
WORDS = (st.sampled_from(NAMES) | st.sampled_from(HOSTILE)
         | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)).filter(_stays_inside)
#: a command path first (so that every subcommand is reached often), then any words
ARGUMENTS = st.builds(lambda path, words: [*path, *words], st.sampled_from(PATHS), st.lists(WORDS, max_size=5))


@pytest.fixture
def hostile_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_config: object) -> Path:
    (tmp_path / "s.plms").write_text("x = 1\n")
    (tmp_path / "bad.plms").write_text("x = (\n")
    (tmp_path / "bin.plms").write_bytes(bytes(range(256)))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile.txt").write_text("mine\n")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("loop", tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PLAMS_DEFAULTS", raising=False)
    monkeypatch.delenv("PLAMS_GRID", raising=False)
    return tmp_path


def test_no_traceback_for_any_argument_list(hostile_folder: Path) -> None:
    runner = CliRunner()
    seen: list[str] = []
    tried = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(ARGUMENTS)
    def one(args: list[str]) -> None:
        tried[0] += 1
        result = runner.invoke(cli, args, prog_name="plams")
        output = result.stdout + result.stderr
        crashed = not (result.exception is None or isinstance(result.exception, SystemExit))
        if crashed or OURS.search(output):
            assert result.exc_info is not None
            problem = f"{args!r}: {output[-1000:]}" + "".join(traceback.format_exception(*result.exc_info))[-2000:]
            seen.append(problem)
            raise AssertionError(problem)

    try:
        one()
    finally:
        report.record(FAULT, tried[0], tracebacks=len(seen),
                      note=f"{EXAMPLES} random lists of up to 6 words: every command and option name plams has, "
                           "hostile values (FIFO, symlink loop, control characters, 300 characters, deep JSON, ...)")
