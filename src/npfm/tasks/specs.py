"""The downstream tasks: what each predicts, its targets and how it is scored.

Kinds: ``hit`` (per-hit classes), ``instance`` (track finding by object condensation),
``event_class`` and ``event_regress`` (one output per event). Targets come from the
event model's truth columns (docs/event-model.md); a target of ``IGNORE`` (-100) is
not trained on or scored. Every score is computed over the test events and carries a
95% event-bootstrap interval (``npfm.tasks.stat_metrics.with_ci``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from npfm.events import vocabulary
from npfm.tasks import metrics, stat_metrics
from npfm.tasks.calo import (
    electron_pion_target,
    passing_at_efficiency,
    rejection_at_efficiency,
)
from npfm.tasks.data import TaskEvent

IGNORE = -100
SILICON = ("MVTX", "INTT")
BOOTSTRAP = 200


@dataclass(frozen=True)
class Task:
    """A downstream task: ``targets(event)`` gives per-hit or per-event targets."""

    name: str
    description: str
    kind: str  # hit, instance, event_class, event_regress
    n_out: int
    targets: Callable[[TaskEvent], np.ndarray]
    headline: str  # the metric that ranks models
    subsystems: tuple[str, ...] | None = None  # hits fed to the backbone (None: all)
    per_track: bool = False  # hit classes predicted and scored per truth track
    cells: bool = False  # the backbone also sees the events' calorimeter cells


def _particle_pt(event: TaskEvent) -> np.ndarray:
    p = event.particles
    return np.hypot(p.get("particle_px", np.zeros(0)), p.get("particle_py", np.zeros(0)))


def track_objects(event: TaskEvent) -> np.ndarray:
    """Track id per hit: its truth particle, or -1 for noise and low-pT (FM4NPP) hits."""
    particle = event.hit("hit_particle").astype(np.int64)
    noise = event.hit("hit_noise") == 1
    return np.where((particle >= 0) & ~noise, particle, -1)


def pid_targets(event: TaskEvent) -> np.ndarray:
    pid = event.hit("hit_pid_class").astype(np.int64)
    return np.where(event.hit("hit_particle") >= 0, pid, IGNORE)


def track_pid_targets(event: TaskEvent) -> np.ndarray:
    """``pid_targets`` on the hits of tracks (``track_objects``), IGNORE elsewhere."""
    return np.where(track_objects(event) >= 0, pid_targets(event), IGNORE)


def track_groups(events: list[TaskEvent]) -> np.ndarray:
    """(N,) int64 global track index of each hit of ``events`` (packed in order): the
    tracks of ``track_objects`` numbered across events, -1 for hits of none."""
    out, offset = [], 0
    for event in events:
        objects = track_objects(event)
        ids, index = np.unique(objects[objects >= 0], return_inverse=True)
        groups = np.full(len(objects), -1, np.int64)
        groups[objects >= 0] = index + offset
        out.append(groups)
        offset += len(ids)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def per_track(task: Task, events: list[TaskEvent], prob: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-track truth (T,), mean hit probabilities (T, C) and event index (T,) of a
    ``per_track`` task, from per-hit probabilities (N, C) packed in event order."""
    groups = track_groups(events)
    truth = np.concatenate([task.targets(e) for e in events])
    event = np.concatenate([np.full(e.n_hits, i) for i, e in enumerate(events)])
    keep = (groups >= 0) & (truth != IGNORE)
    ids, first = np.unique(groups[keep], return_index=True)
    counts = np.bincount(groups[keep], minlength=int(ids.max()) + 1 if len(ids) else 0)
    sums = np.zeros((len(counts), prob.shape[1]))
    np.add.at(sums, groups[keep], prob[keep])
    return (truth[keep][first], sums[ids] / counts[ids, None], event[keep][first])


def noise_targets(event: TaskEvent) -> np.ndarray:
    return (event.hit("hit_noise") == 1).astype(np.int64)


def b_tag_target(event: TaskEvent) -> np.ndarray:
    flavour = event.info.get("truth_quark_flavour")
    return np.array([IGNORE if flavour is None else int(flavour == 5)])


def charged_multiplicity(event: TaskEvent) -> np.ndarray:
    """Charged particles leaving at least 3 hits (a reconstructable multiplicity)."""
    particle = event.hit("hit_particle").astype(np.int64)
    counts = np.bincount(particle[particle >= 0], minlength=len(event.particles.get(
        "particle_charge", [])))
    charge = event.particles.get("particle_charge", np.zeros(len(counts)))
    return np.array([float(np.sum((counts >= 3) & (charge != 0)))])


def electron_hits(event: TaskEvent) -> np.ndarray:
    lepton = event.info.get("truth_scattered_lepton")
    if lepton is None:
        return np.full(event.n_hits, IGNORE)
    return (event.hit("hit_particle") == int(lepton)).astype(np.int64)


