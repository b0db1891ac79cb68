"""Metric tests on small hand-computed events (arithmetic written out in comments)."""

import numpy as np
import pytest

from npfm.tasks.metrics import (
    adjusted_rand_index,
    ari_per_event,
    ari_pooled,
    double_majority,
    trackml_score,
    trackml_weights,
)
from npfm.tasks.stat_metrics import bootstrap_ci, classification_report, with_ci

# ARI = (I - E) / (M - E), I = sum C(n_ij,2), A = sum C(a_i,2), B = sum C(b_j,2),
# E = A*B / C(n,2), M = (A+B)/2.


def test_ari_perfect_and_relabelled():
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [7, 7, 7, 3, 3, 3]) == 1.0


def test_ari_split_track():
    # truth {0,0,0},{1,1,1}; pred splits track 0 into {2} + {1}.
    # n_ij = 2,1,3 -> I = 1+0+3 = 4; A = 3+3 = 6; B = 1+0+3 = 4; C(6,2) = 15
    # E = 24/15 = 1.6; M = 5; ARI = 2.4/3.4 = 12/17
    ari = adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 5, 1, 1, 1])
    assert ari == pytest.approx(12 / 17)


def test_ari_all_in_one_cluster():
    # I = 3+3 = 6; A = 6; B = C(6,2) = 15; E = 6*15/15 = 6; M = 10.5 -> ARI = 0
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0] * 6) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("noise", "expected"),
    [
        # truth {0,1,2},{3,4 noise}; pred {0,1},{2},{3,4 unassigned}
        # I = 1+0+1 = 2; A = 3+1 = 4; B = 1+0+1 = 2; E = 8/10; M = 3 -> 1.2/2.2 = 6/11
        ("own_cluster", 6 / 11),
        # noise as singletons: truth {012},{3},{4}; pred {01},{2},{3},{4}
        # I = 1; A = 3; B = 1; E = 3/10; M = 2 -> 0.7/1.7 = 7/17
        ("singletons", 7 / 17),
        # hits 3,4 dropped: truth {012}; pred {01},{2}; I = 1; A = 3; B = 1; E = 1; M = 2 -> 0
        ("exclude", 0.0),
    ],
)
def test_ari_noise_treatments(noise, expected):
    truth = np.array([0, 0, 0, -1, -1])
    pred = np.array([0, 0, 1, -1, -1])
    out = ari_per_event(truth, pred, np.zeros(5, int), noise=noise)
    assert out["mean"] == pytest.approx(expected)
    assert ari_pooled(truth, pred, np.zeros(5, int), noise=noise) == pytest.approx(expected)


def test_ari_unknown_noise_option():
    with pytest.raises(ValueError, match="unknown noise"):
        ari_per_event([0], [0], [0], noise="drop")  # type: ignore[arg-type]


def test_ari_per_event_vs_pooled():
    # event 0 perfect (ARI 1); event 1 all-in-one: A = 2, B = 6, I = 2, E = 2, M = 4 -> 0
    truth = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    ev = np.array([5, 5, 5, 5, 9, 9, 9, 9])
    out = ari_per_event(truth, pred, ev)
    np.testing.assert_allclose(out["per_event"], [1.0, 0.0], atol=1e-12)
    assert out["mean"] == pytest.approx(0.5)
    # pooled, labels (event, label): A = 4*1 = 4; B = 1+1+6 = 8; I = 4; C(8,2) = 28
    # E = 32/28 = 8/7; M = 6 -> (20/7)/(34/7) = 10/17
    assert ari_pooled(truth, pred, ev) == pytest.approx(10 / 17)
    # equal labels in different events are different clusters
    assert ari_pooled(truth, truth, ev) == 1.0


def test_ari_event_emptied_by_exclusion_is_nan():
    out = ari_per_event([0, 0, -1], [0, 0, 1], [0, 0, 1], noise="exclude")
    assert out["per_event"][0] == 1.0
    assert np.isnan(out["per_event"][1])
    assert out["mean"] == 1.0


