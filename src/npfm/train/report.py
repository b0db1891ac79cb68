"""Plots of a run's metrics log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def plot_loss(metrics_log: Path, png: Path, smooth: int = 10) -> tuple[float, float]:
    """Loss per step (and its running mean) as a PNG; returns the mean loss of the first
    and of the last ``smooth`` steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_log.read_text().splitlines() if line.strip()]
    steps = np.array([r["step"] for r in rows])
    loss = np.array([r["loss"] for r in rows])
    window = max(1, min(smooth, len(loss)))
    running = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, loss, lw=0.8, alpha=0.5, label="per step")
    ax.plot(steps[window - 1:], running, lw=2, label=f"mean of {window}")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=f"pretraining loss ({png.stem})")
    ax.legend(frameon=False)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return float(loss[:window].mean()), float(loss[-window:].mean())
