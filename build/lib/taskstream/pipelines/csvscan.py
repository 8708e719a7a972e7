"""Reading CSV records out of a byte range of a file, with byte offsets and line numbers.

A record may span lines (a quoted newline), so chunks are cut between records, never
between lines: ``csv.reader`` pulls one line at a time, and the bytes it has pulled when
it hands back a record are exactly where the next record starts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

# Longest field accepted (characters); a longer one is a bad row, not a crash. Checked per
# record here: ``csv.field_size_limit`` is process-wide, and the host's to set (a field over
# its limit, 128 Ki characters by default, is a bad row too).
FIELD_LIMIT = 64 * 1024


@dataclass
class Record:
    line: int  # the record's first line in the file (1-based)
    end: int  # byte offset just past the record
    next_line: int  # the line number at ``end``
    values: list[str] | None  # None: unreadable (error says why)
    error: str = ""


class _Lines:
    def __init__(self, f: IO[bytes], start: int, end: int | None, first_line: int,
                 encoding: str) -> None:
        f.seek(start)
        self.f = f
        self.offset = start
        self.end = end
        self.line = first_line - 1  # lines consumed so far
        self.encoding = encoding

    def __iter__(self) -> Iterator[str]:
        while self.end is None or self.offset < self.end:
            raw = self.f.readline()
            if not raw:
                return
            self.offset += len(raw)
            self.line += 1
            yield raw.decode(self.encoding, errors="replace")


def read_records(f: IO[bytes], *, encoding: str, delimiter: str, start: int = 0,
                 end: int | None = None, first_line: int = 1) -> Iterator[Record]:
    """Records from ``start`` up to ``end`` (a record boundary), each with its line number."""
    lines = _Lines(f, start, end, first_line, encoding)
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    while True:
        line = lines.line + 1
        began = lines.offset
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(line=line, end=lines.offset, next_line=lines.line + 1, values=None,
                         error=f"unreadable: {exc}")
            continue
        if not values:
            continue  # a blank line is not a row
        # A record of fewer bytes than the limit cannot hold a longer field: most skip this.
        if lines.offset - began > FIELD_LIMIT and max(map(len, values)) > FIELD_LIMIT:
            yield Record(line=line, end=lines.offset, next_line=lines.line + 1, values=None,
                         error=f"unreadable: a field is longer than {FIELD_LIMIT} characters")
            continue
        yield Record(line=line, end=lines.offset, next_line=lines.line + 1, values=values)


def parse_number(text: str) -> float | None:
    """A finite number, or None when ``text`` is not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    # inf and nan compare unequal to themselves after subtraction; cheaper than isfinite.
    return value if value - value == 0.0 else None


@dataclass
class Span:
    start: int
    end: int
    first_line: int
    rows: int


def scan_chunks(f: IO[bytes], *, start: int, first_line: int, rows_per_chunk: int,
                quote: bytes = b'"') -> Iterator[Span]:
    """Cut the bytes from ``start`` into spans of ``rows_per_chunk`` records.

    Fast: no parsing, only the quote count of each line. A record ends at a line end
    where its quotes are balanced (RFC 4180 escapes a quote as two, keeping the parity).
    A malformed file may get a cut in an odd place; its rows then show up as bad rows.
    """
    f.seek(start)
    offset, line = start, first_line - 1
    span_start, span_line, rows, quotes = start, first_line, 0, 0
    for raw in iter(f.readline, b""):
        offset += len(raw)
        line += 1
        if quotes == 0 and raw in (b"\n", b"\r\n", b"\r"):
            continue  # a blank line between records is not a row
        quotes += raw.count(quote)
        if quotes % 2:
            continue  # inside a quoted field that goes on in the next line
        quotes = 0
        rows += 1
        if rows == rows_per_chunk:
            yield Span(span_start, offset, span_line, rows)
            span_start, span_line, rows = offset, line + 1, 0
    if rows or quotes:
        yield Span(span_start, offset, span_line, rows + (1 if quotes else 0))