def test_double_majority_perfect():
    truth = np.repeat([0, 1], 4)
    out = double_majority(truth, truth, np.zeros(8, int))
    assert (out["efficiency"], out["purity"], out["fake_rate"]) == (1.0, 1.0, 0.0)
    assert out["duplicate_rate"] == 0.0
    assert (out["n_particles"], out["n_tracks"]) == (2, 2)


def test_double_majority_all_in_one():
    # one track of 8 hits, 4 from each particle: 4/8 is not > 50 % -> nothing found
    out = double_majority(np.repeat([0, 1], 4), np.zeros(8, int), np.zeros(8, int))
    assert (out["efficiency"], out["fake_rate"], out["n_tracks"]) == (0.0, 1.0, 1)
    assert np.isnan(out["purity"])
    assert np.isnan(out["duplicate_rate"])


def test_double_majority_split_track_is_duplicate():
    # particle of 9 hits split 5 + 4: track A holds 5/9 > 50 % -> found;
    # track B is pure (4/4) but holds 4/9 -> matched duplicate, not fake
    truth = np.zeros(9, int)
    pred = np.array([0] * 5 + [1] * 4)
    out = double_majority(truth, pred, np.zeros(9, int))
    assert out["efficiency"] == 1.0
    assert (out["n_matched_tracks"], out["n_duplicates"], out["duplicate_rate"]) == (2, 1, 1.0)
    assert out["fake_rate"] == 0.0


def test_double_majority_fake_track_and_purity():
    # particle 0: 4 hits, found by a track that also has one noise hit (purity 4/5);
    # track 1: 2 hits of particle 1 + 2 noise hits -> 2/4 not > 50 % -> fake
    truth = np.array([0, 0, 0, 0, -1, 1, 1, 1, 1, -1, -1])
    pred = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 1, 1])
    out = double_majority(truth, pred, np.zeros(11, int), min_pred_hits=4)
    assert out["efficiency"] == 0.5
    assert out["purity"] == pytest.approx(0.8)
    assert out["n_tracks"] == 2  # track 2 has only 2 hits
    assert out["fake_rate"] == 0.5


def test_double_majority_min_hits_and_pt():
    truth = np.array([0, 0, 0, 1, 1])
    ev = np.zeros(5, int)
    out = double_majority(truth, truth, ev)  # 3-hit track below min_pred_hits=4
    assert (out["n_particles"], out["n_tracks"], out["efficiency"]) == (1, 0, 0.0)
    out = double_majority(truth, truth, ev, min_pred_hits=3)
    assert (out["efficiency"], out["n_tracks"], out["fake_rate"]) == (1.0, 1, 0.0)
    out = double_majority(truth, truth, ev, min_truth_hits=2, min_pred_hits=2)
    assert (out["n_particles"], out["efficiency"]) == (2, 1.0)
    pt = np.array([0.5, 0.5, 0.5, 2.0, 2.0])
    out = double_majority(truth, truth, ev, pt=pt, pt_min=1.0, min_truth_hits=2, min_pred_hits=2)
    assert (out["n_particles"], out["n_found"]) == (1, 1)


def test_trackml_weights_order_profile_and_normalisation():
    # particle 0: 4 hits, order_key ranks hit1 < hit3 < hit2 < hit0; positions on the
    # 9-point profile rank*8/3 = 0, 8/3, 16/3, 8 -> 10, 6-2/3, 3, 6
    # so raw weights (hit0..hit3) 6, 10, 3, 16/3; sum 73/3
    # hits 4-6: a 3-hit particle (weight 0); hit 7: noise (weight 0)
    truth = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    order_key = np.array([3.0, 0.0, 2.0, 1.0, 0.0, 1.0, 2.0, 0.0])
    w = trackml_weights(truth, np.zeros(8, int), np.full(8, 3.0), order_key)
    np.testing.assert_allclose(w, [18 / 73, 30 / 73, 9 / 73, 16 / 73, 0, 0, 0, 0])
    assert w.sum() == pytest.approx(1.0)


