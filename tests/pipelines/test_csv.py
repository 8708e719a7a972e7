"""Pure logic: sniffing, record offsets and line numbers, chunk spans, summaries, reports."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskstream.pipelines import report, summary
from taskstream.pipelines.csvscan import read_records, scan_chunks
from taskstream.pipelines.exceptions import UnsupportedUpload
from taskstream.pipelines.sniff import sniff_csv

CSV = (b"name,qty\r\n"
       b"a,1\r\n"
       b"\"multi\nline\",2\r\n"
       b"\r\n"
       b"b,x\r\n"
       b"c,3,extra\r\n"
       b"\"q \"\"quoted\"\"\",4\r\n")
COLUMNS = [{"name": "name", "numeric": False}, {"name": "qty", "numeric": True}]


def test_sniff_delimiter_and_bom() -> None:
    assert sniff_csv(b"a;b\n1;2\n").delimiter == ";"
    assert sniff_csv(b"\xef\xbb\xbfa,b\n1,2\n").encoding == "utf-8-sig"
    assert sniff_csv(b"single\n1\n2\n").delimiter == ","
    with pytest.raises(UnsupportedUpload):
        sniff_csv(b"PK\x03\x04rest")


def test_bad_rows_have_their_line_numbers() -> None:
    part = summary.new_part()
    records = list(read_records(io.BytesIO(CSV), encoding="utf-8", delimiter=",", start=10,
                                first_line=2))
    for record in records:
        summary.add_record(part, record, columns=COLUMNS, group_index=0)
    assert part["rows"] == 3
    assert part["bad_rows"] == [[6, "column 'qty': 'x' is not a number"],
                                [7, "expected 2 fields, got 3"]]
    assert part["groups"]["multi\nline"][0] == 1


def test_spans_cut_between_records_and_cover_every_row() -> None:
    spans = list(scan_chunks(io.BytesIO(CSV), start=10, first_line=2, rows_per_chunk=2))
    assert [(s.first_line, s.rows) for s in spans] == [(2, 2), (5, 2), (8, 1)]
    assert spans[0].start == 10 and spans[-1].end == len(CSV)
    lines = []
    for span in spans:
        lines += [r.line for r in read_records(io.BytesIO(CSV), encoding="utf-8", delimiter=",",
                                               start=span.start, end=span.end,
                                               first_line=span.first_line)]
    assert lines == [2, 3, 6, 7, 8]


def test_merge_is_the_same_as_one_pass() -> None:
    data = b"g,v\n" + b"".join(f"g{i % 3},{i}\n".encode() for i in range(100))
    cols = [{"name": "g", "numeric": False}, {"name": "v", "numeric": True}]
    whole = summary.new_part()
    for r in read_records(io.BytesIO(data), encoding="utf-8", delimiter=",", start=4):
        summary.add_record(whole, r, columns=cols, group_index=0)
    merged = summary.new_part()
    for span in scan_chunks(io.BytesIO(data), start=4, first_line=2, rows_per_chunk=7):
        part = summary.new_part()
        for r in read_records(io.BytesIO(data), encoding="utf-8", delimiter=",",
                              start=span.start, end=span.end, first_line=span.first_line):
            summary.add_record(part, r, columns=cols, group_index=0)
        summary.merge(merged, part)
    assert merged == whole


@pytest.mark.parametrize(("cell", "safe"), [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"), ("\r=x", "'\r=x"), ("plain", "plain"),
])
def test_formula_injection_is_neutralised(cell: str, safe: str) -> None:
    assert report.neutralise(cell) == safe
    total = summary.new_part()
    total["groups"] = {cell: [1, [1, -5.0, -5.0, -5.0]]}
    rows = list(csv.reader(io.StringIO(report.render_csv(total, COLUMNS).decode())))
    assert rows[1][0] == safe
    assert rows[1][3] == "-5"  # numbers we computed stay numbers


def test_html_report_escapes_user_data() -> None:
    total = summary.new_part()
    total["groups"] = {"<script>alert(1)</script>": [2, [2, 3.0, 1.0, 2.0]]}
    total["bad_rows"] = [[9, "column 'qty': '<img src=x>' is not a number"]]
    html = report.render_html(summary=total, columns=COLUMNS, title="<b>x</b>.csv",
                              total_rows=3).decode()
    assert "<script>" not in html and "<img" not in html and "<b>x" not in html
    assert "&lt;script&gt;" in html and "<svg" in html


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(st.text(alphabet='ab,"\n\r x', max_size=6), min_size=2,
                              max_size=2), max_size=30),
       per_chunk=st.integers(min_value=1, max_value=7))
def test_chunks_read_the_same_records_as_one_pass(rows: list[list[str]],
                                                  per_chunk: int) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["k", "v"])
    writer.writerows(rows)
    data = out.getvalue().encode()
    header_end = len(b"k,v\r\n")

    def read(start: int, end: int | None, line: int) -> list[tuple[int, list[str] | None]]:
        return [(r.line, r.values) for r in read_records(
            io.BytesIO(data), encoding="utf-8", delimiter=",", start=start, end=end,
            first_line=line)]

    whole = read(header_end, None, 2)
    pieces = []
    for span in scan_chunks(io.BytesIO(data), start=header_end, first_line=2,
                            rows_per_chunk=per_chunk):
        pieces += read(span.start, span.end, span.first_line)
    assert pieces == whole


def test_a_field_over_the_limit_is_a_bad_row_and_the_process_limit_is_untouched() -> None:
    from taskstream.pipelines import csvscan

    assert csv.field_size_limit() == 128 * 1024  # importing the pipelines changed nothing
    long = "x" * (csvscan.FIELD_LIMIT + 1)
    data = f"a,1\r\n{long},2\r\nb,3\r\n".encode()
    records = list(read_records(io.BytesIO(data), encoding="utf-8", delimiter=","))
    assert [r.line for r in records] == [1, 2, 3]
    assert records[1].values is None and "longer than" in records[1].error
    assert records[2].values == ["b", "3"]


@pytest.mark.parametrize(("content", "delimiter"), [
    (b"a,b\n1,2\n", ","),
    (b"a;b;c\n1;2;3\n4;5\n", ";"),
    (b"a\tb\n1\t2\n", "\t"),
    (b"a|b\n1|2\n", "|"),
    (b'name,desc\n"x",a;b\n"y",c;d\n', ","),  # a semicolon inside the values
    (b'a;"b,c"\n1;"2,3"\n', ";"),  # a comma inside quotes does not count
    (b"one column\nhello\n", ","),
])
def test_sniff_finds_the_delimiter(content: bytes, delimiter: str) -> None:
    assert sniff_csv(content).delimiter == delimiter


@pytest.mark.parametrize("size", [16 * 1024, 64 * 1024])
def test_sniff_takes_crafted_quotes_and_newlines_as_one_column(size: int) -> None:
    # The pattern csv.Sniffer backtracks on for minutes (bench/sniff.py has the numbers).
    assert sniff_csv((b'"\n' * size)[:size]).delimiter == ","


def test_sniff_refuses_a_file_whose_rows_do_not_match_its_header() -> None:
    with pytest.raises(UnsupportedUpload, match="does not look like CSV"):
        sniff_csv(b"a,b,c\nfree text\nmore text\nand more\n")
