"""Representation-quality probe of a pretraining run: the fast feedback loop.

``probe(run, corpus)`` reads up to ``n_events`` labelled events of one split and
measures, for the frozen features of the run (the token embedding, each block, and
their plain mean of layer-normalised outputs, "mix"), next to the standardised raw hit
features (``raw``, ``npfm.tasks.backbone.RawHitFeatures``) and the token embedder of a
randomly initialised model of the same architecture (``random_embedder``):

- ``linear_probe``: R^2 of a ridge regression (lambda = 1e-3 per hit, on z-scored
  features) fitted on half of the events and scored on the other half, for the hit's
  eta, cos phi, sin phi, r (cm), z (cm) and, on hits of a truth particle, the particle's
  log10 pT (GeV) and direction (eta, cos phi, sin phi);
- ``knn_purity``: same-track k-NN purity: per hit of a truth track, the fraction of its
  k nearest other track hits of the event (Euclidean, on z-scored features) that belong
  to its track; the per-event mean with a 95% bootstrap interval over events (noise
  hits are left out);
- ``pretraining_loss``: the run's own objective on these events against its trivial
  predictors (kNNN: copy the query, i.e. zero offset, and the per-rank mean; masked
  modelling: the mean of the masked features), as logged by the objectives.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json, sha256_file
from npfm.events.windows import split
from npfm.model.serialize import cylindrical
from npfm.tasks.backbone import RawHitFeatures, build_backbone, hit_layers
from npfm.tasks.data import TaskEvent, load_events, pack
from npfm.tasks.specs import track_objects
from npfm.train import checkpoint
from npfm.train.embed import load_model

HIT_TARGETS = ("eta", "cos_phi", "sin_phi", "r_cm", "z_cm")
TRUTH_TARGETS = ("log10_pt", "particle_eta", "particle_cos_phi", "particle_sin_phi")
RIDGE = 1e-3
BOOTSTRAP = 200


def _targets(events: Sequence[TaskEvent]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 9) regression targets (HIT_TARGETS + TRUTH_TARGETS, NaN where a hit has no
    particle) and (N,) truth track ids (-1 for noise) of every hit, in event order."""
    rows, tracks = [], []
    for event in events:
        x, y, z = (torch.from_numpy(event.hit(f"hit_{c}")).double() for c in "xyz")
        eta, phi, r = (v.numpy() for v in cylindrical(x, y, z))
        p = event.particles
        px, py, pz = (p.get(f"particle_{c}", np.zeros(0)) for c in ("px", "py", "pz"))
        pt = np.hypot(px, py)
        particle = event.hit("hit_particle")
        has = (particle >= 0) & (particle < len(pt))
        idx = np.where(has, particle, 0)
        truth = np.full((event.n_hits, 4), np.nan)
        if len(pt):
            with np.errstate(divide="ignore", invalid="ignore"):
                p_phi = np.arctan2(py[idx], px[idx])
                truth = np.stack([np.log10(pt[idx]), np.arcsinh(pz[idx] / pt[idx]),
                                  np.cos(p_phi), np.sin(p_phi)], 1)
            truth[~has] = np.nan
        rows.append(np.concatenate([np.stack([eta, np.cos(phi), np.sin(phi), r,
                                              z.numpy()], 1), truth], 1))
        tracks.append(track_objects(event))
    return np.concatenate(rows), np.concatenate(tracks)


def ridge_r2(features: np.ndarray, target: np.ndarray, train: np.ndarray) -> float:
    """R^2 on ``~train`` rows of a ridge fit on ``train`` rows (finite targets only)."""
    ok = np.isfinite(target) & np.isfinite(features).all(1)
    fit, test = train & ok, ~train & ok
    if fit.sum() < 2 or test.sum() < 2:
        return float("nan")
    mean, std = features[fit].mean(0), features[fit].std(0) + 1e-6
    xf, xt = (features[fit] - mean) / std, (features[test] - mean) / std
    xf, xt = (np.concatenate([a, np.ones((len(a), 1))], 1) for a in (xf, xt))
    gram = xf.T @ xf + RIDGE * len(xf) * np.eye(xf.shape[1])
    coef = np.linalg.solve(gram, xf.T @ target[fit])
    residual = target[test] - xt @ coef
    total = target[test] - target[test].mean()
    return float(1 - (residual ** 2).sum() / max((total ** 2).sum(), 1e-12))


