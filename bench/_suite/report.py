"""The results as a Markdown table, as JSON, and as ``bench/RESULTS.md``."""

from __future__ import annotations

import json
from typing import Any

from .contenders import LABELS
from .measure import Figure
from .targets import targets_md
from .workloads import Row


def ratio(row: Row, name: str) -> float | None:
    """plams-cli's median over contender ``name``'s on this row, None where either has no figure."""
    ours, other = row.figures.get("plams-cli"), row.figures.get(name)
    if ours is None or other is None or ours.median is None or not other.median:
        return None
    return ours.median / other.median


def table(rows: list[Row], contenders: list[str]) -> str:
    """Markdown table: a column per contender, then plams-cli's ratio to PLAMS (or signac) and to the floor."""
    refs = [name for name in ("plams", "signac") if name in contenders]
    head = ["workload", "unit", *(LABELS[c] for c in contenders)]
    head += [f"plams-cli / {LABELS[r]}" for r in refs if r == "plams"]
    if "signac" in refs and "plams" not in refs:
        head.append("plams-cli / signac")
    elif "signac" in refs:
        head[-1] = "plams-cli / PLAMS (signac)"
    if "floor" in contenders:
        head.append("plams-cli / floor")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    for row in rows:
        cells = [row.label, row.unit]
        for name in contenders:
            figure = row.figures.get(name)
            cell = figure.cell(row.digits) if figure else "–"
            if figure and figure.note:
                notes.append(f"{row.key} / {LABELS[name]}: {figure.note}")
                cell += f" [{len(notes)}]"
            cells.append(cell)
        if refs:
            value = ratio(row, row.reference) if row.reference in refs else None
            cells.append(f"{value:.2f}" if value is not None else "–")
        if "floor" in contenders:
            value = ratio(row, "floor")
            cells.append(f"{value:.2f}" if value is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines) + "\n"


def as_json(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, for machines: every run's value, medians, min, max, ratios."""
    workloads = []
    for row in rows:
        results: dict[str, Any] = {}
        for name, figure in row.figures.items():
            entry: dict[str, Any] = {"runs": [round(v, 6) for v in figure.values]}
            if figure.values:
                entry.update(median=round(figure.median or 0.0, 6), min=round(min(figure.values), 6),
                             max=round(max(figure.values), 6))
            if figure.text:
                entry["text"] = figure.text
            if figure.note:
                entry["note"] = figure.note
            results[name] = entry
        ratios = {f"to_{name}": round(value, 4) for name in ("plams", "signac", "floor")
                  if (value := ratio(row, name)) is not None}
        workloads.append({"key": row.key, "label": row.label, "unit": row.unit, "digits": row.digits,
                          "reference": row.reference, "results": results, "ratios": ratios})
    return {**meta, "workloads": workloads}


def rows_from_json(data: dict[str, Any]) -> list[Row]:
    """The rows of a run saved by :func:`as_json` (``bench/run.py --render`` writes its reports again).

    Raises
    ------
    ValueError
        The file was written by an older ``bench/run.py`` (without the decimals of each row).
    """
    rows = []
    for workload in data["workloads"]:
        if "digits" not in workload:
            raise ValueError(f"{workload['key']} has no 'digits': the file comes from an older bench/run.py")
        figures = {name: Figure(list(result.get("runs", [])), result.get("text", ""), result.get("note", ""))
                   for name, result in workload["results"].items()}
        rows.append(Row(workload["key"], workload["label"], workload["unit"], workload["digits"], figures,
                        workload.get("reference", "plams")))
    return rows


def results_md(rows: list[Row], contenders: list[str], meta: dict[str, Any]) -> str:
    """The text of ``bench/RESULTS.md``."""
    machine = meta["machine"]
    known = meta["versions"]  # (in the contenders' order: a saved JSON has its keys sorted)
    versions = ", ".join(f"{LABELS.get(k, k)} {known[k]}" for k in [*contenders, *sorted(set(known) - set(contenders))]
                         if k in known)
    params = meta["params"]
    return (
        "# Benchmark results\n\n"
        f"Written by `python bench/run.py {' '.join(meta['argv'])}`".rstrip() + f" on {meta['date']}.\n\n"
        f"Machine: {machine['cores']} cores, {machine['system']}, Python {machine['python']}; "
        f"load average at start {machine['load_start']}, at end {machine['load_end']}. Versions: {versions}.\n"
        f"Runs on tmpfs ({params['base']}); median of the runs (min–max in brackets); "
        f"{params['repeats']} runs per light case, {params['heavy_repeats']} per heavy one; "
        "contenders alternate, the order rotated each round. Times of fresh processes are seen from the "
        "parent (start-up included); per-job times are timed inside the child, start-up excluded. "
        "Ratios are plams-cli's median over the other's: below 1 plams-cli is faster (or smaller).\n\n"
        + table(rows, contenders)
        + "\nThe floor is the least code doing the same work (`bench/_suite/floor.py`): mkdir, write the input "
        "and runscript, `sh` it, pickle a small record; for `-r` a hash lookup and one folder rename per job, "
        "for `-l` hard links; for `load_all` `pickle.load` of one small file per job.\n"
        "\n## Targets of issue 14\n\n"
        "plams-cli's medians of this run against each target (N as above):\n\n"
        + targets_md(rows)
    )


def dumps(data: dict[str, Any]) -> str:
    """JSON text, stable key order."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
