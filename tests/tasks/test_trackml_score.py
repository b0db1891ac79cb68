"""TrackML weights and score as defined by trackml-library (``weight_hits``,
``score_event``), checked against values derived by hand from the definition."""

from fractions import Fraction

import numpy as np
import pytest

from npfm.tasks.baselines.evaluate import flat_hits
from npfm.tasks.metrics import trackml_score, trackml_weights

PROFILE = [10, 8, 6, 5, 3, 3, 3, 5, 6]


def order_row(n: int) -> list[Fraction]:
    """Order weights of an n-hit particle (n <= 20), exactly: the profile read at the
    n equally spaced points 8 i / (n - 1), linear between its knots, over its sum."""
    raw = []
    for i in range(n):
        x = Fraction(8 * i, n - 1)
        k = min(int(x), 7)
        raw.append(PROFILE[k] + (x - k) * (PROFILE[k + 1] - PROFILE[k]))
    return [r / sum(raw) for r in raw]


def test_order_rows_by_hand() -> None:
    # 4 hits: profile at 0, 8/3, 16/3, 8 -> 10, 16/3, 3, 6; sum 73/3
    assert order_row(4) == [Fraction(30, 73), Fraction(16, 73), Fraction(9, 73),
                            Fraction(18, 73)]
    # 9 hits: the profile itself, sum 49
    assert order_row(9) == [Fraction(p, 49) for p in PROFILE]


def test_weights_normalised_per_particle_then_by_pt() -> None:
    # particle 0: 13 hits, pT 5 GeV (factor 1); particle 1: 4 hits, pT 1.75 (0.6);
    # particle 2: 25 hits, pT 0.3 (0.2): its first 20 hits on the 20-hit row, the rest 0;
    # particle 3: 5 hits, pT 0.03 (0: below 0.05 GeV); particle 4: 3 hits (0: < 4 hits);
    # particle 5: 6 hits, a secondary (0); two noise hits (0).
    sizes = {0: 13, 1: 4, 2: 25, 3: 5, 4: 3, 5: 6, -1: 2}
    pts = {0: 5.0, 1: 1.75, 2: 0.3, 3: 0.03, 4: 2.0, 5: 5.0, -1: 0.0}
    truth = np.concatenate([np.full(n, p) for p, n in sizes.items()])
    pt = np.array([pts[p] for p in truth])
    rng = np.random.default_rng(4)
    key = np.concatenate([rng.permutation(n).astype(float) for n in sizes.values()])
    secondary = truth == 5
    w = trackml_weights(truth, np.zeros(len(truth), int), pt, key, secondary=secondary)
    factor = {0: Fraction(1), 1: Fraction(3, 5), 2: Fraction(1, 5)}
    expected = []
    for p, n in sizes.items():
        row = order_row(min(n, 20)) + [Fraction(0)] * max(0, n - 20)
        expected += [row[int(r)] * factor[p] if p in factor else Fraction(0)
                     for r in key[truth == p]]
    total = sum(expected)
    np.testing.assert_allclose(w, [float(e / total) for e in expected], rtol=0, atol=1e-12)
    # the 13-hit particle carries 1 / (1 + 0.6 + 0.2) of the event
    assert w[truth == 0].sum() == pytest.approx(1 / 1.8, abs=1e-12)
    # without the secondary flag, particle 5 weighs like a primary (factor 1)
    loose = trackml_weights(truth, np.zeros(len(truth), int), pt, key)
    assert loose[truth == 5].sum() == pytest.approx(1 / 2.8, abs=1e-12)


def test_tied_order_keys_share_the_floor_of_their_mean_rank() -> None:
    # keys 0, 1, 1, 2: ranks 0, floor(1.5) = 1, 1, 3 (pandas' average rank, truncated)
    truth = np.zeros(4, int)
    w = trackml_weights(truth, truth, np.full(4, 5.0), np.array([0.0, 1.0, 1.0, 2.0]))
    row = order_row(4)
    raw = [row[0], row[1], row[1], row[3]]
    np.testing.assert_allclose(w, [float(r / sum(raw)) for r in raw], atol=1e-12)


