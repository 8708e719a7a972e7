"""Small statistics helpers (nearest-rank percentiles, lost ranges)."""

from __future__ import annotations

import math


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"50": None, "95": None, "99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)

    return {"50": rank(50), "95": rank(95), "99": rank(99), "max": round(ordered[-1], 3)}


def lost_ranges(got: set[int], total: int) -> str:
    """``"40-79"`` style ranges of the numbers in ``range(total)`` missing from ``got``."""
    ranges: list[str] = []
    start = None
    for n in range(total + 1):
        missing = n < total and n not in got
        if missing and start is None:
            start = n
        elif not missing and start is not None:
            ranges.append(f"{start}-{n - 1}" if n - 1 > start else str(start))
            start = None
    return ", ".join(ranges)