def test_trackml_weights_pt_and_per_event_sum():
    # w_pT(0.1) = 0.2, w_pT(1.75) = 0.6 -> particle shares 0.25 and 0.75
    truth = np.array([0] * 4 + [1] * 4 + [0] * 5)
    ev = np.array([0] * 8 + [1] * 5)
    pt = np.array([0.1] * 4 + [1.75] * 4 + [5.0] * 5)
    key = np.array([0, 1, 2, 3] * 2 + [0, 1, 2, 3, 4], float)
    w = trackml_weights(truth, ev, pt, key)
    assert w[:4].sum() == pytest.approx(0.25)
    assert w[4:8].sum() == pytest.approx(0.75)
    assert w[8:].sum() == pytest.approx(1.0)


def test_trackml_score():
    # event 0: particle 0 split 2+2 (no track holds > 50 %), particle 1 perfect -> 0.5
    # event 1: perfect -> 1
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, -1])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0])
    ev = np.array([0] * 8 + [1] * 5)
    key = np.array([0, 1, 2, 3] * 3 + [9], float)
    out = trackml_score(truth, pred, ev, np.full(13, 2.0), key)
    np.testing.assert_allclose(out["per_event"], [0.5, 1.0])
    assert out["mean"] == pytest.approx(0.75)
    out = trackml_score(truth, truth, ev, np.full(13, 2.0), key)
    np.testing.assert_allclose(out["per_event"], [1.0, 1.0])


def test_classification_report_missing_class():
    # conf rows (true 0,1,2,3): [1,1,0,0], [0,2,0,0], [0,0,0,0], [1,0,0,0]; class 2 absent
    # recall 1/2, 1, nan, 0 -> macro 1.5/3; precision 1/2, 2/3, nan, 0 -> macro (7/6)/3
    rep = classification_report([0, 0, 1, 1, 3], [0, 1, 1, 1, 0], n_classes=4)
    assert rep["accuracy"] == pytest.approx(3 / 5)
    np.testing.assert_allclose(rep["recall"], [0.5, 1.0, np.nan, 0.0])
    np.testing.assert_allclose(rep["precision"], [0.5, 2 / 3, np.nan, 0.0])
    assert rep["macro_recall"] == pytest.approx(0.5)
    assert rep["macro_precision"] == pytest.approx(7 / 18)
    np.testing.assert_array_equal(
        rep["confusion"], [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    )


def test_bootstrap_ci_deterministic_and_contains_estimate():
    values = np.linspace(0.0, 1.0, 21)
    first = bootstrap_ci(values, n=500, seed=3)
    assert first == bootstrap_ci(values, n=500, seed=3)
    assert first != bootstrap_ci(values, n=500, seed=4)
    est, lo, hi = first
    assert est == pytest.approx(0.5)
    assert lo < est < hi
    assert bootstrap_ci(np.full(5, 0.7)) == pytest.approx((0.7, 0.7, 0.7))


def test_with_ci_resamples_events():
    # 4 events: 2 perfect, 2 with an all-in-one prediction
    truth = np.tile(np.repeat([0, 1], 4), 4)
    pred = np.concatenate([np.repeat([0, 1], 4)] * 2 + [np.zeros(8, int)] * 2)
    hits = {"truth": truth, "pred": pred, "event_index": np.repeat([3, 1, 2, 0], 8)}
    est, lo, hi = with_ci(double_majority, hits, key="efficiency", n=100, seed=1)
    assert est == double_majority(**hits)["efficiency"] == 0.5
    assert lo <= est <= hi
    assert lo < hi
    assert (est, lo, hi) == with_ci(double_majority, hits, key="efficiency", n=100, seed=1)
    perfect = dict(hits, pred=truth)
    assert with_ci(ari_per_event, perfect, key="mean", n=20) == (1.0, 1.0, 1.0)


def _ari_by_pairs(truth, pred):
    """sklearn's pair-confusion form of ARI, by brute force over hit pairs."""
    i, j = np.triu_indices(len(truth), 1)
    st, sp = truth[i] == truth[j], pred[i] == pred[j]
    tp, fn, fp, tn = (st & sp).sum(), (st & ~sp).sum(), (~st & sp).sum(), (~st & ~sp).sum()
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def test_ari_matches_pair_counting_form():
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth, pred = rng.integers(0, 4, 15), rng.integers(0, 5, 15)
        assert adjusted_rand_index(truth, pred) == pytest.approx(_ari_by_pairs(truth, pred))
