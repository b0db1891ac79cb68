"""Geometric hit graphs for the GNN track finder: edges between hits on nearby layers that
pass curvature and z-pointing cuts, their features and their truth.

An edge joins a hit on global layer l to a hit on layer l + 1 .. l + ``max_skip`` + 1. Cuts,
both per cm of radial gap (+ 0.5 cm): |dphi| (rad) and the z miss of the line from the
vertex through the inner hit, extrapolated to the outer hit's radius (cm). ``fit_cuts``
sets them to the ``keep`` quantile of the true edges of training events. A true edge joins
consecutive hits of one particle (``true_consecutive``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from npfm.tasks.baselines.events import Event, HitFrame, global_layer, hit_frame, n_layers

#: Per-hit and per-edge feature counts of ``Graph``.
NODE_FEATURES = 6
EDGE_FEATURES = 6


@dataclass(frozen=True)
class GraphCuts:
    """Edge cuts: layers skipped at most, |dphi| and z miss per cm of radial gap."""

    max_skip: int = 2
    dphi_per_cm: float = 0.05
    dz_per_cm: float = 0.5


@dataclass(frozen=True)
class Graph:
    """One event's graph: float32 node features (hits, NODE_FEATURES), int64 edges
    (2, n_edges) inner -> outer hit, float32 edge features, bool edge truth (None if the
    event has no truth)."""

    nodes: np.ndarray
    edges: np.ndarray
    edge_features: np.ndarray
    truth: np.ndarray | None
    n_true: int  # true pairs among all candidate pairs, before the cuts


def _candidate_pairs(layer: np.ndarray, max_skip: int, n_lay: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """All (inner, outer) hit pairs whose layers differ by 1 .. max_skip + 1."""
    order = np.argsort(layer, kind="stable")
    starts = np.searchsorted(layer[order], np.arange(n_lay + max_skip + 3))
    lo = starts[np.minimum(layer + 1, len(starts) - 1)]
    hi = starts[np.minimum(layer + max_skip + 2, len(starts) - 1)]
    counts = hi - lo
    src = np.repeat(np.arange(len(layer)), counts)
    first = np.repeat(lo - np.cumsum(counts) + counts, counts)
    dst = order[first + np.arange(counts.sum())]
    return src, dst


def _pair_quantities(frame: HitFrame, src: np.ndarray, dst: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|dphi| per cm, z miss per cm, signed dphi) of each pair."""
    gap = np.abs(frame.r[dst] - frame.r[src]) + 0.5
    dphi = np.mod(frame.phi[dst] - frame.phi[src] + np.pi, 2 * np.pi) - np.pi
    z_in = frame.z[src] - frame.vz
    miss = frame.z[dst] - frame.vz - z_in * frame.r[dst] / np.maximum(frame.r[src], 1e-6)
    return np.abs(dphi) / gap, np.abs(miss) / gap, dphi


def _nearest_of_group(group: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Mask of the smallest ``dist`` within each value of ``group``."""
    order = np.lexsort((dist, group))
    first = np.ones(len(order), bool)
    first[1:] = group[order][1:] != group[order][:-1]
    mask = np.zeros(len(group), bool)
    mask[order[first]] = True
    return mask


def true_consecutive(particle: np.ndarray, layer: np.ndarray, src: np.ndarray,
                     dst: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Truth of each pair: consecutive hits of one particle, i.e. the particle's next
    occupied layer, and the nearest such hit (in 3D) seen from either end, so that the
    legs of a looper are not cross-linked."""
    real = particle >= 0
    big = int(layer.max(initial=0)) + 1
    keys = np.unique(particle[real] * big + layer[real])
    same_next = np.append(keys[1:] // big == keys[:-1] // big, False)
    next_layer = np.where(same_next, np.append(keys[1:] % big, -1), -1)
    where = np.minimum(np.searchsorted(keys, particle[src] * big + layer[src]),
                       max(len(keys) - 1, 0))
    found = next_layer[where] if len(keys) else np.full(len(src), -1)
    step = (particle[src] >= 0) & (particle[src] == particle[dst]) & (found == layer[dst])
    idx = np.flatnonzero(step)
    dist = np.linalg.norm(xyz[src[idx]] - xyz[dst[idx]], axis=1)
    nearest = _nearest_of_group(src[idx], dist) | _nearest_of_group(dst[idx], dist)
    truth = np.zeros(len(src), bool)
    truth[idx[nearest]] = True
    return truth


def build_graph(event: Event, geometry: str, cuts: GraphCuts) -> Graph:
    """The event's graph; truth is filled when the event has ``hit_particle``."""
    frame = hit_frame(event)
    layer = global_layer(event, geometry)
    n_lay = n_layers(geometry)
    src, dst = _candidate_pairs(layer, cuts.max_skip, n_lay)
    q_phi, q_z, dphi = _pair_quantities(frame, src, dst)
    truth, n_true = None, 0
    if event.get("hit_particle") is not None:
        truth = true_consecutive(np.asarray(event["hit_particle"], np.int64), layer,
                                 src, dst, np.stack([frame.x, frame.y, frame.z], axis=1))
        n_true = int(truth.sum())
    keep = (q_phi < cuts.dphi_per_cm) & (q_z < cuts.dz_per_cm)
    src, dst, q_phi, q_z, dphi = src[keep], dst[keep], q_phi[keep], q_z[keep], dphi[keep]
    eta = frame.eta
    nodes = np.stack([frame.r / 80.0, np.cos(frame.phi), np.sin(frame.phi),
                      (frame.z - frame.vz) / 100.0, eta / 2.0, layer / n_lay], axis=1)
    edge_features = np.stack([(frame.r[dst] - frame.r[src]) / 10.0, dphi * 10.0,
                              (frame.z[dst] - frame.z[src]) / 10.0, q_phi / cuts.dphi_per_cm,
                              q_z / cuts.dz_per_cm, (eta[dst] - eta[src]) * 10.0], axis=1)
    return Graph(nodes.astype(np.float32), np.stack([src, dst]).astype(np.int64),
                 edge_features.astype(np.float32), None if truth is None else truth[keep],
                 n_true)


def fit_cuts(events: Sequence[Event], geometry: str, max_skip: int = 2,
             keep: float = 0.995) -> GraphCuts:
    """Cuts that keep the ``keep`` fraction of the true edges of ``events``."""
    q_phi, q_z = [], []
    for event in events:
        frame = hit_frame(event)
        layer = global_layer(event, geometry)
        src, dst = _candidate_pairs(layer, max_skip, n_layers(geometry))
        truth = true_consecutive(np.asarray(event["hit_particle"], np.int64), layer,
                                 src, dst, np.stack([frame.x, frame.y, frame.z], axis=1))
        p, z, _ = _pair_quantities(frame, src[truth], dst[truth])
        q_phi.append(p)
        q_z.append(z)
    return GraphCuts(max_skip, float(np.quantile(np.concatenate(q_phi), keep)) + 1e-6,
                     float(np.quantile(np.concatenate(q_z), keep)) + 1e-6)
