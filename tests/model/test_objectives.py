"""kNN at larger radius (vs brute force), kNNN and masked-hit objectives."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from npfm.model.knn import knn_larger_radius, later_in_sequence
from npfm.model.objectives import (
    BatchInfo,
    KNNNObjective,
    MaskedHitObjective,
    masked_mse,
    relative_targets,
)
from npfm.model.serialize import cylindrical, raster_order
from npfm.model.two_view import TwoViewObjective, variance_hinge


def _brute_force(pos: np.ndarray, r: np.ndarray, cu: list[int], k: int,
                 later: bool) -> np.ndarray:
    """(N, k) reference: per hit, stable sort of squared distances over allowed hits."""
    out = np.full((len(pos), k), -1, dtype=np.int64)
    for start, stop in itertools.pairwise(cu):
        for i in range(start, stop):
            cand = [j for j in range(start, stop) if r[j] > r[i] and (not later or j > i)]
            d2 = [float(((pos[i] - pos[j]) ** 2).sum()) for j in cand]
            best = [cand[o] for o in np.argsort(d2, kind="stable")[:k]]
            out[i, :len(best)] = best
    return out


def _random_batch(counts: list[int], seed: int, grid: bool = False):
    gen = torch.Generator().manual_seed(seed)
    n = sum(counts)
    pos = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    r = torch.rand(n, generator=gen, dtype=torch.float64)
    if grid:  # coarse lattice: many exactly equal distances and radii
        pos, r = (pos * 3).floor() / 3, (r * 4).floor() / 4
    return pos, r, torch.tensor([0, *itertools.accumulate(counts)])


@pytest.mark.parametrize(("grid", "later"), [(False, False), (True, False), (True, True)])
def test_knn_matches_brute_force(grid: bool, later: bool) -> None:
    # events of 1, 3 and 7 hits have fewer than k = 5 candidates: padding
    pos, r, cu = _random_batch([40, 1, 3, 7, 25], seed=1, grid=grid)
    allowed = later_in_sequence if later else None
    index, valid = knn_larger_radius(pos, r, cu, 5, allowed, block_size=8)
    ref = _brute_force(pos.numpy(), r.numpy(), cu.tolist(), 5, later)
    np.testing.assert_array_equal(index.numpy(), ref)
    assert torch.equal(valid, index >= 0)
    assert (~valid).any()
    assert valid.any()


def test_knn_k_larger_than_event() -> None:
    pos, r, cu = _random_batch([2, 3], seed=2)
    index, valid = knn_larger_radius(pos, r, cu, 10)
    assert index.shape == (5, 10)
    assert valid.sum(1).max() <= 2
    assert not valid[:, 3:].any()


def _raster_event(n: int = 300, seed: int = 0) -> BatchInfo:
    """One toy barrel event in FM4NPP raster order, normalised (eta, phi, r) positions."""
    gen = torch.Generator().manual_seed(seed)
    r = 30 + 45 * torch.rand(n, generator=gen)
    phi = (2 * torch.rand(n, generator=gen) - 1) * torch.pi
    z = (2 * torch.rand(n, generator=gen) - 1) * 100
    eta, phi, r = cylindrical(r * torch.cos(phi), r * torch.sin(phi), z)
    cu = torch.tensor([0, n])
    perm = raster_order(eta, phi, r, cu)
    pos = torch.stack([eta / 4, phi / torch.pi, r / 75], 1)[perm]
    return BatchInfo(pos=pos, r=r[perm], cu_seqlens=cu)


def test_leak_free_targets_come_later() -> None:
    info = _raster_event()
    query = torch.arange(len(info.r))[:, None]
    leaky, leaky_valid = KNNNObjective(8, k=30).targets(info)
    free, free_valid = KNNNObjective(8, k=30, leak_free=True).targets(info)
    assert (leaky[leaky_valid] <= query.expand_as(leaky)[leaky_valid]).any()
    assert (free[free_valid] > query.expand_as(free)[free_valid]).all()
    for index, valid in ((leaky, leaky_valid), (free, free_valid)):
        target_r = info.r[index.clamp_min(0)]
        assert (target_r[valid] > info.r[:, None].expand_as(target_r)[valid]).all()


def test_knnn_targets_relative_standardised_and_wrapped() -> None:
    """Targets are standardised differences to the query; d phi is taken across +-pi."""
    info = _raster_event(n=200)
    objective = KNNNObjective(16, k=8, leak_free=True)
    index, valid = objective.targets(info)
    target = relative_targets(info.pos, index, valid, periodic=1)
    torch.testing.assert_close(target[valid].std(0), torch.ones(3))
    raw = (info.pos[index.clamp_min(0)] - info.pos[:, None])[valid]
    assert (raw[:, 1].abs() > 1).any()  # neighbours across the wrap exist
    expected = raw.clone()
    expected[:, 1] = torch.where(raw[:, 1] > 1, raw[:, 1] - 2,
                                 torch.where(raw[:, 1] < -1, raw[:, 1] + 2, raw[:, 1]))
    torch.testing.assert_close(target[valid], expected / expected.std(0))
    pos = torch.tensor([[0.0, 0.99, 0.5], [0.0, -0.99, 0.6]])
    near = relative_targets(pos, torch.tensor([[1], [-1]]), torch.tensor([[True], [False]]),
                            periodic=1)  # one valid entry: unit scale
    assert near[0, 0].tolist() == pytest.approx([0.0, 0.02, 0.1], abs=1e-5)


def test_knnn_learns_from_informative_features_only() -> None:
    """With features that carry the neighbourhood, the loss falls far below the copy-the-
    query and per-rank-mean baselines; with random features it cannot beat the mean."""
    torch.manual_seed(0)
    info = _raster_event(n=200)
    k = 4
    index, valid = KNNNObjective(8, k=k, leak_free=True).targets(info)
    oracle = torch.where(valid[..., None], relative_targets(info.pos, index, valid, 1), 0)
    for hidden, informative in ((oracle.flatten(1), True), (torch.randn(200, 3 * k), False)):
        objective = KNNNObjective(3 * k, k=k, leak_free=True)
        optimiser = torch.optim.Adam(objective.parameters(), lr=1e-2)
        for _ in range(150):
            loss, metrics = objective(hidden, info)
            assert torch.isfinite(loss)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        # Standardised targets: the per-rank mean explains at most all of the variance.
        assert 0.5 < metrics["knnn_mean_loss"] <= 1.0 + 1e-5
        assert metrics["knnn_copy_loss"] >= metrics["knnn_mean_loss"]
        if informative:
            assert loss < 0.1 * metrics["knnn_mean_loss"]
        else:
            assert loss > 0.7 * metrics["knnn_mean_loss"]
    assert 0 < metrics["knnn_valid_fraction"] < 1


def test_padded_targets_do_not_contribute() -> None:
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(6, 4, 3, generator=gen, requires_grad=True)
    target = torch.randn(6, 4, 3, generator=gen)
    valid = torch.rand(6, 4, generator=gen) < 0.5
    loss = masked_mse(pred, target, valid)
    (grad,) = torch.autograd.grad(loss, pred)
    garbage = target.clone()
    garbage[~valid] = torch.nan
    garbage_loss = masked_mse(pred, garbage, valid)
    (garbage_grad,) = torch.autograd.grad(garbage_loss, pred)
    assert torch.equal(loss, garbage_loss)
    assert torch.equal(grad, garbage_grad)
    assert not grad[~valid].any()
    expected = ((pred - target) ** 2).mean(-1)[valid].mean()
    torch.testing.assert_close(loss, expected)


def test_masked_hit_objective_only_masked_positions() -> None:
    torch.manual_seed(0)
    objective = MaskedHitObjective(16, 6, mask_ratio=0.25)
    mask = objective.choose_mask(40, torch.Generator().manual_seed(5))
    assert mask.dtype == torch.bool
    assert mask.sum() == 10
    assert torch.equal(mask, objective.choose_mask(40, torch.Generator().manual_seed(5)))
    hidden = torch.randn(40, 16)
    features = torch.randn(40, 6)
    info = BatchInfo(pos=torch.zeros(40, 3), r=torch.zeros(40),
                     cu_seqlens=torch.tensor([0, 40]), features=features, mask=mask)
    loss, metrics = objective(hidden, info)
    changed = features.clone()
    changed[~mask] = 1e6
    loss_changed, _ = objective(hidden, BatchInfo(info.pos, info.r, info.cu_seqlens,
                                                  changed, mask))
    assert torch.equal(loss, loss_changed)
    assert metrics["mhm_mask_fraction"] == 0.25
    torch.testing.assert_close(metrics["mhm_mean_loss"],
                               features[mask].var(0, unbiased=False).mean())
    tokens = objective.apply_mask(hidden, mask)
    assert torch.equal(tokens[~mask], hidden[~mask])
    assert torch.equal(tokens[mask], objective.mask_embedding.expand(10, 16))


def test_object_knnn_neighbours_are_harder_and_wrap_in_phi() -> None:
    """Objects at phi = +-(pi - 0.05) are neighbours across the wrap; targets are harder
    objects, and the regressed target is (eta, phi, log_pt), not the distance space."""
    from npfm.model.sequence import TokenPart, object_info
    from npfm.model.tokenize import object_features

    phi = torch.tensor([math.pi - 0.05, -math.pi + 0.05, 0.0, 0.3])
    pt = torch.tensor([1.0, 2.0, 3.0, 0.5])
    fields = {"object_px": pt * torch.cos(phi), "object_py": pt * torch.sin(phi),
              "object_pz": torch.zeros(4), "object_mass": torch.zeros(4),
              "object_charge": torch.zeros(4)}
    feats = object_features(fields)
    part = TokenPart(torch.arange(4), torch.arange(4), torch.tensor([0, 4]), feats)
    info = object_info(part)
    index, valid = KNNNObjective(8, k=2).targets(info)
    assert index[0].tolist() == [1, 2]  # across the wrap first, then the hardest
    assert index[3].tolist() == [2, 0]  # d phi 0.3; pi - 0.35; (1: pi - 0.25, wrapped)
    assert not valid[2].any()  # the hardest object has no target
    assert info.target is not None
    assert torch.equal(info.target, feats[:, :3])


def test_two_view_objective_trains_without_collapse() -> None:
    """Two masked views of the same tokens: finite loss, gradients into the encoder, and
    the variance hinge that penalises collapsed projections only."""
    torch.manual_seed(0)
    assert variance_hinge(torch.randn(200, 8) * 3) == 0
    assert variance_hinge(torch.ones(200, 8) + 1e-3 * torch.randn(200, 8)) > 0.9
    encoder = torch.nn.Linear(8, 8)
    objective = TwoViewObjective(8, mask_ratio=0.3)
    tokens = torch.randn(50, 8)
    gen = torch.Generator().manual_seed(1)
    view = objective.view(tokens, gen)
    assert (view == objective.mask_embedding).all(1).sum() == 15  # round(0.3 * 50) rows
    loss, metrics = objective(encoder, tokens, torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.isfinite(loss)
    assert encoder.weight.grad is not None
    assert encoder.weight.grad.abs().sum() > 0
    assert -1 <= metrics["two_view_loss"] <= 1
    assert metrics["two_view_std"] > 0.3
