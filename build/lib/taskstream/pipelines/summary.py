"""The summary a pipeline computes: rows per group, and count/sum/min/max per numeric column.

Partial summaries of chunks merge into the whole file's (``merge``); plain JSON throughout,
so a chunk's part is a small file and a retry can pick up the chunks already done.
"""

from __future__ import annotations

from typing import Any

from taskstream.pipelines.csvscan import Record, parse_number

# Bad rows kept with their line numbers per chunk and in the report (all are counted).
BAD_ROWS_KEPT = 100
NO_GROUP = "(all rows)"
BLANK = "(blank)"


def new_part() -> dict[str, Any]:
    return {"rows": 0, "bad": 0, "bad_rows": [], "groups": {}}


def _stat_slots(n: int) -> list[Any]:
    # per numeric column: count, sum, min, max
    return [0] + [[0, 0.0, None, None] for _ in range(n)]


def numeric_indices(columns: list[dict[str, Any]]) -> list[int]:
    return [i for i, column in enumerate(columns) if column["numeric"]]


def add_record(part: dict[str, Any], record: Record, *, columns: list[dict[str, Any]],
               group_index: int | None, extra_error: str = "",
               numeric: list[int] | None = None) -> None:
    """Count one record into ``part``: into its group, or as a bad row with its line.

    ``numeric`` (from :func:`numeric_indices`) saves working it out per row.
    """
    if numeric is None:
        numeric = numeric_indices(columns)
    error = record.error or extra_error
    values = record.values
    numbers: list[float | None] = []
    if not error and values is not None:
        if len(values) != len(columns):
            error = f"expected {len(columns)} fields, got {len(values)}"
        else:
            for i in numeric:
                text = values[i].strip()
                if not text:
                    numbers.append(None)
                    continue
                number = parse_number(text)
                if number is None:
                    error = f"column {columns[i]['name']!r}: {text[:40]!r} is not a number"
                    break
                numbers.append(number)
    if error or values is None:
        part["bad"] += 1
        if len(part["bad_rows"]) < BAD_ROWS_KEPT:
            part["bad_rows"].append([record.line, error[:200]])
        return
    part["rows"] += 1
    key = NO_GROUP if group_index is None else (values[group_index].strip() or BLANK)
    slots = part["groups"].get(key)
    if slots is None:
        slots = part["groups"][key] = _stat_slots(len(numbers))
    slots[0] += 1
    for stat, number in zip(slots[1:], numbers, strict=True):
        if number is None:
            continue
        stat[0] += 1
        stat[1] += number
        if stat[2] is None or number < stat[2]:
            stat[2] = number
        if stat[3] is None or number > stat[3]:
            stat[3] = number


def merge(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add ``part`` into ``total`` (both from :func:`new_part`); returns ``total``."""
    total["rows"] += part["rows"]
    total["bad"] += part["bad"]
    room = BAD_ROWS_KEPT - len(total["bad_rows"])
    if room > 0:
        total["bad_rows"].extend(part["bad_rows"][:room])
    for key, slots in part["groups"].items():
        mine = total["groups"].get(key)
        if mine is None:
            total["groups"][key] = slots
            continue
        mine[0] += slots[0]
        for stat, other in zip(mine[1:], slots[1:], strict=True):
            if not other[0]:
                continue
            stat[0] += other[0]
            stat[1] += other[1]
            stat[2] = other[2] if stat[2] is None else min(stat[2], other[2])
            stat[3] = other[3] if stat[3] is None else max(stat[3], other[3])
    return total


def group_column(columns: list[dict[str, Any]]) -> int | None:
    """Rows are grouped by the first text column (no text column: one group)."""
    for i, column in enumerate(columns):
        if not column["numeric"]:
            return i
    return None
