"""Which columns are numbers, decided from a sample of rows.

A column is numeric when nearly all of its sampled values are numbers: a few others
("many", "n/a", a typo) do not turn it into text, they become bad rows with their line
numbers. A column read as text although it holds numbers says why (how many values were
not numbers, and the first of them with its line), so a report never drops a column
without a word.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskstream.pipelines.csvscan import Record, parse_number


def _numeric(numbers: int, others: int) -> bool:
    # At most one in ten of the sampled values may be something else (at least one may,
    # so a single odd value in a small file is a bad row), and numbers must be the most.
    return numbers > others and others <= max(1, (numbers + others) // 10)


def decide_columns(names: list[str], records: Iterable[Record]) -> list[dict[str, Any]]:
    """``[{"name", "numeric"}, …]`` from ``records`` (the sample; rows of another width and
    unreadable ones are skipped). A text column that holds numbers gets ``as_text``:
    ``{"numbers", "others", "line", "value"}``, the first non-number and its line."""
    numbers = [0] * len(names)
    others = [0] * len(names)
    first: list[tuple[int, str] | None] = [None] * len(names)
    for record in records:
        if record.values is None or len(record.values) != len(names):
            continue
        for j, text in enumerate(record.values):
            text = text.strip()
            if not text:
                continue
            if parse_number(text) is not None:
                numbers[j] += 1
                continue
            others[j] += 1
            if first[j] is None:
                first[j] = (record.line, text[:40])
    columns: list[dict[str, Any]] = []
    for j, name in enumerate(names):
        column: dict[str, Any] = {"name": name, "numeric": _numeric(numbers[j], others[j])}
        seen = first[j]
        if not column["numeric"] and numbers[j] and seen is not None:
            column["as_text"] = {"numbers": numbers[j], "others": others[j],
                                 "line": seen[0], "value": seen[1]}
        columns.append(column)
    return columns


def text_column_notes(columns: list[dict[str, Any]]) -> list[str]:
    """One sentence per column read as text although it holds numbers."""
    notes = []
    for column in columns:
        why = column.get("as_text")
        if why:
            sampled = why["numbers"] + why["others"]
            notes.append(f"Column {column['name']!r} was read as text, so it has no totals: "
                         f"{why['others']} of {sampled} sampled values are not numbers, "
                         f"the first on line {why['line']} ({why['value']!r}).")
    return notes
