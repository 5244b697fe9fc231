"""Matplotlib figures of a flow run, returned as PNG bytes (embedded in the HTML report)."""

from __future__ import annotations

import io

import numpy as np

GROUP_COLORS = {"SP2": "#4c72b0", "FIXED4": "#dd8452", "FIXED8": "#c44e52"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scheme_mix(layers: list[dict]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [l["name"] for l in layers]
    bottom = np.zeros(len(layers))
    for g, color in GROUP_COLORS.items():
        v = np.array([l["rows_per_group"][g] / l["R"] * 100 for l in layers])
        ax.bar(names, v, bottom=bottom, color=color, label=g)
        bottom += v
    ax.set_ylabel("rows (%)")
    ax.set_title("Row scheme mix per layer")
    ax.legend(fontsize=8, ncol=3, loc="lower right")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    return _png(fig)


def accuracy_bars(acc: dict[str, float | None]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = [k for k, v in acc.items() if v is not None]
    values = [100 * acc[k] for k in labels]
    bars = ax.bar(labels, values, color=["#55a868", "#8172b2", "#4c72b0", "#c44e52"][: len(labels)])
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(max(0, min(values) - 10), 100)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Float, fake-quant, golden and RTL")
    return _png(fig)


def cycles_per_layer(layers: list[dict]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [l["name"] for l in layers]
    x = np.arange(len(layers))
    series = [("measured (RTL)", "cycles", "#c44e52"), ("cycle model", "model_cycles", "#8172b2"),
              ("ideal (MACs / lanes)", "ideal_cycles", "#55a868")]
    series = [s for s in series if all(l.get(s[1]) is not None for l in layers)]
    w = 0.8 / len(series)
    for i, (label, key, color) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * w, [l[key] for l in layers], w, label=label, color=color)
    ax.set_xticks(x, names, rotation=30, fontsize=8)
    ax.set_ylabel("cycles per image")
    ax.set_title("Cycles per layer")
    ax.legend(fontsize=8)
    return _png(fig)


def utilisation(layers: list[dict]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    names = [l["name"] for l in layers]
    ax.bar(names, [100 * l["utilisation"] for l in layers], color="#4c72b0")
    ax.set_ylim(0, 100)
    ax.set_ylabel("MAC lane utilisation (%)")
    ax.set_title("Utilisation = ideal / measured cycles")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    return _png(fig)