def dis_kinematics(event: TaskEvent) -> np.ndarray:
    """log10 x and log10 Q2 (Q2 in GeV^2) of the DIS event."""
    x, q2 = event.info.get("truth_x"), event.info.get("truth_q2")
    if x is None or q2 is None or x <= 0 or q2 <= 0:
        return np.array([np.nan, np.nan])
    return np.array([np.log10(x), np.log10(q2)])


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("tracking", "track finding on all tracker hits (instance segmentation)",
         "instance", 0, track_objects, "ari"),
    Task("tpc_tracking", "track finding on TPC hits only", "instance", 0, track_objects,
         "ari", ("TPC",)),
    Task("silicon_tracking", "track finding on TPC + INTT + MVTX, scored on silicon hits",
         "instance", 0, track_objects, "silicon_ari"),
    Task("pid", "5-class PID per hit (FM4NPP classes)", "hit", 5, pid_targets,
         "macro_recall"),
    Task("pid_track", "5-class PID per truth track, its hits classified together", "hit", 5,
         track_pid_targets, "macro_recall", per_track=True),
    Task("noise", "low-pT (< 0.06 GeV) hit tagging", "hit", 2, noise_targets, "accuracy"),
    Task("ee_btag", "Z -> b bbar against light flavour, per event", "event_class", 2,
         b_tag_target, "auc"),
    Task("ee_multiplicity", "charged multiplicity regression, per event", "event_regress", 1,
         charged_multiplicity, "resolution"),
    Task("ep_electron", "scattered-electron hits in ep/EIC events", "hit", 2, electron_hits,
         "auc"),
    Task("ep_kinematics", "log10 x and log10 Q2 regression, per event", "event_regress", 2,
         dis_kinematics, "resolution"),
    Task("calo_eid", "electron/pion separation of a track and its calorimeter cluster, per "
         "single-particle event (npfm.tasks.calo)", "event_class", 2, electron_pion_target,
         "rejection_at_90", cells=True),
)}

LOWER_IS_BETTER = {"resolution"}


def _ci(fn: Callable[..., Any], arrays: dict[str, np.ndarray], key: str | None,
        **kwargs: Any) -> dict[str, float]:
    value, lo, hi = stat_metrics.with_ci(fn, arrays, key=key, n=BOOTSTRAP, **kwargs)
    return {"value": value, "lo": lo, "hi": hi}


def score_hits(task: Task, truth: np.ndarray, prob: np.ndarray, event_index: np.ndarray
               ) -> dict[str, Any]:
    """Accuracy (and AUC for two classes, macro recall/precision/F1) with intervals."""
    keep = truth != IGNORE
    arrays = {"y": truth[keep], "p": prob[keep], "event_index": event_index[keep]}
    out: dict[str, Any] = {
        "accuracy": _ci(lambda y, p, event_index: float(np.mean(p.argmax(1) == y)),
                        arrays, None)}
    for name in ("macro_recall", "macro_precision", "macro_f1"):
        out[name] = _ci(lambda y, p, event_index, name=name: _macro(y, p, task.n_out)[name],
                        arrays, None)
    if task.n_out == 2:
        out["auc"] = _ci(lambda y, p, event_index: stat_metrics.binary_auc(y, p[:, 1]), arrays,
                         None)
        cls = stat_metrics.classification_report(arrays["y"], arrays["p"].argmax(1), 2)
        out["recall"], out["precision"] = cls["recall"][1], cls["precision"][1]
    return out


def _macro(y: np.ndarray, prob: np.ndarray, n_classes: int) -> dict[str, float]:
    """Macro recall, precision and their harmonic mean (F1) of argmax predictions."""
    report = stat_metrics.classification_report(y, prob.argmax(1), n_classes)
    recall, precision = report["macro_recall"], report["macro_precision"]
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {"macro_recall": recall, "macro_precision": precision, "macro_f1": f1}