def knn_purity(features: np.ndarray, tracks: np.ndarray, offsets: Sequence[int], k: int,
               seed: int = 0) -> dict[str, float]:
    """Same-track k-NN purity (see the module docstring): {value, lo, hi}."""
    z = torch.from_numpy((features - features.mean(0)) / (features.std(0) + 1e-6)).float()
    per_event = []
    for start, stop in itertools.pairwise(offsets):
        keep = tracks[start:stop] >= 0
        x, t = z[start:stop][torch.from_numpy(keep)], torch.from_numpy(tracks[start:stop][keep])
        if len(x) <= k:
            continue
        d = torch.cdist(x, x)
        d.fill_diagonal_(torch.inf)
        nearest = d.topk(k, largest=False).indices
        per_event.append(float((t[nearest] == t[:, None]).float().mean()))
    if not per_event:
        return {"value": float("nan"), "lo": float("nan"), "hi": float("nan")}
    values = np.asarray(per_event)
    rng = np.random.default_rng(seed)
    boot = values[rng.integers(0, len(values), (BOOTSTRAP, len(values)))].mean(1)
    return {"value": float(values.mean()), "lo": float(np.quantile(boot, 0.025)),
            "hi": float(np.quantile(boot, 0.975))}


def _representations(run: Path, events: Sequence[TaskEvent], seed: int
                     ) -> dict[str, np.ndarray]:
    """Per-hit feature matrices by name, rows in event order."""
    frozen = build_backbone("frozen", run, seed)
    random = build_backbone("scratch", run, seed + 1).eval()
    raw = RawHitFeatures()
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(events), 16):
            batch = pack(events[start:start + 16])
            layers = hit_layers(frozen, batch)
            named = {"raw": hit_layers(raw, batch)[0],
                     "random_embedder": hit_layers(random, batch)[0],
                     "embedding": layers[0],
                     **{f"block_{i}": x for i, x in enumerate(layers[1:], 1)},
                     "mix": torch.stack([F.layer_norm(x, x.shape[-1:]) for x in layers]
                                        ).mean(0)}
            for name, x in named.items():
                parts.setdefault(name, []).append(x.float().numpy())
    return {name: np.concatenate(x) for name, x in parts.items()}


def pretraining_loss(run: Path, events: Sequence[TaskEvent]) -> dict[str, float]:
    """The run's objective and its trivial predictors on ``events`` (mean over batches
    of 8 events, in eval mode, events split into windows of the run's ``max_hits`` as in
    pretraining)."""
    model, _ = load_model(run)
    totals: dict[str, list[float]] = {}
    with torch.no_grad():
        for start in range(0, len(events), 8):
            windows = split(pack(events[start:start + 8]), model.config.max_hits)
            _, metrics = model(windows.batch, step=0)
            for name, value in metrics.items():
                totals.setdefault(name, []).append(float(value))
    return {name: float(np.mean(v)) for name, v in totals.items()}


def probe(run: Path, corpus: Path, *, split: str = "test", n_events: int = 80, k: int = 10,
          seed: int = 0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The probe's figures (see the module docstring) as a JSON-ready dict, also written
    to ``<run>/probe.json`` (the run's latest probe, shown on its checkpoint page)."""
    say = progress or (lambda message: None)
    latest = checkpoint.latest(run)
    if latest is None:
        raise NpfmError(str(run), "no checkpoint", "pretrain first: npfm pretrain CONFIG --out RUN")
    say(f"reading {split} events of {corpus}")
    events = load_events(corpus, splits=[split], limit=n_events, min_hits=k + 2)
    if len(events) < 4:
        raise NpfmError(f"{corpus} split {split}", f"{len(events)} events with > {k + 1} hits",
                        "probe a corpus with at least 4 such events in that split")
    targets, tracks = _targets(events)
    offsets = np.cumsum([0, *(e.n_hits for e in events)]).tolist()
    train = np.concatenate([np.full(e.n_hits, i % 2 == 0) for i, e in enumerate(events)])
    say("computing features")
    reps = _representations(run, events, seed)
    say("fitting linear probes and k-NN purity")
    names = (*HIT_TARGETS, *TRUTH_TARGETS)
    linear = {rep: {t: ridge_r2(x, targets[:, j], train) for j, t in enumerate(names)}
              for rep, x in reps.items()}
    purity = {rep: knn_purity(x, tracks, offsets, k, seed) for rep, x in reps.items()}
    say("evaluating the pretraining objective")
    result = {"run": str(run), "checkpoint": str(latest),
            "checkpoint_sha256": sha256_file(latest / "model.safetensors"),
            "corpus": str(corpus), "split": split, "n_events": len(events),
            "n_hits": len(tracks), "k": k, "seed": seed, "ridge_lambda": RIDGE,
            "linear_probe": linear, "knn_purity": purity,
            "pretraining_loss": pretraining_loss(run, events)}
    atomic_write_json(run / "probe.json", result)
    return result
