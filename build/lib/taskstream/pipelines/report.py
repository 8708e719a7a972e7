"""Rendering a merged summary: a CSV safe to open in a spreadsheet, and an HTML page
with an SVG bar chart drawn here (no plotting library at run time)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.template.loader import render_to_string

from taskstream.pipelines.columns import text_column_notes
from taskstream.pipelines.summary import BAD_ROWS_KEPT

# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
TOP_GROUPS = 20


def neutralise(text: str) -> str:
    """Make a user-supplied cell inert in Excel/LibreOffice/Sheets (OWASP CSV injection)."""
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _number(value: float | None) -> str:
    if value is None:
        return ""
    # Nine decimals: sums of many floats carry binary noise in the last digits.
    value = round(float(value), 9)
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def group_rows(summary: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Groups by row count, largest first (ties by name)."""
    return sorted(summary["groups"].items(), key=lambda kv: (-kv[1][0], kv[0]))


def render_csv(summary: dict[str, Any], columns: list[dict[str, Any]]) -> bytes:
    numeric = [c["name"] for c in columns if c["numeric"]]
    group_name = next((c["name"] for c in columns if not c["numeric"]), "group")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [group_name, "rows"]
    for name in numeric:
        header += [f"{name} count", f"{name} sum", f"{name} min", f"{name} max", f"{name} mean"]
    writer.writerow([neutralise(h) for h in header])
    for key, slots in group_rows(summary):
        row = [neutralise(key), str(slots[0])]
        for count, total, low, high in slots[1:]:
            mean = total / count if count else None
            row += [str(count), _number(total if count else None), _number(low), _number(high),
                    _number(mean)]
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _chart(groups: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of rows per group (the template draws it)."""
    bar, gap, label_w, width = 18, 6, 180, 640
    top = groups[:TOP_GROUPS]
    most = max((slots[0] for _, slots in top), default=0) or 1
    bars = []
    for i, (key, slots) in enumerate(top):
        length = round((width - label_w - 70) * slots[0] / most, 1)
        bars.append({"label": key[:28], "value": slots[0], "y": i * (bar + gap),
                     "width": length, "text_x": label_w + length + 6})
    return {"bars": bars, "height": max(len(top) * (bar + gap), bar), "width": width,
            "label_w": label_w, "bar": bar, "text_dy": bar - 5}


def render_html(*, summary: dict[str, Any], columns: list[dict[str, Any]], title: str,
                total_rows: int) -> bytes:
    groups = group_rows(summary)
    numeric = [c["name"] for c in columns if c["numeric"]]
    table = []
    for key, slots in groups[:TOP_GROUPS]:
        cells = []
        for count, total, _low, _high in slots[1:]:
            cells.append(_number(total if count else None))
        table.append({"key": key, "rows": slots[0], "sums": cells})
    html = render_to_string("taskstream/pipelines/report.html", {
        "title": title, "summary": summary, "numeric": numeric, "table": table,
        "groups": len(groups), "chart": _chart(groups), "total_rows": total_rows,
        "bad_rows": summary["bad_rows"], "bad_kept": BAD_ROWS_KEPT,
        "more_groups": max(len(groups) - TOP_GROUPS, 0),
        "notes": text_column_notes(columns),
    })
    return html.encode("utf-8")
