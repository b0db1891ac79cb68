"""Scaling laws: sweep model size and token budget, fit L = a * x^(-alpha) + c with bootstrap
confidence intervals, and plot loss against parameters N and tokens D.

Each sweep run has its own full lr schedule (warmup + cosine over its ``steps``), so a run's
final loss is that of a model trained to completion on its token budget. The final loss of a
run is the mean per-step training loss over its last 10% of steps (at least one step).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeWarning, curve_fit

from npfm.events.shards import atomic_write_json
from npfm.train.config import PretrainConfig
from npfm.train.loop import METRICS_LOG, pretrain

FINAL_FRACTION = 0.1
MIN_POINTS = 3
PARAMS = ("a", "alpha", "c")
LEVELS = {"68": (16.0, 84.0), "95": (2.5, 97.5)}


def power_law(x: np.ndarray, a: float, alpha: float, c: float) -> np.ndarray:
    return a * np.power(x, -alpha) + c


@dataclass(frozen=True)
class ScalingFit:
    """Least-squares fit of L(x) = a * x^(-alpha) + c and its bootstrap.

    intervals[name][level] = (lo, hi), level "68" or "95", percentile intervals over the
    successful bootstrap refits; samples: (n_ok, 3) array of refit (a, alpha, c).
    """

    a: float
    alpha: float
    c: float
    intervals: dict[str, dict[str, tuple[float, float]]]
    n_points: int
    n_bootstrap: int
    n_failed: int
    samples: np.ndarray

    def predict(self, x: ArrayLike) -> np.ndarray:
        return power_law(np.asarray(x, dtype=float), self.a, self.alpha, self.c)

    def band(self, x: ArrayLike, level: str = "68") -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the bootstrap predictions at ``x``."""
        x = np.asarray(x, dtype=float)
        preds = np.stack([power_law(x, *s) for s in self.samples])
        lo, hi = LEVELS[level]
        return np.percentile(preds, lo, axis=0), np.percentile(preds, hi, axis=0)

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "alpha": self.alpha, "c": self.c,
                "intervals": {k: {lv: list(iv) for lv, iv in v.items()}
                              for k, v in self.intervals.items()},
                "n_points": self.n_points, "n_bootstrap": self.n_bootstrap,
                "n_failed": self.n_failed}


