"""Classification and regression scores, and percentile event-bootstrap intervals.

The intervals resample whole events, so they serve any metric: per-event values
(``bootstrap_ci``) or pooled ones such as the tracking metrics of ``npfm.tasks.metrics``
(``with_ci``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy, per-class and macro recall/precision, confusion matrix.

    ``confusion[i, j]`` counts hits of true class i predicted as j. A class absent from both
    truth and prediction gets NaN recall/precision and is excluded from the macro averages;
    a present class with an empty denominator scores 0 (sklearn's ``zero_division=0``).
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    conf = np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2)
    conf = conf.reshape(n_classes, n_classes)
    tp, rows, cols = np.diag(conf), conf.sum(1), conf.sum(0)
    present = (rows + cols) > 0
    recall = np.where(present, np.divide(tp, rows, out=np.zeros(n_classes), where=rows > 0), np.nan)
    precision = np.where(
        present, np.divide(tp, cols, out=np.zeros(n_classes), where=cols > 0), np.nan
    )
    any_present = bool(present.any())
    return {
        "accuracy": float(tp.sum() / conf.sum()) if conf.sum() else float("nan"),
        "recall": recall,
        "precision": precision,
        "macro_recall": float(np.nanmean(recall)) if any_present else float("nan"),
        "macro_precision": float(np.nanmean(precision)) if any_present else float("nan"),
        "confusion": conf,
    }


def _interval(estimate: float, stats: np.ndarray, level: float) -> tuple[float, float, float]:
    lo, hi = np.percentile(stats, [50 * (1 - level), 50 * (1 + level)])
    return float(estimate), float(lo), float(hi)


def bootstrap_ci(
    values_per_event: np.ndarray,
    statistic: Callable[[np.ndarray], Any] = np.mean,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Percentile bootstrap over events: (statistic of all events, lo, hi).

    Each replicate draws as many events as given, with replacement, from a
    ``np.random.default_rng(seed)`` stream, so the result is deterministic. NaN values
    (e.g. events left without hits) are dropped first.
    """
    values = np.asarray(values_per_event, np.float64)
    values = values[np.isfinite(values)]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    stats = np.array([float(statistic(values[i])) for i in idx])
    return _interval(float(statistic(values)), stats, level)


def with_ci(
    metric_fn: Callable[..., Any],
    hits: Mapping[str, np.ndarray],
    key: str | None = None,
    event_key: str = "event_index",
    n: int = 200,
    seed: int = 0,
    level: float = 0.95,
    **kwargs: Any,
) -> tuple[float, float, float]:
    """Bootstrap any event-level metric by resampling whole events.

    ``metric_fn(**hits, **kwargs)`` is evaluated once on the data (the estimate) and on
    ``n`` replicates; each replicate draws events with replacement and concatenates their
    hits (all per-hit arrays in ``hits``), giving every drawn copy a fresh event id so a
    repeated event counts as separate events. ``key`` picks the scalar from a dict result
    (e.g. ``"efficiency"``, ``"mean"``). Interval: percentile, as ``bootstrap_ci``. Works for
    pooled metrics (double majority, pooled ARI) whose per-event values cannot be averaged.
    """

    def scalar(arrays: Mapping[str, np.ndarray]) -> float:
        out = metric_fn(**arrays, **kwargs)
        return float(out[key] if key is not None else out)

    ev = np.unique(np.asarray(hits[event_key], np.int64), return_inverse=True)[1].reshape(-1)
    order = np.argsort(ev, kind="stable")
    sorted_hits = {k: np.asarray(v)[order] for k, v in hits.items()}
    counts = np.bincount(ev)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    stats = np.empty(n)
    for r in range(n):
        pick = rng.integers(0, len(counts), size=len(counts))
        c = counts[pick]
        offsets = np.cumsum(c) - c
        idx = np.repeat(starts[pick] - offsets, c) + np.arange(c.sum())
        sample = {k: v[idx] for k, v in sorted_hits.items()}
        sample[event_key] = np.repeat(np.arange(len(pick)), c)
        stats[r] = scalar(sample)
    return _interval(scalar(hits), stats, level)


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with mid-ranks for ties); NaN if one class is absent."""
    y = np.asarray(y_true, bool)
    ranks = _midranks(np.asarray(score, np.float64))
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def regression_report(true: np.ndarray, pred: np.ndarray) -> dict:
    """Bias (mean of pred - true), resolution (its standard deviation), RMS and the robust
    resolution (half the 16-84 % quantile width), in the units of the inputs."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"bias": float("nan"), "resolution": float("nan"), "rms": float("nan"),
                "robust_resolution": float("nan"), "n": 0}
    q16, q84 = np.quantile(d, [0.16, 0.84])
    return {"bias": float(d.mean()), "resolution": float(d.std()),
            "rms": float(np.sqrt(np.mean(d**2))), "robust_resolution": float((q84 - q16) / 2),
            "n": len(d)}
