"""Renders bench/results.json (from clamator-bench) as a PNG: Rust vs Python per scenario,
clamator against the hand-written floor (throughput and latency against calls in flight,
throughput against payload size), services per process, and the in-process Rust peers."""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUST, PY, FLOOR = "#d2691e", "#3776ab", "#555555"


def rust_vs_python(ax, rows) -> None:
    labels, rust, py = [], [], []
    for r in rows:
        if not r["pairing"].startswith("Rust") or r["scenario"] == "Redis":
            continue
        base = next(
            (o for o in rows if o["scenario"] == r["scenario"] and o["metric"] == r["metric"]
             and (o["pairing"].startswith("Python client → Python") or (r["scenario"] == "S6" and o["pairing"].startswith("Python")))),
            None,
        )
        if base is None:
            continue
        labels.append(f'{r["scenario"]} {r["metric"]}\n({r["unit"]})')
        rust.append(r["value"])
        py.append(base["value"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], rust, width=0.4, label="clamator for Rust", color=RUST)
    ax.bar([i + 0.2 for i in x], py, width=0.4, label="clamator 0.1.9 (Python)", color=PY)
    for i, (a, b) in enumerate(zip(rust, py)):
        better = a / b if "calls/s" in labels[i] else b / a
        ax.text(i, max(a, b) * 1.15, f"{better:.1f}×", ha="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=6, rotation=40, ha="right")
    ax.set_title("Rust vs Python 0.1.9 (×: how much better Rust is)", fontsize=9)
    ax.legend(fontsize=7)


def series(points, curve, implementation, key):
    pts = sorted((p for p in points if p["curve"] == curve and p["implementation"] == implementation), key=lambda p: p["x"])
    return [p["x"] for p in pts], [p[key] for p in pts]


def curve(ax, points, name, key, title, xlabel, ylabel, log_y=False) -> None:
    for impl, color, style in (("floor", FLOOR, "--"), ("clamator", RUST, "-")):
        xs, ys = series(points, name, impl, key)
        if xs:
            ax.plot(xs, ys, style, marker="o", color=color, label=impl)
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7)


def latency(ax, points) -> None:
    for impl, color in (("floor", FLOOR), ("clamator", RUST)):
        xs, p50 = series(points, "in_flight", impl, "p50_ms")
        _, p99 = series(points, "in_flight", impl, "p99_ms")
        if xs:
            ax.plot(xs, p50, "-", marker="o", color=color, label=f"{impl} p50")
            ax.plot(xs, p99, ":", marker="x", color=color, label=f"{impl} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("Latency against calls in flight (Redis)", fontsize=9)
    ax.set_xlabel("calls in flight", fontsize=8)
    ax.set_ylabel("ms", fontsize=8)
    ax.legend(fontsize=7)


def services(ax, points) -> None:
    xs, tput = series(points, "services", "clamator", "calls_per_s")
    _, rss = series(points, "services", "clamator", "server_rss_mib")
    ax.plot(xs, tput, "-", marker="o", color=RUST, label="calls/s (256 in flight)")
    ax.set_xscale("log")
    ax.set_xlabel("services served by one process", fontsize=8)
    ax.set_ylabel("calls/s", fontsize=8)
    twin = ax.twinx()
    twin.plot(xs, rss, ":", marker="s", color=PY, label="server RSS MiB")
    twin.set_ylabel("MiB", fontsize=8)
    ax.set_title("Services per process", fontsize=9)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7)


def in_process(ax, points) -> None:
    pts = [p for p in points if p["curve"] == "in_process"]
    names = [p["implementation"] for p in pts]
    values = [p["calls_per_s"] for p in pts]
    colors = [RUST if n.startswith("clamator") else FLOOR for n in names]
    ax.bar(range(len(pts)), values, color=colors)
    ax.set_xticks(range(len(pts)))
    ax.set_xticklabels(names, fontsize=7, rotation=15)
    for i, v in enumerate(values):
        ax.text(i, v * 1.02, f"{v / 1e6:.2f}M", ha="center", fontsize=7)
    ax.set_title("In-process, 64 in flight (calls/s)", fontsize=9)


def main() -> None:
    data = json.load(open(sys.argv[1]))
    rows, points = (data["rows"], data["points"]) if isinstance(data, dict) else (data, [])
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    rust_vs_python(axes[0][0], rows)
    curve(axes[0][1], points, "in_flight", "calls_per_s", "Throughput against calls in flight (Redis)", "calls in flight", "calls/s")
    latency(axes[0][2], points)
    curve(axes[1][0], points, "payload", "calls_per_s", "Throughput against payload size (echoText, 16 in flight)", "bytes", "calls/s", log_y=True)
    services(axes[1][1], points)
    in_process(axes[1][2], points)
    fig.suptitle("clamator for Rust — one run, one machine, one private redis-server", fontsize=11)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
