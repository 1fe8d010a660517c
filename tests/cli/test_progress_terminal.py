"""Progress on the screen: the live display on a terminal, plain log lines elsewhere, nothing with -q."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import PLAMS

Run = Callable[..., subprocess.CompletedProcess[str]]

SCRIPT = """\
for i in range(3):
    ShellJob(name=f"j{i}", runscript=f"echo {i}").run()
ShellJob(name="bad", runscript="exit 3").run()
print("data")
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STATUS_LINE = re.compile(r"JOB j\d (STARTED|RUNNING|SUCCESSFUL)")


def run_on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run plams with stderr on a pseudo-terminal; return its exit status, the terminal's text and stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    environment = {key: value for key, value in env.items()
                   if key not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")}
    environment["TERM"] = "xterm-256color"
    process = subprocess.Popen([*PLAMS, *args], cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120  # a safety net against a hang, not a measurement
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            process.kill()
            pytest.fail("plams did not end")
    finally:
        os.close(master)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    process.stdout.close()
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace"), stdout


def test_terminal_shows_the_live_display_and_no_job_status_lines(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    status, screen, stdout = run_on_terminal(["-f", "w", "s.plms"], tmp_path, env)
    assert status == 0, screen
    text = ANSI.sub("", screen)
    assert re.search(r"plams \d\d:\d\d  ", text), text  # the live display: elapsed time, counts by status
    assert not STATUS_LINE.search(text), text
    assert "Running in" in text and "JOB bad " in text  # level 0-1 messages still reach the screen
    assert "Finished:" in text and "3 successful" in text
    assert stdout == "data\n"
    log = (tmp_path / "w" / "logfile").read_text()
    assert "JOB j0 STARTED" in log and "JOB j2 SUCCESSFUL" in log  # the logfile keeps every line


def test_without_a_terminal_plain_log_lines(tmp_path: Path, plams: Run) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    result = plams("-f", "w", "s.plms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "JOB j0 STARTED" in result.stderr and "JOB j2 SUCCESSFUL" in result.stderr
    assert "\x1b[" not in result.stderr and not re.search(r"plams \d\d:\d\d", result.stderr)
    assert result.stdout == "data\n"


def test_terminal_quiet_shows_only_that_jobs_crashed(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT)
    status, screen, stdout = run_on_terminal(["-q", "-f", "w", "s.plms"], tmp_path, env)
    line = f"plams: 1 job crashed, 0 failed (see {tmp_path / 'w' / 'logfile'})"
    assert (status, ANSI.sub("", screen).replace("\r\n", "\n"), stdout) == (0, line + "\n", "data\n")


def test_terminal_quiet_shows_nothing_when_every_job_succeeds(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "s.plms").write_text(SCRIPT.replace('"exit 3"', '"exit 0"'))
    status, screen, stdout = run_on_terminal(["-q", "-f", "w", "s.plms"], tmp_path, env)
    assert (status, screen, stdout) == (0, "", "data\n")