def _event() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A: 12 primary hits (pT 1.75), B: 15 primary hits (pT 5), C: 5 secondary hits,
    4 noise hits."""
    truth = np.array([0] * 12 + [1] * 15 + [2] * 5 + [-1] * 4)
    pt = np.where(truth == 0, 1.75, 5.0)
    key = np.concatenate([np.arange(12), np.arange(15), np.arange(5), np.zeros(4)])
    return truth, pt, key.astype(float), truth == 2


def test_perfect_assignment_with_secondaries_as_singletons_scores_one() -> None:
    truth, pt, key, secondary = _event()
    pred = np.where(truth == 2, 100 + np.arange(len(truth)), truth)  # C: singletons
    ev = np.zeros(len(truth), int)
    out = trackml_score(truth, pred, ev, pt, key, secondary=secondary)
    assert out["per_event"][0] == pytest.approx(1.0, abs=1e-12)
    # without knowing C is a secondary, its singletons lose C's share: 1 - 1/(0.6+1+1)
    out = trackml_score(truth, pred, ev, pt, key)
    assert out["per_event"][0] == pytest.approx(1 - 1 / 2.6, abs=1e-12)


def test_corrupted_assignment_by_hand() -> None:
    # A's hits of ranks 8-11 go to B's track: A's track keeps 8/12 (good, pure);
    # B's track holds 15 B + 4 A hits (15/19 > 0.5, 15/15): good, scores B's weight.
    truth, pt, key, secondary = _event()
    pred = truth.copy()
    pred[8:12] = 1
    out = trackml_score(truth, pred, np.zeros(len(truth), int), pt, key,
                        secondary=secondary)
    a = sum(order_row(12)[:8]) * Fraction(3, 5)
    expected = (a + 1) / (Fraction(3, 5) + 1)
    assert out["per_event"][0] == pytest.approx(float(expected), abs=1e-12)
    # A split 6 + 6: neither half holds > 50 % of A, so only B scores
    pred[6:12] = 7
    pred[8:12] = 7
    out = trackml_score(truth, pred, np.zeros(len(truth), int), pt, key,
                        secondary=secondary)
    assert out["per_event"][0] == pytest.approx(1 / 1.6, abs=1e-12)


def test_given_weights_are_used_and_normalised_per_event() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 0, 1, 1, 2, 2])  # particle 1 split 2 + 2: not found
    weights = np.array([0.1, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 0.3]) * 2
    out = trackml_score(truth, pred, np.zeros(8, int), weights=weights)
    assert out["per_event"][0] == pytest.approx(0.25, abs=1e-12)
    with pytest.raises(ValueError, match="needs weights, or pt and order_key"):
        trackml_score(truth, pred, np.zeros(8, int))


def test_scorers_give_secondaries_no_weight() -> None:
    """Both scorers read particle_primary: a secondary left as singletons costs nothing."""
    particle = np.repeat([0, 1], [6, 5])  # particle 1 is secondary (a decay in flight)
    event = {"hit_particle": particle, "hit_z": np.arange(11.0),
             "particle_px": np.array([1.0, 1.0]), "particle_py": np.zeros(2),
             "particle_pz": np.zeros(2), "particle_primary": np.array([True, False]),
             "vertex_z": 0.0}
    pred = np.where(particle == 0, 0, np.arange(11) + 10)  # secondary's hits as singletons
    hits = flat_hits([event], [pred])
    np.testing.assert_array_equal(hits["secondary"], particle == 1)
    with_flag = trackml_score(hits["truth"], hits["pred"], hits["event_index"], hits["pt"],
                              hits["order"], secondary=hits["secondary"])["mean"]
    without = trackml_score(hits["truth"], hits["pred"], hits["event_index"], hits["pt"],
                            hits["order"])["mean"]
    assert with_flag == pytest.approx(1.0, abs=1e-12)
    assert without < 0.6
    unknown = {**event, "particle_primary": np.array([None, None], dtype=object)}
    assert not flat_hits([unknown], [pred])["secondary"].any()
