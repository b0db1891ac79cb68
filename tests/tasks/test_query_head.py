"""Query-based tracking head: shapes, permutation equivariance, matching, learning, decode."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from npfm.tasks.metrics import ari_per_event
from npfm.tasks.query_head import (
    QueryOutput,
    QueryTrackHead,
    match_cost,
    matched_loss,
    query_decode,
    query_loss,
)


def _cu(counts: list[int]) -> torch.Tensor:
    return torch.tensor([0, *np.cumsum(counts)], dtype=torch.long)


def _events(n_events: int, width: int, gen: torch.Generator
            ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Synthetic events: 3-6 tracks of 5-10 hits at the track's random (Gaussian) direction plus
    small noise, and 0-3 noise hits (label -1) at random directions. Returns two layers
    (the features and a noisier copy), objects (N,) and cu_seqlens."""
    feats, objects, counts = [], [], []
    for _ in range(n_events):
        n_tracks = int(torch.randint(3, 7, (1,), generator=gen))
        sizes = torch.randint(5, 11, (n_tracks,), generator=gen)
        n_noise = int(torch.randint(0, 4, (1,), generator=gen))
        dirs = torch.randn(n_tracks + n_noise, width, generator=gen)
        labels = torch.cat([torch.repeat_interleave(torch.arange(n_tracks), sizes),
                            torch.full((n_noise,), -1)])
        source = torch.cat([torch.repeat_interleave(torch.arange(n_tracks), sizes),
                            n_tracks + torch.arange(n_noise)])
        x = dirs[source] + 0.1 * torch.randn(len(source), width, generator=gen)
        order = torch.randperm(len(source), generator=gen)
        feats.append(x[order])
        objects.append(labels[order])
        counts.append(len(source))
    x = torch.cat(feats)
    return [x, x + 0.3 * torch.randn(x.shape, generator=gen)], torch.cat(objects), _cu(counts)


def test_shapes_validity_and_permutation_equivariance() -> None:
    torch.manual_seed(0)
    counts = [7, 12, 4]
    cu = _cu(counts)
    layers = [torch.randn(sum(counts), 16) for _ in range(3)]
    head = QueryTrackHead(3, 16, n_queries=6, hidden=32, heads=4, n_refine=2).eval()
    out = head(layers, cu)
    assert len(out.class_logits) == len(out.mask_logits) == 3
    assert all(c.shape == (3, 6) for c in out.class_logits)
    assert all(m.shape == (3, 6, 12) for m in out.mask_logits)
    assert out.hit_mask.dtype == torch.bool
    assert out.hit_mask.sum(1).tolist() == counts
    # Permuting hits within each event permutes the mask logits and leaves classes alone.
    perm = torch.cat([lo + torch.randperm(n) for lo, n in zip(cu[:-1].tolist(), counts,
                                                              strict=True)])
    out_p = head([x[perm] for x in layers], cu)
    for s in range(3):
        torch.testing.assert_close(out_p.class_logits[s], out.class_logits[s])
        for b, n in enumerate(counts):
            local = perm[cu[b]:cu[b + 1]] - cu[b]
            torch.testing.assert_close(out_p.mask_logits[s][b, :, :n],
                                       out.mask_logits[s][b, :, local])
    # Padding never leaks: the short event alone (no padding) gives the same outputs.
    alone = head([x[19:23] for x in layers], _cu([4]))
    for s in range(3):
        torch.testing.assert_close(alone.mask_logits[s][0], out.mask_logits[s][2, :, :4])
        torch.testing.assert_close(alone.class_logits[s][0], out.class_logits[s][2])
    labels = query_decode(out, cu)
    assert labels.shape == (23,)
    assert labels.dtype == torch.long
    objects = torch.randint(-1, 3, (23,))
    loss = query_loss(out, objects, cu)
    loss.backward()
    assert torch.isfinite(loss)
    assert head.queries.grad is not None


def test_match_cost_is_class_dice_and_focal() -> None:
    torch.manual_seed(5)
    cls, mask = torch.randn(4), 2 * torch.randn(4, 11)
    targets = (torch.rand(3, 11) < 0.4).float()
    expected = torch.zeros(4, 3)
    for q, k in itertools.product(range(4), range(3)):
        p, t = torch.sigmoid(mask[q]), targets[k]
        dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        focal = -(0.25 * t * (1 - p) ** 2 * p.log() + 0.75 * (1 - t) * p ** 2 * (1 - p).log())
        expected[q, k] = -0.5 * torch.sigmoid(cls[q]) + dice + 30 * focal.mean()
    torch.testing.assert_close(match_cost(cls, mask, targets), expected)
    weighted = match_cost(cls, mask, targets, class_weight=2.0, dice_weight=0.0,
                          focal_weight=0.0)
    torch.testing.assert_close(weighted, -2 * torch.sigmoid(cls).unsqueeze(1).expand(4, 3))


