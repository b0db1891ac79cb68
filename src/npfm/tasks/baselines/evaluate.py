"""Score a track finder on labelled events with the metrics of ``npfm.tasks.metrics``.

Every figure comes with an event-bootstrap 95 % interval (``with_ci`` / ``bootstrap_ci``,
``n_boot`` replicates, seed ``boot_seed``). ARI treats noise hits (truth -1) and unassigned
hits (prediction -1) as one cluster per event (``noise="own_cluster"``); ``ari_exclude``
drops truth-noise hits instead. Double majority: truth particles with >= 3 hits, predicted
tracks with >= 4 hits (FM4NPP's convention). TrackML: pT weights from the hit's particle,
order key |z - z_vertex|.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from npfm.tasks.baselines.events import (
    TRUTH_COLUMNS,
    Event,
    TrackFinder,
    hit_eta,
    hit_pt,
    hit_secondary,
    require,
)
from npfm.tasks.metrics import ari_per_event, ari_pooled, double_majority, trackml_score
from npfm.tasks.stat_metrics import bootstrap_ci, with_ci

#: Bin edges of the efficiency against pT (GeV) and against eta.
PT_EDGES = (0.0, 0.2, 0.5, 1.0, np.inf)
ETA_EDGES = (-np.inf, -1.0, -0.5, 0.0, 0.5, 1.0, np.inf)


def predict_all(finder: TrackFinder, events: Sequence[Event]) -> tuple[list[np.ndarray], float]:
    """Predictions for every event and the mean wall time per event (s)."""
    out, start = [], time.perf_counter()
    for event in events:
        labels = np.asarray(finder.predict(event), np.int64)
        if labels.shape != np.shape(event["hit_x"]):
            raise ValueError(f"{finder.name} returned {labels.shape} labels for "
                             f"{np.shape(event['hit_x'])} hits")
        out.append(labels)
    return out, (time.perf_counter() - start) / max(len(events), 1)


def flat_hits(events: Sequence[Event], predictions: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-hit arrays of all events end to end: truth, pred, event_index, pt, eta, order
    and secondary (``hit_secondary``)."""
    for event in events:
        require(event, TRUTH_COLUMNS, "scoring")
    cat = np.concatenate
    vz = [0.0 if e.get("vertex_z") is None else float(e["vertex_z"]) for e in events]
    return {
        "truth": cat([np.asarray(e["hit_particle"], np.int64) for e in events]),
        "pred": cat([np.asarray(p, np.int64) for p in predictions]),
        "event_index": cat([np.full(len(p), i) for i, p in enumerate(predictions)]),
        "pt": cat([hit_pt(e) for e in events]),
        "eta": cat([hit_eta(e) for e in events]),
        "order": cat([np.abs(np.asarray(e["hit_z"], np.float64) - v)
                      for e, v in zip(events, vz, strict=True)]),
        "secondary": cat([hit_secondary(e) for e in events]),
    }


def _ci(values: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("value", "lo", "hi"), values, strict=True))


def _ratio(num: np.ndarray, den: np.ndarray, event_index: np.ndarray) -> float:
    """Pooled ratio of per-event sums (event_index only carries the resampling)."""
    total = float(np.sum(den))
    return float(np.sum(num)) / total if total else float("nan")


