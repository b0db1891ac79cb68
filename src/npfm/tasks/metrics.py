"""Tracking metrics (ARI, double majority, TrackML score), vectorised over events.

All tracking functions take flat per-hit arrays for many events: ``truth`` (particle id),
``pred`` (predicted track / cluster id) and ``event_index`` (event of each hit). Labels only
need to be unique within an event; internally every label becomes an (event, label) pair.
``noise_label`` marks truth noise hits and, in ``pred``, hits assigned to no track.

Definitions follow ``../shared/reference/facts.md`` ("Metric definitions", FM4NPP results):
double-majority matching as in acorn/gnn_tracking and the TrackML score (LAL/trackml-library).
Classification, regression and bootstrap-interval metrics: ``npfm.tasks.stat_metrics``.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np

NoiseTreatment = Literal["own_cluster", "singletons", "exclude"]
ORDER_PROFILE = np.array([10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0])


def _codes(*keys: np.ndarray) -> np.ndarray:
    """Dense integer code 0..K-1 for each distinct tuple of ``keys`` (row-wise)."""
    code = np.zeros(len(keys[0]), dtype=np.int64)
    for k in keys:
        _, inv = np.unique(np.asarray(k, dtype=np.int64), return_inverse=True)
        code = code * (int(inv.max(initial=-1)) + 1) + inv.reshape(-1)
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def _owner(codes: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Event of each code (codes are event-unique)."""
    out = np.zeros(codes.max(initial=-1) + 1, dtype=np.int64)
    out[codes] = ev
    return out