def score_events(task: Task, truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Per-event classification or regression scores with intervals over events."""
    index = np.arange(len(truth))
    if task.kind == "event_class":
        keep = truth[:, 0] != IGNORE
        arrays = {"y": truth[keep, 0], "p": pred[keep], "event_index": index[keep]}
        return {"accuracy": _ci(lambda y, p, event_index: float(np.mean(p.argmax(1) == y)),
                                arrays, None),
                "auc": _ci(lambda y, p, event_index: stat_metrics.binary_auc(y, p[:, 1]), arrays,
                           None),
                "rejection_at_90": _ci(lambda y, p, event_index: rejection_at_efficiency(
                    y, p[:, 1]), arrays, None),
                "passing_at_90": passing_at_efficiency(arrays["y"], arrays["p"][:, 1])}
    out: dict[str, Any] = {}
    for j in range(truth.shape[1]):
        keep = np.isfinite(truth[:, j])
        arrays = {"t": truth[keep, j], "p": pred[keep, j], "event_index": index[keep]}
        name = f"target{j}" if truth.shape[1] > 1 else "target"
        for stat in ("resolution", "bias"):
            out[f"{name}_{stat}"] = _ci(
                lambda t, p, event_index, s=stat: stat_metrics.regression_report(t, p)[s],
                arrays, None)
    first = next(k for k in out if k.endswith("_resolution"))
    out["resolution"] = out[first]
    return out


def mean_ari(events: Sequence[TaskEvent], labels: Sequence[np.ndarray],
             silicon_only: bool = False) -> float:
    """Per-event mean ARI (noise as its own cluster), without an interval; on the MVTX
    and INTT hits alone with ``silicon_only``. NaN if no hit is scored."""
    silicon = [vocabulary.code("subsystems", s) for s in SILICON]
    truth, pred, index = [], [], []
    for i, (event, label) in enumerate(zip(events, labels, strict=True)):
        keep = (np.isin(event.hit("hit_subsystem"), silicon) if silicon_only
                else np.ones(event.n_hits, bool))
        truth.append(track_objects(event)[keep])
        pred.append(np.asarray(label)[keep])
        index.append(np.full(int(keep.sum()), i))
    t, p, e = (np.concatenate(x) for x in (truth, pred, index))
    return float(metrics.ari_per_event(t, p, e)["mean"]) if len(t) else float("nan")


def score_tracks(task: Task, events: list[TaskEvent], labels: list[np.ndarray]
                 ) -> dict[str, Any]:
    """ARI (per event and pooled), double majority, TrackML (with the data's own
    ``hit_weight`` where every hit has one, else computed: hits of secondary particles,
    ``particle_primary`` false, weigh 0 as in the official truth), efficiency vs pT and
    eta."""
    ev, truth, pred, pt, eta, order, sil, sec, given = [], [], [], [], [], [], [], [], []
    silicon = {vocabulary.code("subsystems", s) for s in SILICON}
    for i, (event, label) in enumerate(zip(events, labels, strict=True)):
        objects = track_objects(event)
        p_pt = _particle_pt(event)
        p = event.particles
        p_eta = np.arcsinh(p.get("particle_pz", np.zeros(0)) / np.maximum(p_pt, 1e-9))
        has = objects >= 0
        ev.append(np.full(len(objects), i))
        truth.append(objects)
        pred.append(label)
        pt.append(np.where(has, p_pt[np.maximum(objects, 0)] if len(p_pt) else 0, 0))
        eta.append(np.where(has, p_eta[np.maximum(objects, 0)] if len(p_eta) else 0, 0))
        vz = event.info.get("vertex_z") or 0.0
        order.append(np.abs(event.hit("hit_z") - vz))
        sil.append(np.isin(event.hit("hit_subsystem"), list(silicon)))
        sec.append(has & metrics.secondary_hits(objects, p.get("particle_primary")))
        given.append(event.hit("hit_weight") if "hit_weight" in event.batch.fields
                     else np.full(len(objects), np.nan))
    arrays = {k: np.concatenate(v) for k, v in (("event_index", ev), ("truth", truth),
                                                ("pred", pred), ("pt", pt), ("eta", eta),
                                                ("order", order), ("silicon", sil),
                                                ("secondary", sec), ("given", given))}
    base: dict[str, Any] = {k: arrays[k] for k in ("truth", "pred", "event_index")}
    out: dict[str, Any] = {
        "ari": _ci(lambda **a: metrics.ari_per_event(**a)["mean"], base, None),
        "ari_pooled": metrics.ari_pooled(**base),
        "noise_treatment": "own_cluster",
        "efficiency": _ci(lambda **a: metrics.double_majority(**a)["efficiency"], base, None),
        "purity": _ci(lambda **a: metrics.double_majority(**a)["purity"], base, None),
    }
    dm = metrics.double_majority(**base)
    out.update(fake_rate=dm["fake_rate"], duplicate_rate=dm["duplicate_rate"],
               n_particles=dm["n_particles"])
    official = bool(np.isfinite(arrays["given"]).all())  # the data's own (TrackML) weights
    if official:
        out["trackml"] = _ci(lambda given, **a: metrics.trackml_score(
            weights=given, **a)["mean"], {**base, "given": arrays["given"]}, None)
    else:
        out["trackml"] = _ci(lambda pt, order, secondary, **a: metrics.trackml_score(
            pt=pt, order_key=order, secondary=secondary, **a)["mean"],
            {**base, **{k: arrays[k] for k in ("pt", "order", "secondary")}}, None)
    out["trackml_weights"] = "given" if official else "computed"
    out["efficiency_vs_pt"] = metrics.efficiency_binned(
        **base, value=arrays["pt"], edges=np.array([0.06, 0.3, 0.6, 1.0, 2.0, 5.0, 50.0]))
    out["efficiency_vs_eta"] = metrics.efficiency_binned(
        **base, value=arrays["eta"], edges=np.linspace(-1.5, 1.5, 7))
    if arrays["silicon"].any():
        s = arrays["silicon"]
        sbase: dict[str, Any] = {k: v[s] for k, v in base.items()}
        out["silicon_ari"] = _ci(lambda **a: metrics.ari_per_event(**a)["mean"], sbase, None)
        out["silicon_efficiency"] = metrics.double_majority(
            **sbase, min_truth_hits=2, min_pred_hits=2)["efficiency"]
    return out
