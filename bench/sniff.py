"""CPU seconds to sniff a crafted upload: ``csv.Sniffer`` (before) vs ``sniff_csv`` (now).

The pattern (a quote and a newline, repeated) makes the standard library's sniffer
backtrack through its regular expressions: 16 KB keeps a core busy for seconds, 64 KB for
minutes, and the regex holds the GIL, so an ASGI process stops meanwhile. ``sniff_csv``
parses a bounded sample with ``csv.reader`` per candidate delimiter instead.

    python -m bench.sniff            # now only (instant)
    python -m bench.sniff --before   # also the stdlib sniffer (minutes for 64 KB)

Results: ``bench/results/sniff-latest.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from taskstream.pipelines.sniff import SAMPLE_BYTES, sniff_csv

SIZES = (16 * 1024, 64 * 1024)
RESULTS = Path(__file__).resolve().parent / "results"


def crafted(size: int) -> bytes:
    return (b'"\n' * (size // 2 + 1))[:size]


def cpu(fn: object, *args: object) -> float:
    start = time.process_time()
    try:
        fn(*args)  # type: ignore[operator]
    except Exception:  # a refusal is an answer too; only the time matters here
        pass
    return round(time.process_time() - start, 4)


def stdlib_sniff(head: bytes) -> None:
    # What sniff_csv did before: the whole (≤ 64 KB) sample through csv.Sniffer.
    text = head.decode()
    sample = text[: text.rfind("\n") + 1] if "\n" in text else text
    csv.Sniffer().sniff(sample, delimiters=",;\t|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", action="store_true", help="also time csv.Sniffer")
    args = parser.parse_args()
    results = {}
    for size in SIZES:
        head = crafted(size)[:SAMPLE_BYTES]
        row = {"now_cpu_s": cpu(sniff_csv, head)}
        if args.before:
            row["before_cpu_s"] = cpu(stdlib_sniff, head)
        results[f"{size // 1024} KB"] = row
        print(f"{size // 1024} KB: {row}", flush=True)
    out = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_seconds": results}
    (RESULTS / "sniff-latest.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
