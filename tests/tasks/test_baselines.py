"""Tracking baselines on simulated sPHENIX events (real fast simulation, no Pythia):
Hough efficiency and noise rejection, DBSCAN on raw coordinates and on embeddings, GNN
training and held-out edge quality, the evaluator, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from npfm.detectors import simulate_events
from npfm.events.build import events_to_table
from npfm.events.errors import NpfmError
from npfm.physics.record import GeneratedEvent
from npfm.tasks.baselines import (
    DBSCANTrackFinder,
    EmbeddingDBSCAN,
    GNNTrackFinder,
    HoughTrackFinder,
    TrackFinder,
    evaluate_tracking,
    events_from_corpus,
)
from npfm.tasks.baselines.dbscan import mean_ari
from npfm.tasks.baselines.evaluate import flat_hits
from npfm.tasks.baselines.events import global_layer, n_layers
from npfm.tasks.metrics import double_majority

PION_MASS = 0.13957039  # GeV (PDG 2024)


def pions(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray,
          vz: float = 0.0) -> GeneratedEvent:
    """Primary charged pions from (0, 0, vz) cm."""
    n = len(pt)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return GeneratedEvent(
        pdg=(211 * charge).astype(np.int32), charge=charge.astype(np.float32), px=px, py=py,
        pz=pz, energy=np.sqrt(px**2 + py**2 + pz**2 + PION_MASS**2),
        mass=np.full(n, PION_MASS), vx=np.zeros(n), vy=np.zeros(n), vz=np.full(n, vz),
        vt=np.zeros(n), parent=np.full(n, -1, np.int32), primary=np.ones(n, bool),
        final=np.ones(n, bool),
        info={"process": "test", "vertex_x": 0.0, "vertex_y": 0.0, "vertex_z": vz})


def random_events(n_events: int, n_tracks: int, seed: int, **sim: bool) -> list[dict]:
    """Low-multiplicity events: pT 0.3-3 GeV, |eta| < 1, both charges, vertex z ~ 5 cm."""
    rng = np.random.default_rng(seed)
    gen = [pions(rng.uniform(0.3, 3.0, n_tracks), rng.uniform(-1, 1, n_tracks),
                 rng.uniform(-np.pi, np.pi, n_tracks), rng.choice([-1, 1], n_tracks),
                 float(rng.normal(0, 5))) for _ in range(n_events)]
    return simulate_events(gen, "sphenix", rng, include_objects=False, **sim)


@pytest.fixture(scope="module")
def low_mult() -> list[dict]:
    return random_events(30, 5, seed=1)


def dm(events: list[dict], finder: TrackFinder) -> dict:
    hits = flat_hits(events, [finder.predict(e) for e in events])
    return double_majority(hits["truth"], hits["pred"], hits["event_index"])


def test_hough_finds_tracks_and_leaves_noise(low_mult: list[dict]) -> None:
    finder = HoughTrackFinder()
    assert isinstance(finder, TrackFinder)
    finder.fit(low_mult)  # no-op
    labels = [finder.predict(e) for e in low_mult]
    hits = flat_hits(low_mult, labels)
    out = double_majority(hits["truth"], hits["pred"], hits["event_index"])
    assert out["n_particles"] >= 140
    assert out["efficiency"] > 0.9
    assert out["purity"] > 0.95
    assert out["fake_rate"] < 0.1
    noise = hits["truth"] < 0
    assert noise.sum() > 500  # about 56 noise hits per event in the sPHENIX geometry
    assert (hits["pred"][noise] == -1).mean() > 0.95
    assert [list(finder.predict(e)) for e in low_mult[:3]] == [list(x) for x in labels[:3]]


def test_events_from_corpus(low_mult: list[dict], tmp_path, make_corpus) -> None:
    corpus = make_corpus(tmp_path / "c", events_to_table(low_mult[:5], "simulated"))
    read = list(events_from_corpus(corpus, limit=3))
    assert len(read) == 3
    finder = HoughTrackFinder()
    for original, event in zip(low_mult, read, strict=False):
        assert np.allclose(event["hit_x"], original["hit_x"])
        assert (finder.predict(event) == finder.predict(original)).all()


def test_hough_both_charges_and_low_pt() -> None:
    rng = np.random.default_rng(4)
    gen = [pions(np.array([0.15, 0.25]), np.array([0.3, -0.4]),
                 np.array([a, a + 2.5]), np.array([1, -1])) for a in rng.uniform(-3, 3, 8)]
    events = simulate_events(gen, "sphenix", rng, include_objects=False, noise=False)
    assert dm(events, HoughTrackFinder())["efficiency"] > 0.9


def test_hough_rejects_missing_column(low_mult: list[dict]) -> None:
    event = {k: v for k, v in low_mult[0].items() if k != "hit_layer"}
    with pytest.raises(NpfmError, match="hit_layer"):
        HoughTrackFinder().predict(event)


def test_dbscan_separates_separated_tracks() -> None:
    rng = np.random.default_rng(5)
    gen = [pions(np.full(3, 2.0), rng.uniform(-0.8, 0.8, 3), a + np.array([0.0, 2.1, 4.2]),
                 np.array([1, -1, 1])) for a in rng.uniform(-3, 3, 12)]
    events = simulate_events(gen, "sphenix", rng, include_objects=False, noise=False)
    finder = DBSCANTrackFinder()
    finder.fit(events[:6])
    held_out = events[6:]
    assert mean_ari(held_out, [finder.predict(e) for e in held_out]) > 0.95
    assert dm(held_out, finder)["efficiency"] > 0.9


def truth_embedding(event: dict) -> np.ndarray:
    """Per-hit (phi, eta, q/pT) of the hit's particle; noise hits far apart (a stand-in
    for learned features that separate tracks)."""
    part = np.asarray(event["hit_particle"])
    px, py, pz = (np.asarray(event[f"particle_p{c}"]) for c in "xyz")
    pt = np.hypot(px, py)
    emb = np.stack([np.arctan2(py, px), np.arcsinh(pz / pt),
                    np.asarray(event["particle_charge"]) / pt], axis=1)[np.maximum(part, 0)]
    rng = np.random.default_rng(len(part))
    jitter = rng.normal(0.0, 0.003, (len(part), 3))
    return np.where(part[:, None] >= 0, emb + jitter, rng.uniform(-50, 50, (len(part), 3)))


def test_dbscan_on_embeddings(low_mult: list[dict]) -> None:
    finder = EmbeddingDBSCAN(truth_embedding, eps_grid=(1e-4, 0.05, 30.0))
    finder.fit(low_mult[:10])
    assert finder.eps == 0.05  # too small splits everything, too large merges tracks
    labels = [finder.predict(e) for e in low_mult[10:]]
    assert mean_ari(low_mult[10:], labels) > 0.99
    noise = np.concatenate([e["hit_particle"] < 0 for e in low_mult[10:]])
    assert (np.concatenate(labels)[noise] == -1).mean() > 0.95


@pytest.mark.slow
def test_gnn_trains_and_generalises() -> None:
    train, test = random_events(25, 4, seed=2), random_events(15, 4, seed=3)
    finder = GNNTrackFinder(epochs=6, batch_events=1, seed=1)
    finder.fit(train)
    assert finder.losses[-1] < 0.3 * finder.losses[0]
    edges = finder.edge_metrics(test)  # held-out events
    assert edges["graph_efficiency"] > 0.93
    assert edges["auc"] > 0.98
    assert edges["efficiency"] > 0.9
    assert edges["purity"] > 0.9
    assert dm(test, finder)["efficiency"] > 0.85


def test_gnn_is_deterministic(low_mult: list[dict]) -> None:
    runs = []
    for _ in range(2):
        finder = GNNTrackFinder(epochs=1, seed=7)
        finder.fit(low_mult[:8])
        runs.append((finder.losses, finder.predict(low_mult[9])))
    assert runs[0][0] == runs[1][0]
    assert (runs[0][1] == runs[1][1]).all()
    with pytest.raises(RuntimeError, match="fit"):
        GNNTrackFinder().predict(low_mult[0])


class TruthFinder:
    """The truth labels as a finder: the evaluator must give it perfect scores."""

    name = "truth"

    def fit(self, events: list[dict]) -> None:
        """Nothing to learn."""

    def predict(self, event: dict) -> np.ndarray:
        return np.asarray(event["hit_particle"])


def test_evaluate_tracking(low_mult: list[dict]) -> None:
    perfect = evaluate_tracking(TruthFinder(), low_mult, n_boot=50)
    for key in ("ari_mean", "ari_pooled", "efficiency", "purity", "trackml"):
        assert perfect[key]["value"] == pytest.approx(1.0), key
    assert perfect["fake_rate"]["value"] == 0.0
    finder = HoughTrackFinder()
    out = evaluate_tracking(finder, low_mult, n_boot=50)
    assert out["n_events"] == 30
    direct = dm(low_mult, finder)
    for key in ("efficiency", "purity", "fake_rate", "duplicate_rate"):
        assert out[key]["value"] == pytest.approx(direct[key]), key
    assert out["n_found"] == direct["n_found"]
    for key in ("ari_mean", "ari_exclude", "ari_pooled", "efficiency", "purity",
                "fake_rate", "duplicate_rate", "trackml"):
        assert out[key]["lo"] <= out[key]["value"] <= out[key]["hi"], key
    assert 0.8 < out["ari_mean"]["value"] < 1.0
    assert sum(b["n_particles"] for b in out["efficiency_vs_pt"]) == out["n_particles"]
    assert out["seconds_per_event"] > 0


def test_global_layer_counts_imaging_layers_after_the_trackers() -> None:
    """ePIC events with the BIC: its AstroPix hits get layers beyond every tracker layer,
    ordered by radius, so the tracking baselines read such corpora."""
    rng = np.random.default_rng(3)
    gen = [pions(np.full(4, 2.0), rng.uniform(-0.5, 0.5, 4), rng.uniform(-np.pi, np.pi, 4),
                 np.array([1, -1, 1, -1])) for _ in range(3)]
    events = simulate_events(gen, "epic", rng, include_objects=False)
    layer = np.concatenate([global_layer(e, "epic") for e in events])
    subsystem = np.concatenate([np.asarray(e["hit_subsystem"]).astype(str) for e in events])
    radius = np.concatenate([np.hypot(e["hit_x"], e["hit_y"]) for e in events])
    imaging = subsystem == "EcalBarrelImaging"
    assert imaging.sum() > 0
    assert (~imaging).sum() > 0
    assert layer[imaging].min() > layer[~imaging].max()
    order = np.argsort(layer[imaging], kind="stable")
    assert np.all(np.diff(radius[imaging][order]) > -1.0)  # outwards (pixel size aside)
    assert layer.max() < n_layers("epic")