def _pairs(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x * (x - 1.0) / 2.0


def _ari_by_event(ev: np.ndarray, t: np.ndarray, p: np.ndarray, n_events: int) -> np.ndarray:
    """ARI per event from contingency-table pair counts; NaN for events without hits.

    ARI = (I - E) / (M - E) with I = sum_ij C(n_ij, 2), A = sum_i C(a_i, 2),
    B = sum_j C(b_j, 2), E = A B / C(n, 2), M = (A + B) / 2. When M == E both partitions
    are trivial and identical, and ARI is 1 (sklearn's convention).
    """
    n = np.bincount(ev, minlength=n_events)
    sums = []
    for c in (t, p, _codes(t, p)):
        sums.append(np.bincount(_owner(c, ev), _pairs(np.bincount(c)), minlength=n_events))
    index, a, b = sums[2], sums[0], sums[1]
    total = _pairs(n)
    expected = np.divide(a * b, total, out=np.zeros(n_events), where=total > 0)
    denom = (a + b) / 2.0 - expected
    ari = np.divide(index - expected, denom, out=np.ones(n_events), where=denom != 0)
    return np.where(n > 0, ari, np.nan)


def adjusted_rand_index(truth: np.ndarray, pred: np.ndarray) -> float:
    """Adjusted Rand index of two labellings of one event (same definition as sklearn)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    ev = np.zeros(len(truth), dtype=np.int64)
    return float(_ari_by_event(ev, _codes(truth), _codes(pred), 1)[0])


def _noise_treated(
    truth: np.ndarray,
    pred: np.ndarray,
    event_index: np.ndarray,
    noise_label: int,
    noise: NoiseTreatment,
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Apply the noise option; returns (event codes, n_events, truth codes, pred codes)."""
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    ev = _codes(event_index)
    n_events = int(ev.max(initial=-1) + 1)
    if noise == "exclude":
        keep = truth != noise_label
        ev, truth, pred = ev[keep], truth[keep], pred[keep]
    elif noise == "singletons":
        hit_id = np.arange(len(truth), dtype=np.int64)
        big = max(int(truth.max(initial=0)), int(pred.max(initial=0))) + 1
        truth = np.where(truth == noise_label, big + hit_id, truth)
        pred = np.where(pred == noise_label, big + hit_id, pred)
    elif noise != "own_cluster":
        raise ValueError(f"unknown noise treatment {noise!r}")
    return ev, n_events, _codes(ev, truth), _codes(ev, pred)


def ari_per_event(
    truth: np.ndarray,
    pred: np.ndarray,
    event_index: np.ndarray,
    noise_label: int = -1,
    noise: NoiseTreatment = "own_cluster",
) -> dict:
    """Per-event ARI and its mean (FM4NPP's headline tracking figure).

    Noise options (applied to hits labelled ``noise_label``):
    ``"own_cluster"``: in each event all noise hits form one cluster (in truth, and the
    unassigned hits form one cluster in ``pred``); ``"singletons"``: every noise /
    unassigned hit is its own cluster; ``"exclude"``: hits with truth noise are dropped
    (prediction labels of the remaining hits are used as given).

    Returns ``per_event`` (ordered as ``np.unique(event_index)``; NaN for an event left
    without hits) and ``mean`` (NaN-ignoring mean over events).
    """
    ev, n_events, t, p = _noise_treated(truth, pred, event_index, noise_label, noise)
    values = _ari_by_event(ev, t, p, n_events)
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return {"per_event": values, "mean": mean}


def ari_pooled(
    truth: np.ndarray,
    pred: np.ndarray,
    event_index: np.ndarray,
    noise_label: int = -1,
    noise: NoiseTreatment = "own_cluster",
) -> float:
    """One ARI over all hits, labels made event-unique (event, label); noise as above."""
    ev, _, t, p = _noise_treated(truth, pred, event_index, noise_label, noise)
    return float(_ari_by_event(np.zeros_like(ev), t, p, 1)[0])


def double_majority(
    truth: np.ndarray,
    pred: np.ndarray,
    event_index: np.ndarray,
    pt: np.ndarray | None = None,
    pt_min: float = 0.0,
    min_truth_hits: int = 3,
    min_pred_hits: int = 4,
    noise_label: int = -1,
) -> dict:
    """Double-majority tracking metrics pooled over events (acorn / gnn_tracking style).

    Predicted tracks are the ``pred`` labels other than ``noise_label`` with at least
    ``min_pred_hits`` hits (truth-noise hits count towards a track's size). A truth particle
    is *eligible* if it has at least ``min_truth_hits`` hits (and per-hit ``pt >= pt_min``
    when ``pt`` is given). It is *found* if a counted track has > 50 % of its hits from the
    particle and holds > 50 % of the particle's hits. A counted track is *matched* if its
    majority particle (> 50 % of the track's hits) is found; matched tracks beyond the first
    per particle are duplicates (e.g. the pieces of a split track).

    Returns:
        efficiency: n_found / n_particles.
        purity: mean over matched tracks of the fraction of their hits from that particle.
        fake_rate: 1 - n_matched_tracks / n_tracks.
        duplicate_rate: n_duplicates / n_found, n_duplicates = n_matched_tracks - n_found.
        n_particles, n_found, n_tracks, n_matched_tracks, n_duplicates: the counts.
    """
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    ev = _codes(event_index)
    t, p = _codes(ev, truth), _codes(ev, pred)
    t_size, p_size = np.bincount(t), np.bincount(p)
    t_noise = np.zeros(len(t_size), bool)
    t_noise[t] = truth == noise_label
    eligible = (t_size >= min_truth_hits) & ~t_noise
    if pt is not None:
        t_pt = np.zeros(len(t_size))
        t_pt[t] = np.asarray(pt, np.float64)
        eligible &= t_pt >= pt_min
    counted = p_size >= min_pred_hits
    counted[p[pred == noise_label]] = False

    both = (truth != noise_label) & (pred != noise_label)
    j = _codes(t[both], p[both])
    j_t, j_p = _owner(j, t[both]), _owner(j, p[both])
    n_j = np.bincount(j)
    track_majority = (n_j / p_size[j_p] > 0.5) & counted[j_p]
    dm = track_majority & (n_j / t_size[j_t] > 0.5) & eligible[j_t]
    found = np.zeros(len(t_size), bool)
    found[j_t[dm]] = True
    matched = track_majority & found[j_t]

    n_particles, n_found = int(eligible.sum()), int(found.sum())
    n_tracks, n_matched = int(counted.sum()), int(matched.sum())
    nan = float("nan")
    return {
        "efficiency": n_found / n_particles if n_particles else nan,
        "purity": float(np.mean(n_j[matched] / p_size[j_p[matched]])) if n_matched else nan,
        "fake_rate": 1.0 - n_matched / n_tracks if n_tracks else nan,
        "duplicate_rate": (n_matched - n_found) / n_found if n_found else nan,
        "n_particles": n_particles,
        "n_found": n_found,
        "n_tracks": n_tracks,
        "n_matched_tracks": n_matched,
        "n_duplicates": n_matched - n_found,
    }


#: trackml-library's cuts (LAL/trackml-library, trackml/weights.py): the order profile is
#: used for particles of 4 to 20 hits (longer ones: their first 20 hits, on the 20-hit
#: profile), and the pT factor is 0 below 0.05 GeV.
ORDER_MIN_HITS, ORDER_MAX_HITS, PT_MIN_GEV = 4, 20, 0.05


def _order_matrix() -> np.ndarray:
    """Row n, column i: the order weight of hit i of an n-hit particle, each row the
    profile interpolated at n equally spaced points and divided by its sum."""
    w = np.zeros((ORDER_MAX_HITS + 1, ORDER_MAX_HITS))
    for n in range(ORDER_MIN_HITS, ORDER_MAX_HITS + 1):
        supports = np.arange(len(ORDER_PROFILE)) * (n - 1) / (len(ORDER_PROFILE) - 1)
        row = np.interp(np.arange(n), supports, ORDER_PROFILE)
        w[n, :n] = row / row.sum()
    return w


ORDER_MATRIX = _order_matrix()


def secondary_hits(particle: np.ndarray, primary: np.ndarray | None) -> np.ndarray:
    """(N,) True for hits of secondary particles: ``particle`` (N,) each hit's particle
    index (-1 for noise), ``primary`` per particle (1/True primary, 0/False secondary,
    NaN or None not stated). False for noise and where the data do not say."""
    particle = np.asarray(particle, np.int64)
    if primary is None or len(primary) == 0:
        return np.zeros(len(particle), bool)
    flag = np.array([np.nan if v is None else float(v) for v in np.asarray(primary).tolist()])
    return (particle >= 0) & (flag[np.maximum(particle, 0)] == 0)


def trackml_weights(
    truth: np.ndarray,
    event_index: np.ndarray,
    pt: np.ndarray,
    order_key: np.ndarray,
    noise_label: int = -1,
    secondary: np.ndarray | None = None,
) -> np.ndarray:
    """Per-hit TrackML weights exactly as trackml-library's ``weight_hits``, normalised to
    sum 1 per event.

    A particle's n hits, ranked by ``order_key`` (|z - vz|; tied hits share the floor of
    their mean rank, as pandas' ``rank``), get ``ORDER_MATRIX[min(n, 20), rank]`` (0 for
    ranks >= 20 and for n < 4): the 9-point ``ORDER_PROFILE`` interpolated over the
    particle's hits and normalised per particle. The pT factor (``pt`` in GeV, per hit,
    of its particle) is 0 below 0.05, 0.2 up to 0.5, linear to 1 at 3, 1 above. Noise hits
    and hits of secondary particles (``secondary``, per hit, where the data say; the
    official truth files give them 0) weigh 0.
    """
    truth = np.asarray(truth, np.int64)
    key = np.asarray(order_key, np.float64)
    ev = _codes(event_index)
    t = _codes(ev, truth)
    size = np.bincount(t)[t]
    order = np.lexsort((key, t))
    ts, ks = t[order], key[order]
    new = np.ones(len(t), bool)
    new[1:] = (ts[1:] != ts[:-1]) | (ks[1:] != ks[:-1])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    ends = np.append(starts[1:], len(t)) - 1
    rank = np.empty(len(t), np.int64)
    rank[order] = (starts[group] + ends[group]) // 2 - np.searchsorted(ts, ts, side="left")
    capped = np.minimum(size, ORDER_MAX_HITS)
    inside = (size >= ORDER_MIN_HITS) & (rank < ORDER_MAX_HITS)
    w = np.where(inside, ORDER_MATRIX[capped, np.minimum(rank, ORDER_MAX_HITS - 1)], 0.0)
    w *= np.interp(np.asarray(pt, np.float64), [PT_MIN_GEV, 0.5, 3.0], [0.2, 0.2, 1.0],
                   left=0.0, right=1.0)
    dropped = truth == noise_label
    if secondary is not None:
        dropped |= np.asarray(secondary, bool)
    w = np.where(dropped, 0.0, w)
    total = np.bincount(ev, w)[ev]
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def trackml_score(
    truth: np.ndarray,
    pred: np.ndarray,
    event_index: np.ndarray,
    pt: np.ndarray | None = None,
    order_key: np.ndarray | None = None,
    noise_label: int = -1,
    *,
    weights: np.ndarray | None = None,
    secondary: np.ndarray | None = None,
) -> dict:
    """TrackML score (trackml-library's ``score_event``): per event, the weight of
    majority-particle hits over good tracks, divided by the event's total weight.

    A track (``pred`` label other than ``noise_label``) is good if > 50 % of its hits come
    from its majority particle and it holds > 50 % of that particle's hits. ``weights``:
    per-hit weights (the official truth column, where the data carry it); without them
    they are computed by ``trackml_weights`` from ``pt``, ``order_key`` and
    ``secondary``. Returns ``per_event`` (ordered as ``np.unique(event_index)``) and
    ``mean``.
    """
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    ev = _codes(event_index)
    if weights is None:
        if pt is None or order_key is None:
            raise ValueError("trackml_score needs weights, or pt and order_key")
        w = trackml_weights(truth, event_index, pt, order_key, noise_label, secondary)
    else:
        w = np.asarray(weights, np.float64)
        total = np.bincount(ev, w)[ev]
        w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    n_events = int(ev.max(initial=-1) + 1)
    t, p = _codes(ev, truth), _codes(ev, pred)
    both = (truth != noise_label) & (pred != noise_label)
    j = _codes(t[both], p[both])
    j_t, j_p = _owner(j, t[both]), _owner(j, p[both])
    n_j = np.bincount(j)
    good = (n_j / np.bincount(p)[j_p] > 0.5) & (n_j / np.bincount(t)[j_t] > 0.5)
    j_ev = _owner(j, ev[both])
    score = np.bincount(j_ev[good], np.bincount(j, w[both])[good], minlength=n_events)
    return {"per_event": score, "mean": float(score.mean()) if n_events else float("nan")}


def efficiency_binned(truth: np.ndarray, pred: np.ndarray, event_index: np.ndarray,
                      value: np.ndarray, edges: np.ndarray, **kwargs: Any) -> dict:
    """Double-majority efficiency in bins of a per-hit particle quantity (pT, eta, ...):
    in each bin only particles whose ``value`` lies in [lo, hi) are eligible."""
    value = np.asarray(value, np.float64)
    eff, n = [], []
    for lo, hi in itertools.pairwise(edges):
        inside = ((value >= lo) & (value < hi)).astype(np.float64)
        dm = double_majority(truth, pred, event_index, pt=inside, pt_min=0.5, **kwargs)
        eff.append(dm["efficiency"])
        n.append(dm["n_particles"])
    return {"edges": [float(e) for e in edges], "efficiency": eff, "n_particles": n}
