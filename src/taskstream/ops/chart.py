"""The overview's throughput chart, drawn on the server as SVG (no chart library, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 600, 160, 14, 18, 30


def throughput_svg(minutes: Sequence[tuple[int, int]], *, what: str = "Jobs",
                   rate: bool = False) -> str:
    """Stacked bars per minute (succeeded under failed), oldest left; scales to its box.

    With ``rate``, a line of each minute's failure rate over the bars (0 at the axis, 100 %
    at the top; minutes where nothing finished have no point)."""
    peak = max((s + f for s, f in minutes), default=0)
    scale = max(peak, 1)
    plot_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT) / max(len(minutes), 1)
    bars = []
    for i, (ok, bad) in enumerate(minutes):
        x = LEFT + i * step
        ok_h, bad_h = plot_h * ok / scale, plot_h * bad / scale
        base = HEIGHT - BOTTOM
        if ok:
            bars.append(f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" '
                        f'width="{step * 0.8:.1f}" height="{ok_h:.1f}"/>')
        if bad:
            bars.append(f'<rect class="bad" x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" '
                        f'width="{step * 0.8:.1f}" height="{bad_h:.1f}"/>')
    if rate:
        points = [f"{LEFT + i * step + step * 0.4:.1f},"
                  f"{HEIGHT - BOTTOM - plot_h * bad / (ok + bad):.1f}"
                  for i, (ok, bad) in enumerate(minutes) if ok + bad]
        if points:
            bars.append(f'<polyline class="rate" points="{" ".join(points)}"/>')
    total_ok = sum(s for s, _ in minutes)
    total_bad = sum(f for _, f in minutes)
    label = (f"{what} finished per minute over the last hour: {total_ok} succeeded, "
             f"{total_bad} failed; at most {peak} in a minute")
    if rate and total_ok + total_bad:
        label += f"; failure rate {total_bad / (total_ok + total_bad):.0%}"
    base = HEIGHT - BOTTOM
    return (
        f'<svg class="throughput" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{peak}</text>'
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 3}">60 min ago</text>'
        f'<text x="{WIDTH}" y="{HEIGHT - 3}" text-anchor="end">now</text>'
        + "".join(bars) + "</svg>")
