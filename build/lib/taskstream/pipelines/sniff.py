"""What an upload really is, judged from its first bytes (the name and type are not asked).

Everything here runs in the upload request and is linear in a bounded sample: the
delimiter is decided by parsing the sample's first records with each candidate
(``csv.reader``, a C state machine), never by ``csv.Sniffer``, whose regular expressions
take seconds to minutes on a few kilobytes of crafted quotes and newlines (and hold the
GIL meanwhile, so the whole web process stops).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from itertools import islice

from taskstream.pipelines.exceptions import UnsupportedUpload

SAMPLE_BYTES = 64 * 1024
# The delimiter is decided from at most this much text and this many records.
SNIFF_CHARS = 16 * 1024
SNIFF_RECORDS = 50

# Formats people upload by mistake (or on purpose: an archive is how a zip bomb arrives).
_MAGIC = (
    (b"PK\x03\x04", "a zip archive"), (b"PK\x05\x06", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"), (b"BZh", "a bzip2 file"), (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"), (b"Rar!", "a rar archive"),
    (b"%PDF", "a PDF"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old Office file"),
    (b"\x7fELF", "an executable"), (b"MZ", "an executable"),
)
_DELIMITERS = ",;\t|"
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    delimiter: str


def _score(sample: str, delimiter: str) -> tuple[float, int, int] | None:
    """How well ``delimiter`` splits the sample: (share of records with the header's field
    count, minus the fields with a stray quote, the count), or None when the header does not
    split into two fields or more. A stray quote (``a;"b`` split at the comma of
    ``a;"b,c"``) means the delimiter cut through a quoted field."""
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    try:
        records = [r for r in islice(reader, SNIFF_RECORDS) if r]
    except csv.Error:  # e.g. a field over the process's field size limit
        return None
    if not records or len(records[0]) < 2:
        return None
    width = len(records[0])
    stray = sum('"' in value for record in records for value in record)
    return sum(len(r) == width for r in records) / len(records), -stray, width


def sniff_delimiter(sample: str) -> str | None:
    """The candidate that splits the sample most regularly (ties: the first of ``,;\\t|``);
    None when none splits the header, so the file is one column."""
    best: tuple[float, int, int] | None = None
    choice = None
    for delimiter in _DELIMITERS:
        score = _score(sample, delimiter)
        if score is not None and (best is None or score > best):
            best, choice = score, delimiter
    # Fewer than half the records agree with the header: not a table we can read.
    if best is not None and best[0] < 0.5:
        raise UnsupportedUpload("the file does not look like CSV")
    return choice


def sniff_csv(head: bytes) -> CsvFormat:
    """The encoding and delimiter of a CSV from its first bytes, or UnsupportedUpload."""
    if not head.strip():
        raise UnsupportedUpload("the file is empty")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise UnsupportedUpload(f"this is {what}, not a CSV file")
    if b"\x00" in head:
        raise UnsupportedUpload("this is a binary file, not a CSV file")
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        # Not final: the sample may end inside a multi-byte character.
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        raise UnsupportedUpload("the file is not UTF-8 text") from None
    if _CONTROL.search(text):
        raise UnsupportedUpload("the file holds control characters: not a CSV file")
    # Whole lines only: a cut last line would look like a short record.
    sample = text[:SNIFF_CHARS]
    if "\n" in sample:
        sample = sample[: sample.rfind("\n") + 1]
    return CsvFormat(encoding=encoding, delimiter=sniff_delimiter(sample) or ",")
