"""The speed and memory targets of issue 14, checked against plams-cli's medians of one run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .workloads import Row


def _median(rows: dict[str, Row], key: str, name: str = "plams-cli") -> float | None:
    row = rows.get(key)
    figure = row.figures.get(name) if row else None
    return figure.median if figure else None


def _over(rows: dict[str, Row], key: str, other_key: str, other: str = "plams-cli") -> float | None:
    ours, theirs = _median(rows, key), _median(rows, other_key, other)
    return ours / theirs if ours is not None and theirs else None


@dataclass(frozen=True)
class Target:
    """One target: what is measured (from the rows by key), its limit, how it is shown."""

    label: str
    measure: Callable[[dict[str, Row]], float | None]
    limit: float
    unit: str = ""
    digits: int = 3


TARGETS = (
    Target("`-r` over N finished jobs, nothing to run", lambda r: _median(r, "restart"), 3.0, "s", 2),
    Target("`-r` ÷ the first run of the same script", lambda r: _over(r, "restart", "first_run"), 0.07),
    Target("`-l` over N finished jobs, nothing to run", lambda r: _median(r, "load"), 3.0, "s", 2),
    Target("`load_all`", lambda r: _median(r, "load_all"), 0.1, "ms/job"),
    Target("resident memory of `-r` over N jobs", lambda r: _median(r, "memory_restart"), 150, "MB", 0),
    Target("`import + init + finish`", lambda r: _median(r, "startup_init"), 0.08, "s"),
    Target("`plams --version`", lambda r: _median(r, "startup_version"), 0.12, "s"),
    Target("serial trivial jobs ÷ the bare loop (floor)", lambda r: _over(r, "serial", "serial", "floor"), 1.5,
           "", 2),
)


def _shown(value: float, unit: str, digits: int) -> str:
    return f"{value:.{digits}f} {unit}".rstrip()


def targets_md(rows: list[Row]) -> str:
    """A Markdown table of every target: plams-cli's figure, the limit, whether it is met (or not measured)."""
    by_key = {row.key: row for row in rows}
    lines = ["| target | plams-cli | limit | met |", "|---|---|---|---|"]
    for target in TARGETS:
        value = target.measure(by_key)
        limit = f"≤ {_shown(target.limit, target.unit, target.digits)}"
        if value is None:
            lines.append(f"| {target.label} | not measured | {limit} | – |")
        else:
            met = "yes" if value <= target.limit else "**no**"
            lines.append(f"| {target.label} | {_shown(value, target.unit, target.digits)} | {limit} | {met} |")
    return "\n".join(lines) + "\n"
