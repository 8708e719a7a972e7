"""CSV test data and an independent recomputation of what the report must say."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from typing import Any

REGIONS = [f"region-{i:02d}" for i in range(40)] + ["=HYPERLINK(\"http://x\")", "+cmd", "@SUM(1)"]


def make_csv(rows: int, *, seed: int = 1, bad_every: int = 0) -> bytes:
    """``region,product,qty,price`` rows; every ``bad_every``-th row is broken."""
    rnd = random.Random(seed)
    out = io.StringIO()
    out.write("region,product,qty,price\r\n")
    for i in range(rows):
        if bad_every and i % bad_every == bad_every - 1:
            out.write("region-00,widget,not-a-number,1.5\r\n" if i % 2 else "short,row\r\n")
            continue
        region = REGIONS[rnd.randrange(len(REGIONS))]
        quoted = '"' + region.replace('"', '""') + '"'
        out.write(f"{quoted},p{rnd.randrange(100)},{rnd.randrange(1, 50)},"
                  f"{rnd.randrange(100, 100_000) / 100}\r\n")
    return out.getvalue().encode()


def recompute(content: bytes) -> dict[str, Any]:
    """Rows, qty and price sums per region, and the bad rows' line numbers, the slow way."""
    groups: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    bad: list[int] = []
    reader = csv.reader(io.StringIO(content.decode()))
    next(reader)
    for line, row in enumerate(reader, start=2):
        try:
            qty, price = float(row[2]), float(row[3])
            if len(row) != 4:
                raise ValueError
        except (ValueError, IndexError):
            bad.append(line)
            continue
        g = groups[row[0]]
        g[0] += 1
        g[1] += qty
        g[2] += price
    return {"groups": dict(groups), "bad": bad}


def planted() -> tuple[bytes, list[int]]:
    """40 good rows with five bad ones planted, "many" among the first rows; their lines."""
    lines = ["region,code,qty,price"]
    bad = {3: "north,30,many,2.5", 9: "south,90,4,n/a", 17: "east,170,7",
           25: "west,250,12x,1.0", 33: "north,330,,seven"}
    for line in range(2, 47):
        lines.append(bad.get(line, f"r{line % 4},{line * 10},{line},{line / 4}"))
    return ("\r\n".join(lines) + "\r\n").encode(), sorted(bad)
