"""CliRunner tests: option parsing, routing to the default command, help text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from plams_cli.cli import run as run_module
from plams_cli.cli.main import cli
from plams_cli.cli.run import VarAssign


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the run itself by a recorder of what the options parsed to."""
    calls: list[dict[str, Any]] = []

    def fake_run(self: Any) -> int:
        session = self.session
        calls.append({"parent": session.path, "name": session.folder, "variables": self.variables,
                      "load_folders": session.load_folders, "jobs": session.jobs, "quiet": self.quiet,
                      "restart": session.target, "scripts": self.scripts})
        return 0

    monkeypatch.setattr(run_module._MasterRun, "run", fake_run)
    return calls


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "s.plms"
    path.write_text("print('hello from the script')\n")
    return path


def test_all_options_before_the_script_reach_run(runner: CliRunner, captured: list[dict[str, Any]],
                                                 tmp_path: Path, script: Path) -> None:
    (tmp_path / "old").mkdir()
    other = tmp_path / "t.plms"
    other.write_text("")
    result = runner.invoke(cli, ["-p", str(tmp_path), "-f", "w", "-v", "A=1", "--var", "B=x=y", "-l",
                                 str(tmp_path / "old"), "-j", "3", "-q", str(script), str(other)])
    assert not result.exception, result.output
    (call,) = captured
    assert call["parent"] == str(tmp_path) and call["name"] == "w"
    assert call["variables"] == (("A", "1"), ("B", "x=y"))
    assert call["load_folders"] == (str(tmp_path / "old"),)
    assert (call["jobs"], call["quiet"], call["restart"]) == (3, True, None)
    assert [s.path for s in call["scripts"]] == [str(script), str(other)]


@pytest.mark.parametrize("words", [["-r", "-f", "w"], ["--restart", "--folder", "w"], ["-rf", "w"]],
                         ids=["short", "long", "bundled"])
def test_restart_options_reach_run(runner: CliRunner, captured: list[dict[str, Any]], tmp_path: Path,
                                   script: Path, words: list[str]) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "logfile").write_text("")
    result = runner.invoke(cli, [*words, "-p", str(tmp_path), str(script)])
    assert not result.exception, result.output
    assert captured[0]["restart"] == (str(tmp_path / "w"), str(tmp_path / "w.res"))


def test_explicit_run_subcommand(runner: CliRunner, captured: list[dict[str, Any]], script: Path) -> None:
    result = runner.invoke(cli, ["run", "-q", str(script)])
    assert not result.exception and captured[0]["quiet"] is True


def test_default_folder_is_plams_pid(runner: CliRunner, captured: list[dict[str, Any]], script: Path,
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("plams_cli.cli.run.os.getpid", lambda: 12345)
    assert not runner.invoke(cli, [str(script)]).exception
    assert (captured[0]["parent"], captured[0]["name"]) == (str(tmp_path), "plams.12345")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A=1", ("A", "1")), ("_x=", ("_x", "")), ("name=a=b", ("name", "a=b")), ("é=ü", ("é", "ü"))],
    ids=["simple", "empty-value", "equals-in-value", "unicode"],
)
def test_var_assign_accepts(text: str, expected: tuple[str, str]) -> None:
    assert VarAssign().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["A", "=1", "1a=2", "a-b=1", "for=1", " a=1"],
                         ids=["no-equals", "no-name", "digit-first", "dash", "keyword", "space"])
def test_var_assign_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter):
        VarAssign().convert(text, None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["-v", "x", "S"], "no '='"), (["-j", "-1", "S"], "'-j' / '--jobs'"), (["-f", "a/b/c", "S"], "parent folder"),
     (["-r", "-f", "none", "S"], "nothing to restart"), (["nope.plms"], "does not exist")],
    ids=["var", "jobs", "folder", "restart", "script"],
)
def test_bad_options_are_usage_errors(runner: CliRunner, script: Path, tmp_path: Path, args: list[str],
                                      message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, [str(script) if a == "S" else a for a in args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.plms"]


def test_root_help_shows_run_usage_options_and_groups(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"], prog_name="plams")
    assert result.exit_code == 0
    text = result.stdout
    assert "Usage: plams [OPTIONS] SCRIPT [SCRIPT...]" in text and "or: plams COMMAND [ARGS]..." in text
    for option in ("-p, --path", "-f, --folder", "-v, --var", "-l, --load", "-r, --restart", "-j, --jobs",
                   "-q, --quiet", "--version"):
        assert option in text
    assert "plams -r -f plams.123 SCRIPT.plms" in text
    assert "grid" in text.split("Commands:")[1] and "run" in text.split("Commands:")[1]


def test_run_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["run", "--help"], prog_name="plams")
    assert result.exit_code == 0
    assert "Usage: plams run [OPTIONS] SCRIPT..." in result.stdout
    assert "NAME.res" in result.stdout and "Ctrl-C" in result.stdout


def test_help_after_options_is_run_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["-q", "--help"], prog_name="plams")
    assert result.exit_code == 0 and "Usage: plams run" in result.stdout


@pytest.mark.parametrize("args", [["--version"], ["run", "--version"]], ids=["root", "run"])
def test_version(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0 and result.stdout.startswith("plams ")


def test_bare_plams_shows_help_and_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, [], prog_name="plams")
    assert result.exit_code == 2 and "Usage: plams" in result.output


def test_typo_suggests_command(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["wrkspace"])
    assert result.exit_code == 2
    assert result.stderr == "Error: No such command or script 'wrkspace'. Did you mean 'workspace'?\n"


def test_in_process_run(runner: CliRunner, cli_config: Any, tmp_path: Path, script: Path) -> None:
    cli_config.log.stdout = 3
    script.write_text("j = ShellJob(name='j', runscript='echo 1').run()\nprint('ok', j.ok())\n")
    result = runner.invoke(cli, ["-p", str(tmp_path), "-f", "w", str(script)])
    assert not result.exception, result.output
    assert result.stdout == "ok True\n"
    assert "Finished: 1 successful" in result.stderr
    assert (tmp_path / "w" / "j" / "j.dill").exists()


def test_in_process_script_error(runner: CliRunner, cli_config: Any, tmp_path: Path, script: Path) -> None:
    script.write_text("\n\nundefined_name\n")
    result = runner.invoke(cli, ["-q", "-p", str(tmp_path), "-f", "w", str(script)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f'File "{script}", line 3, in <module>' in result.stderr
    assert "NameError: name 'undefined_name' is not defined" in result.stderr
