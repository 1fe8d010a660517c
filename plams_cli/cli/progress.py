"""The live progress line of ``plams SCRIPT``: jobs by status and elapsed time, on stderr.

Shown only when stderr is a terminal; elsewhere the log's plain lines say the same. While
it is shown, the ``plams`` command keeps job status lines off the screen (see
:func:`plams_cli.cli.run._job_lines_off_screen`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from plams_cli.core.status import in_report_order

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = ["Progress", "format_counts", "format_elapsed"]

_STYLE = {"running": "yellow", "successful": "green", "copied": "cyan", "failed": "red", "crashed": "bold red"}


def format_elapsed(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from one hour on."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_counts(counts: Mapping[str, int]) -> str:
    """``3 running, 10 successful`` in life-cycle order; ``no jobs yet`` when empty."""
    return ", ".join(f"{n} {s}" for s, n in in_report_order(counts)) or "no jobs yet"


class Progress:
    """A rich ``Live`` line fed by ``counts()``; does nothing unless ``console`` is a terminal.

    Parameters
    ----------
    console
        Where to draw (the stderr console); ``None``: nowhere (a run off a terminal).
    counts
        Returns the current status counts (a :class:`~plams_cli.core.lifecycle.StatusTally`).
    enabled
        ``False`` (``-q``) turns it off.
    """

    def __init__(self, console: Console | None, counts: Callable[[], Mapping[str, int]], enabled: bool = True) -> None:
        self.console = console
        self.counts = counts
        self.enabled = enabled and console is not None and console.is_terminal
        self.started = time.monotonic()
        self._live: Any = None

    def render(self) -> Text:
        """The line as drawn now: one line, cut with an ellipsis when the terminal is narrower."""
        from rich.text import Text

        text = Text("plams ", style="bold", no_wrap=True, overflow="ellipsis", end="")
        text.append(format_elapsed(time.monotonic() - self.started), style="dim")
        text.append("  ")
        parts = in_report_order(self.counts())
        if not parts:
            text.append("no jobs yet", style="dim")
        for index, (status, number) in enumerate(parts):
            if index:
                text.append(", ")
            text.append(f"{number} {status}", style=_STYLE.get(status, ""))
        return text

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.live import Live

            # Script output to a terminal stdout goes above the line; piped stdout stays data.
            self._live = Live(console=self.console, get_renderable=self.render, refresh_per_second=4,
                              transient=True, redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
            from plams_cli.runners.local import signals_to_main_thread

            with signals_to_main_thread():  # rich's refresh thread must not take Ctrl-C
                self._live.start(refresh=True)  # drawn at once, not only at the first tick
        return self

    def stop(self) -> None:
        """Remove the line (idempotent)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
