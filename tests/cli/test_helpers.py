"""Unit tests of the master script's helpers: tracebacks, the progress line (restart: tests/core)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from plams_cli.cli._script import Script, ScriptModule, format_user_traceback
from plams_cli.cli.progress import Progress, format_counts, format_elapsed


# --- tracebacks -----------------------------------------------------------------------
def _raise_from(tmp_path: Path, body: str) -> BaseException:
    script = Script(str(tmp_path / "user.plms"), body.encode())
    (tmp_path / "user.plms").write_text(body)
    module = ScriptModule()
    with module.installed():
        try:
            module.run(script)
        except Exception as exc:  # noqa: BLE001 - the point of the helper
            return exc
    pytest.fail("the script did not raise")


def test_traceback_keeps_user_frames_only(tmp_path: Path) -> None:
    exc = _raise_from(tmp_path, "import json\n\ndef parse():\n    return json.loads('{')\n\nparse()\n")
    text = format_user_traceback(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert f'File "{tmp_path / "user.plms"}", line 6, in <module>' in text
    assert 'line 4, in parse' in text and "json.loads('{')" in text
    assert "_script.py" not in text and "json/decoder.py" not in text
    assert text.splitlines()[-1].startswith("json.decoder.JSONDecodeError")


def test_traceback_of_chained_exceptions_is_cut_too(tmp_path: Path) -> None:
    exc = _raise_from(tmp_path, "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    raise KeyError('k') from e\n")
    text = format_user_traceback(exc)
    assert "ZeroDivisionError" in text and "direct cause" in text and "_script.py" not in text


def test_syntax_error_shows_file_line_and_caret(tmp_path: Path) -> None:
    script = Script(str(tmp_path / "bad.plms"), b"x = (\n")
    with pytest.raises(SyntaxError) as info:
        script.compile()
    text = format_user_traceback(info.value)
    assert f'File "{tmp_path / "bad.plms"}", line 1' in text and "SyntaxError" in text
    assert "^" in text and "_script.py" not in text


def test_script_module_restores_main_argv_path(tmp_path: Path) -> None:

    main, argv, path = sys.modules["__main__"], sys.argv[:], sys.path[:]
    module = ScriptModule([("VAR", "v")])
    with module.installed():
        module.run(Script(str(tmp_path / "s.plms"), b"import sys\nseen = (sys.modules['__main__'].VAR, sys.argv)\n"))
    assert module.namespace["seen"] == ("v", [str(tmp_path / "s.plms")])
    assert (sys.modules["__main__"], sys.argv, sys.path) == (main, argv, path)


# --- progress -------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00"), (61.9, "01:01"), (3725, "1:02:05")],
                         ids=["zero", "minute", "hour"])
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_format_counts_in_life_cycle_order() -> None:
    assert format_counts({"successful": 3, "running": 2, "zzz": 1, "crashed": 0}) == "2 running, 3 successful, 1 zzz"
    assert format_counts({}) == "no jobs yet"


def test_progress_is_off_when_stderr_is_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with Progress(console, lambda: {"running": 1}) as progress:
        assert not progress.enabled
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_progress_draws_on_a_terminal_and_goes_away() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    with Progress(console, lambda: {"running": 2, "successful": 5}) as progress:
        assert progress.enabled
        assert "2 running, 5 successful" in progress.render().plain
    assert "2 running" in console.file.getvalue()  # type: ignore[attr-defined]


def test_progress_line_is_cut_with_an_ellipsis_on_a_narrow_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=20)
    progress = Progress(console, lambda: {"running": 3, "successful": 100, "crashed": 2})
    lines = console.render_lines(progress.render(), console.options, pad=False)
    assert len(lines) == 1
    text = "".join(segment.text for segment in lines[0])
    assert text.startswith("plams 00:00") and text.endswith("…") and len(text) == 20


def test_progress_quiet() -> None:
    console = Console(file=io.StringIO(), force_terminal=True)
    assert not Progress(console, dict, enabled=False).enabled
