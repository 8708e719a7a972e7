"""Which columns are numbers: a few bad values are bad rows, a text column says why."""

from __future__ import annotations

import io

from taskstream.pipelines import summary
from taskstream.pipelines.columns import decide_columns, text_column_notes
from taskstream.pipelines.csvscan import read_records
from tests.pipelines.data import planted


def test_five_planted_bad_rows_are_five_bad_rows_and_the_totals_stay() -> None:
    content, bad_lines = planted()
    records = list(read_records(io.BytesIO(content), encoding="utf-8", delimiter=","))
    names, rows = records[0].values, records[1:]
    assert names is not None
    columns = decide_columns(names, rows)
    assert [c["numeric"] for c in columns] == [False, True, True, True]
    part = summary.new_part()
    for record in rows:
        summary.add_record(part, record, columns=columns,
                           group_index=summary.group_column(columns))
    assert [line for line, _ in part["bad_rows"]] == bad_lines
    assert part["bad"] == 5 and part["rows"] == 40
    assert part["bad_rows"][0] == [3, "column 'qty': 'many' is not a number"]
    qty_sum = sum(slots[2][1] for slots in part["groups"].values())
    assert qty_sum == sum(line for line in range(2, 47) if line not in bad_lines)
    assert text_column_notes(columns) == []


def test_a_column_of_mostly_text_is_text_and_the_report_says_why() -> None:
    content = b"name,code\r\n" + b"".join(
        (f"n{i},{i}\r\n" if i % 3 else f"n{i},X{i}\r\n").encode() for i in range(1, 31))
    records = list(read_records(io.BytesIO(content), encoding="utf-8", delimiter=","))
    names = records[0].values
    assert names is not None
    columns = decide_columns(names, records[1:])
    assert columns[1] == {"name": "code", "numeric": False,
                          "as_text": {"numbers": 20, "others": 10, "line": 4, "value": "X3"}}
    assert "name" in columns[0] and "as_text" not in columns[0]  # no number at all: no note
    assert text_column_notes(columns) == [
        "Column 'code' was read as text, so it has no totals: 10 of 30 sampled values are "
        "not numbers, the first on line 4 ('X3')."]


def test_one_odd_value_in_a_tiny_file_is_a_bad_row_but_half_is_text() -> None:
    def kinds(*values: str) -> bool:
        data = ("v\r\n" + "".join(f"{v}\r\n" for v in values)).encode()
        records = list(read_records(io.BytesIO(data), encoding="utf-8", delimiter=","))
        return bool(decide_columns(["v"], records[1:])[0]["numeric"])

    assert kinds("1", "2", "many")
    assert not kinds("1", "many")
    assert not kinds("a", "b")
    assert kinds("1", "", "")
