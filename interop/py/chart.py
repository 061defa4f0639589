"""Renders bench/results.json (from clamator-bench) as a PNG: Rust vs Python per scenario."""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    rows = json.load(open(sys.argv[1]))
    out = sys.argv[2]
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
    fig, ax = plt.subplots(figsize=(14, 6))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], rust, width=0.4, label="clamator for Rust", color="#d2691e")
    ax.bar([i + 0.2 for i in x], py, width=0.4, label="clamator 0.1.9 (Python)", color="#3776ab")
    for i, (a, b) in enumerate(zip(rust, py)):
        better = a / b if "calls/s" in labels[i] else b / a
        ax.text(i, max(a, b) * 1.15, f"{better:.1f}×", ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7, rotation=35, ha="right")
    ax.set_title("clamator for Rust vs Python clamator 0.1.9 (same machine, same Redis, one run; ×: how much better Rust is)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