def test_hungarian_matching_is_exact() -> None:
    torch.manual_seed(1)
    n_queries, n_tracks, n_hits = 5, 3, 20
    objects = torch.randint(-1, n_tracks, (n_hits,))
    objects[:n_tracks] = torch.arange(n_tracks)  # every track has a hit
    targets = (objects.unsqueeze(0) == torch.arange(n_tracks).unsqueeze(1)).float()
    pi = {4: 2, 0: 0, 2: 1}  # query -> track
    mask = torch.full((n_queries, n_hits), -8.0)
    cls = torch.full((n_queries,), -8.0)
    for q, k in pi.items():
        mask[q] = torch.where(targets[k] > 0, 8.0, -8.0)
        cls[q] = 8.0
    mask = mask + 0.5 * torch.randn(mask.shape)
    cost = match_cost(cls, mask, targets)
    rows, cols = linear_sum_assignment(cost.numpy())
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == pi
    # A slightly sharper duplicate of query 4 with a low object probability loses on class.
    dup_cls, dup_mask = cls.clone(), mask.clone()
    dup_cls[1], dup_mask[1] = -1.0, 1.1 * mask[4]
    rows, cols = linear_sum_assignment(match_cost(dup_cls, dup_mask, targets).numpy())
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == pi
    best = matched_loss(cls, mask, targets, torch.tensor(list(pi)), torch.tensor(list(
        pi.values())))
    others = []
    for qs in itertools.permutations(range(n_queries), n_tracks):
        if dict(zip(qs, range(n_tracks), strict=True)) == pi:
            continue
        others.append(float(matched_loss(cls, mask, targets, torch.tensor(qs),
                                         torch.arange(n_tracks))))
    assert len(others) == 59
    assert min(others) > float(best) + 0.1
    out = QueryOutput([cls[None], cls[None]], [mask[None], mask[None]],
                      torch.ones(1, n_hits, dtype=torch.bool))
    cu = _cu([n_hits])
    assert float(query_loss(out, objects, cu)) == pytest.approx(float(best), rel=1e-5)
    assert float(best) < 0.01
    # Labels follow query order (queries 0, 2, 4 hold tracks 0, 1, 2); noise stays -1.
    assert query_decode(out, cu).tolist() == objects.tolist()


def test_loss_matches_per_event_reference_and_ignores_padding() -> None:
    torch.manual_seed(4)
    counts = [9, 3, 6]
    cu = _cu(counts)
    objects = torch.tensor([0, 3, 3, 7, -1, 0, 7, 7, 3,  # gaps in the ids, one noise hit
                            -1, -1, -1,  # no track at all: only the no-object term
                            2, 2, 1, 1, 1, -1])
    cls = [torch.randn(3, 5) for _ in range(2)]
    mask = [torch.randn(3, 5, 9) * 3 for _ in range(2)]
    valid = torch.arange(9).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)
    loss = query_loss(QueryOutput(cls, mask, valid), objects, cu)
    reference = []
    for c, m in zip(cls, mask, strict=True):
        for b, n in enumerate(counts):
            obj = objects[cu[b]:cu[b + 1]]
            ids = obj[obj >= 0].unique()
            t = (obj.unsqueeze(0) == ids.unsqueeze(1)).float()
            rows, cols = linear_sum_assignment(match_cost(c[b], m[b, :, :n], t).numpy())
            reference.append(matched_loss(c[b], m[b, :, :n], t, torch.as_tensor(rows),
                                          torch.as_tensor(cols)))
    torch.testing.assert_close(loss, torch.stack(reference).mean())
    garbage = [x.masked_fill(~valid.unsqueeze(1), 50.0) for x in mask]
    torch.testing.assert_close(query_loss(QueryOutput(cls, garbage, valid), objects, cu), loss)


def _ari(head: QueryTrackHead, data: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]
         ) -> float:
    layers, objects, cu = data
    with torch.no_grad():
        pred = query_decode(head(layers, cu), cu)
    event = torch.repeat_interleave(torch.arange(len(cu) - 1), cu[1:] - cu[:-1])
    return ari_per_event(objects.numpy(), pred.numpy(), event.numpy())["mean"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_learns_to_find_synthetic_tracks() -> None:
    # Training draws fresh synthetic events at every step (16 per step, 16k in all): on a
    # fixed set of ~12 events the head memorises their directions (train ARI 1.0, held-out
    # ~0.5) instead of learning to cluster.
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    width, steps = 16, 1000
    held_out = _events(32, width, gen)
    head = QueryTrackHead(2, width, n_queries=10, hidden=64, heads=2, n_refine=2)
    untrained = _ari(head, held_out)
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    for _ in range(steps):
        layers, objects, cu = _events(16, width, gen)
        loss = query_loss(head(layers, cu), objects, cu)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        sched.step()
    trained = _ari(head, held_out)
    print(f"held-out per-event ARI: untrained {untrained:.3f}, trained {trained:.3f}")
    assert trained >= 0.9
    assert untrained <= trained - 0.3


def test_decode_leaves_hits_unassigned_below_min_class() -> None:
    torch.manual_seed(3)
    mask = torch.randn(2, 4, 6) * 5
    cls = torch.full((2, 4), -1.0)  # sigmoid 0.27 < 0.5
    valid = torch.ones(2, 6, dtype=torch.bool)
    cu = _cu([6, 5])
    out = QueryOutput([cls], [mask], valid)
    assert (query_decode(out, cu) == -1).all()
    assert (query_decode(out, cu, min_class=0.2) >= 0).any()
