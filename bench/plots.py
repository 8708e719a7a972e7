"""PNG plots of a hub bench run: naive vs taskstream side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {"naive": "#c0504d", "hub": "#4f81bd", "floor": "#9bbb59"}
LABELS = {"naive": "naive Channels", "hub": "taskstream hub", "floor": "bare ASGI"}


def _bars(ax: Any, values: dict[str, float | None], title: str, unit: str,
          target: float | None = None, fmt: str = "{:.3g}") -> None:
    names = [t for t in COLORS if values.get(t) is not None]
    heights = [float(values[t] or 0.0) for t in names]
    bars = ax.bar([LABELS[t] for t in names], heights, color=[COLORS[t] for t in names])
    for bar, value in zip(bars, heights, strict=True):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    if target is not None:
        ax.axhline(target, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"target {fmt.format(target)}", (0.0, target), xycoords=("axes fraction",
                    "data"), xytext=(3, 2), textcoords="offset points", ha="left",
                    va="bottom", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.margins(y=0.2)


def _get(result: dict[str, Any], scenario: str, target: str, *path: str) -> Any:
    value: Any = result["scenarios"].get(scenario, {}).get(target)
    for key in path:
        if value is None:
            return None
        value = value.get(key)
    return value


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    written = []
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    ((a_rec, a_burst, a_cpu), (a_p50, a_p99, a_mem)) = axes
    n = _get(result, "reconnect", "hub", "events") or 100
    pair = ("naive", "hub")
    _bars(a_rec, {t: _get(result, "reconnect", t, "received") for t in pair},
          f"reconnect: events received of {n}\n(2 s drop)", "events", target=n, fmt="{:.0f}")
    _bars(a_burst, {t: 100 * (_get(result, "burst", t, "delivered_ratio") or 0) for t in pair},
          "burst: delivered / expected", "%", target=100, fmt="{:.1f}")
    _bars(a_cpu, {t: _get(result, "fanout", t, "server_cpu_us_per_delivery") for t in pair},
          "fan-out: server CPU per delivery\n(log scale)", "µs", target=20.0)
    a_cpu.set_yscale("log")
    _bars(a_p50, {t: _get(result, "latency", t, "hop_ms", "50") for t in pair},
          "publish → client, p50", "ms", target=1.0)
    _bars(a_p99, {t: _get(result, "latency", t, "hop_ms", "99") for t in pair},
          "publish → client, p99", "ms", target=3.0)
    mem = {t: _get(result, "idle", t, "bytes_per_socket") for t in COLORS}
    _bars(a_mem, {t: v / 1024 if v is not None else None for t, v in mem.items()},
          "idle memory per subscribed socket", "KiB", target=20.0)
    fig.suptitle(f"taskstream hub vs naive Channels ({result['mode']} run, {result['ts']})")
    fig.tight_layout()
    path = out_dir / "hub-summary.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for target in ("naive", "hub"):
        samples = sorted(_get(result, "latency", target, "hop_ms_samples") or [])
        if samples:
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.plot(samples, ys, label=LABELS[target], color=COLORS[target])
    # The hub's hop split: when the same events reached a plain Redis subscriber.
    tap = _get(result, "latency", "hub", "to_redis_subscriber_samples")
    if tap:
        samples = sorted(tap)
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        ax.plot(samples, ys, label="publish → plain Redis subscriber (hub run)",
                color=COLORS["hub"], linestyle="--", linewidth=1)
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1, label="p50 target 1 ms")
    ax.axvline(3.0, color="black", linestyle="--", linewidth=1, label="p99 target 3 ms")
    ax.set_xscale("log")
    ax.set_xlabel("publish → client receive (ms, log scale)")
    ax.set_ylabel("fraction of events")
    ax.set_title("hop latency CDF, sequential events")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = out_dir / "hub-latency-cdf.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