def _dm_counts(hits: dict[str, np.ndarray], inside: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
    """Per-event double-majority counts (particles restricted to ``inside`` hits' ones)."""
    bounds = np.flatnonzero(np.diff(hits["event_index"])) + 1
    keys = ("n_particles", "n_found", "n_tracks", "n_matched_tracks")
    rows: dict[str, list[float]] = {k: [] for k in (*keys, "purity_sum")}
    for part in np.split(np.arange(len(hits["truth"])), bounds):
        out = double_majority(hits["truth"][part], hits["pred"][part],
                              np.zeros(len(part), np.int64),
                              pt=None if inside is None else inside[part], pt_min=0.5)
        for k in keys:
            rows[k].append(out[k])
        rows["purity_sum"].append(out["purity"] * out["n_matched_tracks"]
                                  if out["n_matched_tracks"] else 0.0)
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


def _pooled(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    """Ratio of sums over events with its event-bootstrap interval (``with_ci``)."""
    arrays = {"num": num, "den": den, "event_index": np.arange(len(num))}
    return _ci(with_ci(_ratio, arrays, n=n_boot, seed=seed))


def _binned_efficiency(hits: dict[str, np.ndarray], key: str, edges: Sequence[float],
                       n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Double-majority efficiency in bins of the particle's ``key`` (pt or eta)."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = ((hits[key] >= lo) & (hits[key] < hi)).astype(np.float64)
        counts = _dm_counts(hits, inside)
        n = int(counts["n_particles"].sum())
        row: dict[str, Any] = {"lo": float(lo), "hi": float(hi), "n_particles": n}
        if n:
            row["efficiency"] = _pooled(counts["n_found"], counts["n_particles"], n_boot, seed)
        rows.append(row)
    return rows


def evaluate_tracking(finder: TrackFinder, events: Sequence[Event], n_boot: int = 200,
                      boot_seed: int = 0, binned: bool = True) -> dict[str, Any]:
    """Metrics of ``finder`` on ``events`` (already fitted) with 95 % bootstrap intervals.

    Returns ``ari_mean`` (per-event mean), ``ari_pooled``, ``ari_exclude`` (per-event mean,
    truth noise dropped), ``efficiency``, ``purity``, ``fake_rate``, ``duplicate_rate``,
    ``trackml`` (per-event mean; each ``{"value", "lo", "hi"}``), the counts of the
    double-majority matching, ``efficiency_vs_pt`` / ``efficiency_vs_eta`` (when
    ``binned``: per bin ``lo``, ``hi``, ``n_particles`` and ``efficiency``),
    ``seconds_per_event``, ``events_per_second`` and ``n_events``. Matching is within
    events, so the pooled double-majority rates are ratios of per-event counts and are
    bootstrapped over those counts.
    """
    predictions, seconds = predict_all(finder, events)
    hits = flat_hits(events, predictions)
    truth, pred, index = hits["truth"], hits["pred"], hits["event_index"]
    base = {"truth": truth, "pred": pred, "event_index": index}
    per_event = ari_per_event(truth, pred, index)["per_event"]
    per_event_ex = ari_per_event(truth, pred, index, noise="exclude")["per_event"]
    trackml = trackml_score(truth, pred, index, hits["pt"], hits["order"],
                            secondary=hits["secondary"])["per_event"]
    c = _dm_counts(hits)
    result: dict[str, Any] = {
        "finder": finder.name,
        "n_events": len(events),
        "n_hits": len(hits["truth"]),
        "ari_mean": _ci(bootstrap_ci(per_event, n=n_boot, seed=boot_seed)),
        "ari_exclude": _ci(bootstrap_ci(per_event_ex, n=n_boot, seed=boot_seed)),
        "ari_pooled": _ci(with_ci(ari_pooled, base, n=n_boot, seed=boot_seed)),
        "efficiency": _pooled(c["n_found"], c["n_particles"], n_boot, boot_seed),
        "purity": _pooled(c["purity_sum"], c["n_matched_tracks"], n_boot, boot_seed),
        "fake_rate": _pooled(c["n_tracks"] - c["n_matched_tracks"], c["n_tracks"], n_boot,
                             boot_seed),
        "duplicate_rate": _pooled(c["n_matched_tracks"] - c["n_found"], c["n_found"], n_boot,
                                  boot_seed),
        "trackml": _ci(bootstrap_ci(trackml, n=n_boot, seed=boot_seed)),
    }
    result.update({k: int(v.sum()) for k, v in c.items() if k.startswith("n_")})
    result["n_duplicates"] = result["n_matched_tracks"] - result["n_found"]
    if binned:
        result["efficiency_vs_pt"] = _binned_efficiency(hits, "pt", PT_EDGES, n_boot,
                                                        boot_seed)
        result["efficiency_vs_eta"] = _binned_efficiency(hits, "eta", ETA_EDGES, n_boot,
                                                         boot_seed)
    result["seconds_per_event"] = seconds
    result["events_per_second"] = 1.0 / seconds if seconds > 0 else float("inf")
    return result