def _fit_once(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(a, alpha, c) for x already scaled to order one; RuntimeError/ValueError on failure."""
    if len(np.unique(x)) < MIN_POINTS:
        raise ValueError("fewer than 3 distinct x")
    c0 = 0.5 * float(y.min())
    slope, intercept = np.polyfit(np.log(x), np.log(np.maximum(y - c0, 1e-12)), 1)
    p0 = [max(math.exp(intercept), 1e-9), min(max(-slope, 1e-3), 4.0), c0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, _ = curve_fit(power_law, x, y, p0=p0, bounds=([0, 0, 0], [np.inf, 5.0, np.inf]),
                            maxfev=10_000)
    if not np.all(np.isfinite(popt)):
        raise RuntimeError("non-finite fit")
    return float(popt[0]), float(popt[1]), float(popt[2])


def fit_power_law(n: ArrayLike, loss: ArrayLike, n_bootstrap: int = 1000,
                  seed: int = 0) -> ScalingFit:
    """Fit L(n) = a * n^(-alpha) + c (a > 0, 0 < alpha <= 5, c >= 0) by least squares, with
    bootstrap intervals from refits on (n, L) points resampled with replacement. Resamples
    with fewer than 3 distinct n, or whose refit fails, are skipped and counted in n_failed.
    Raises ValueError when the data have fewer than 3 distinct n."""
    x, y = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if x.shape != y.shape or np.any(x <= 0):
        raise ValueError("n and loss must have equal length and n > 0")
    scale = float(np.exp(np.log(x).mean()))  # fit in x / scale for conditioning

    def unscale(p: tuple[float, float, float]) -> tuple[float, float, float]:
        return p[0] * scale ** p[1], p[1], p[2]

    best = unscale(_fit_once(x / scale, y))
    rng = np.random.default_rng(seed)
    samples, failed = [], 0
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(x), len(x))
        try:
            samples.append(unscale(_fit_once(x[idx] / scale, y[idx])))
        except (RuntimeError, ValueError):
            failed += 1
    arr = np.array(samples, dtype=float).reshape(-1, 3)
    intervals = {name: {lv: ((float(np.percentile(arr[:, i], lo)),
                              float(np.percentile(arr[:, i], hi))) if len(arr)
                             else (math.nan, math.nan))
                        for lv, (lo, hi) in LEVELS.items()}
                 for i, name in enumerate(PARAMS)}
    return ScalingFit(*best, intervals=intervals, n_points=len(x), n_bootstrap=n_bootstrap,
                      n_failed=failed, samples=arr)


def count_parameters(backbone: str, size: str) -> int:
    """Backbone parameters of a family member (embedding and heads excluded), on meta."""
    if backbone == "mamba2":
        from npfm.model.family import parameter_count

        return parameter_count(size)
    from npfm.model.attention import build_attention

    return sum(p.numel() for p in build_attention(size, device="meta").parameters())


def _log_rows(run_dir: Path) -> list[dict[str, Any]]:
    log = run_dir / METRICS_LOG
    if not log.exists():
        return []
    return [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]


def sweep(base: PretrainConfig, sizes: list[str], steps: list[int], out: Path,
          seeds: Sequence[int] = (1,)) -> list[dict[str, Any]]:
    """Pretrain every (size, steps, seed) into ``out/<size>-<steps>-s<seed>/``; a run whose
    metrics log already reaches ``steps`` is not rerun (a partial one resumes). Writes and
    returns the rows of ``out/sweep.json``: size, backbone, parameters, steps, tokens (sum
    of per-step tokens), final_loss (mean loss over the last 10% of steps), seed, run."""
    rows = []
    for size in sizes:
        parameters = count_parameters(base.backbone, size)
        for n_steps in steps:
            for seed in seeds:
                run_dir = out / f"{size}-{n_steps}-s{seed}"
                log = _log_rows(run_dir)
                if len(log) < n_steps or log[-1]["step"] != n_steps:
                    config = dataclasses.replace(base, size=size, steps=n_steps, seed=seed,
                                                 log_every=1)
                    pretrain(config, run_dir)
                    log = _log_rows(run_dir)
                tail = max(1, math.ceil(FINAL_FRACTION * len(log)))
                rows.append({"size": size, "backbone": base.backbone,
                             "parameters": parameters, "steps": n_steps,
                             "tokens": int(sum(r["tokens"] for r in log)),
                             "final_loss": float(np.mean([r["loss"] for r in log[-tail:]])),
                             "seed": seed, "run": run_dir.name})
    atomic_write_json(out / "sweep.json", rows)
    return rows


def _fit_or_reason(x: list[float], y: list[float], what: str, n_bootstrap: int,
                   seed: int) -> tuple[ScalingFit | None, dict[str, Any]]:
    distinct = len(set(x))
    base = {"x": x, "loss": y}
    if distinct < MIN_POINTS:
        return None, {**base, "fit": None, "reason": f"only {distinct} distinct {what} value(s);"
                      f" a 3-parameter power law needs at least {MIN_POINTS}"}
    try:
        fit = fit_power_law(x, y, n_bootstrap=n_bootstrap, seed=seed)
    except (RuntimeError, ValueError) as exc:
        return None, {**base, "fit": None, "reason": f"fit failed: {exc}"}
    return fit, {**base, "fit": fit.as_dict(), "reason": None}


def scaling_report(rows: list[dict[str, Any]], out: Path, n_bootstrap: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Fit loss vs parameters N (per size, its runs of the largest ``steps``) and loss vs
    tokens D (runs of the largest size); every seed is a point. Writes ``out/scaling.json``
    and ``out/scaling.png``; a fit with fewer than 3 distinct x is reported with a reason."""
    max_steps: dict[str, int] = {}
    for r in rows:
        max_steps[r["size"]] = max(max_steps.get(r["size"], 0), r["steps"])
    by_n = [r for r in rows if r["steps"] == max_steps[r["size"]]]
    largest = max(rows, key=lambda r: r["parameters"])["size"] if rows else None
    by_d = [r for r in rows if r["size"] == largest]
    fit_n, n_part = _fit_or_reason([float(r["parameters"]) for r in by_n],
                                   [float(r["final_loss"]) for r in by_n],
                                   "parameter count", n_bootstrap, seed)
    fit_d, d_part = _fit_or_reason([float(r["tokens"]) for r in by_d],
                                   [float(r["final_loss"]) for r in by_d],
                                   "token count", n_bootstrap, seed)
    report = {"model": "L(x) = a * x^(-alpha) + c", "final_loss": "mean loss, last 10% of steps",
              "intervals": "bootstrap percentiles over resampled points (68%: 16-84, 95%: "
              "2.5-97.5)",
              "loss_vs_parameters": {**n_part, "tokens_budget": "largest steps per size"},
              "loss_vs_tokens": {**d_part, "size": largest}}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "scaling.json", report)
    _plot(out / "scaling.png", [(n_part, fit_n, "parameters N"), (d_part, fit_d, "tokens D")])
    return report


def _plot(png: Path, panels: list[tuple[dict[str, Any], ScalingFit | None, str]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for ax, (part, fit, label) in zip(axes, panels, strict=True):
        x, y = np.array(part["x"], dtype=float), np.array(part["loss"], dtype=float)
        if len(x):
            ax.scatter(x, y, color="k", s=18, zorder=3, label="runs")
        if fit is not None:
            grid = np.geomspace(x.min(), x.max(), 100)
            if len(fit.samples):
                lo, hi = fit.band(grid)
                ax.fill_between(grid, lo, hi, alpha=0.3, label="68% bootstrap band")
            ax.plot(grid, fit.predict(grid), label=f"fit: alpha = {fit.alpha:.3g}")
        else:
            ax.text(0.5, 0.5, f"no fit:\n{part['reason']}", transform=ax.transAxes,
                    ha="center", va="center", wrap=True, fontsize=8)
        if len(x):
            ax.set(xscale="log", yscale="log")
        ax.set(xlabel=label, ylabel="final loss", title=f"loss vs {label}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
