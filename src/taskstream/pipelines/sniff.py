"""What an upload really is, judged from its first bytes (the name and type are not asked)."""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass

from taskstream.pipelines.exceptions import UnsupportedUpload

SAMPLE_BYTES = 64 * 1024

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


@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    delimiter: str


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
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise UnsupportedUpload("the file holds control characters: not a CSV file")
    # Whole lines only: a cut last line would mislead the sniffer.
    sample = text[: text.rfind("\n") + 1] if "\n" in text else text
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        if any(d in first for d in _DELIMITERS):
            raise UnsupportedUpload("the file does not look like CSV") from None
        delimiter = ","  # a single column has nothing to sniff
    return CsvFormat(encoding=encoding, delimiter=delimiter)
