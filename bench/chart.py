"""The comparison's chart: one panel a measure, one bar a system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PANELS = [
    (
        "HTTP submit, x plain view (higher is better)",
        lambda f: (
            f["submit"]["enqueue"]["rps"] / f["submit"]["plain"]["rps"]
            if "submit" in f
            else None
        ),
    ),
    (
        "no-op drain, jobs/s (higher is better)",
        lambda f: f["drain"]["jobs_per_s"] if "drain" in f else None,
    ),
    (
        "enqueue -> start p50, ms (log; lower is better)",
        lambda f: f["latency"]["p50_ms"] if "latency" in f else None,
    ),
    (
        "1,000 x 100 ms on 8 workers, x ideal (lower is better)",
        lambda f: f["makespan"]["ratio"] if "makespan" in f else None,
    ),
    (
        "one progress report, us (log; lower is better)",
        lambda f: f["progress"]["us_per_report"] if "progress" in f else None,
    ),
    (
        "peak memory of the stack, MiB PSS (lower is better)",
        lambda f: f.get("peak_memory_mib"),
    ),
]


def draw(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(results["systems"].values())
    labels = [figures["label"] for figures in systems]
    colors = ["#2a7ab0" if "slowjobs" in label else "#a0a0a0" for label in labels]
    figure, axes = plt.subplots(3, 2, figsize=(13, 11))
    for axis, (title, value) in zip(axes.flat, PANELS, strict=True):
        values = [value(figures) for figures in systems]
        shown = [
            (label, v, c)
            for label, v, c in zip(labels, values, colors, strict=True)
            if v is not None
        ]
        axis.barh(
            [s[0] for s in shown], [s[1] for s in shown], color=[s[2] for s in shown]
        )
        axis.set_title(title, fontsize=10)
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=8)
        if "log" in title and any(s[1] > 0 for s in shown):
            axis.set_xscale("log")
        for index, (_, number, _) in enumerate(shown):
            axis.annotate(
                f"{number:,.2f}" if number < 10 else f"{number:,.0f}",
                (number, index),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    figure.suptitle(
        f"slowjobs and its peers, {results['date'][:10]}; {results['machine']}",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
