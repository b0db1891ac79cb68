"""Serialisation orders: permutations within events, raster boxes, curve codes, locality."""

from __future__ import annotations

import itertools

import pytest
import torch

from npfm.model.serialize import (
    ORDERS,
    cylindrical,
    event_index,
    hilbert_code,
    morton_code,
    raster_boxes,
    raster_order,
)


def _uniform_batch(counts: list[int], seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Hits uniform in a barrel (r 30-75 cm, |z| < 100 cm) for events of ``counts`` hits."""
    gen = torch.Generator().manual_seed(seed)
    n = sum(counts)
    r = 30 + 45 * torch.rand(n, generator=gen)
    phi = (2 * torch.rand(n, generator=gen) - 1) * torch.pi
    z = (2 * torch.rand(n, generator=gen) - 1) * 100
    cu = torch.tensor([0, *itertools.accumulate(counts)])
    return r * torch.cos(phi), r * torch.sin(phi), z, cu


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_order_is_permutation_within_events(name: str) -> None:
    x, y, z, cu = _uniform_batch([500, 0, 1, 1000, 37])
    perm = ORDERS[name](x, y, z, cu)
    assert perm.dtype == torch.int64
    assert torch.equal(torch.sort(perm).values, torch.arange(len(x)))
    event = event_index(cu)
    assert torch.equal(event[perm], event)


def test_raster_boxes_equal_count_and_nesting() -> None:
    counts = [384 * 5 + 17, 384 * 3]
    x, y, z, cu = _uniform_batch(counts)
    eta, phi, r = cylindrical(x, y, z)
    box = raster_boxes(eta, phi, r, cu)
    event = event_index(cu)
    for e, n in enumerate(counts):
        sizes = torch.bincount(box[event == e], minlength=384)
        assert len(sizes) == 384
        assert sizes.min() >= n // 384
        assert sizes.max() <= -(-n // 384)
    perm = raster_order(eta, phi, r, cu)
    first = perm[: counts[0]]
    ordered = box[first]
    assert (ordered.diff() >= 0).all()  # boxes in index order: (r_bin, phi_bin, eta_bin)
    r_bin = ordered // 64
    assert (r_bin.diff() >= 0).all()
    # r outermost: every hit of shell k lies below every hit of shell k + 1.
    r_first = r[first]
    for k in range(5):
        assert r_first[r_bin == k].max() <= r_first[r_bin == k + 1].min()
    # phi next: inside one shell, phi slices are ordered; inside a box hits go outwards.
    shell = first[r_bin == 2]
    phi_bin = box[shell] // 8 % 8
    for k in range(7):
        assert phi[shell[phi_bin == k]].max() <= phi[shell[phi_bin == k + 1]].min()
    same_box = ordered[1:] == ordered[:-1]
    assert (r_first.diff()[same_box] >= 0).all()


def test_radial_order_sorts_r_within_events() -> None:
    x, y, z, cu = _uniform_batch([300, 200, 5])
    perm = ORDERS["radial"](x, y, z, cu)
    r = torch.hypot(x, y)[perm]
    event = event_index(cu)
    same = event[1:] == event[:-1]
    assert (r.diff()[same] >= 0).all()


def test_morton_code_hand_checked() -> None:
    coords = torch.tensor([[0, 1, 0, 0, 3, 1], [0, 0, 1, 0, 0, 1], [0, 0, 0, 1, 0, 1]])
    assert morton_code(coords, 2).tolist() == [0, 4, 2, 1, 0b100100, 7]


def test_hilbert_code_hand_checked() -> None:
    corners = torch.tensor(list(itertools.product(range(2), repeat=3))).T
    # Corners (x, y, z) in product order: the Gray-code tour 000 001 011 010 110 111 101 100.
    assert hilbert_code(corners, 1).tolist() == [0, 1, 3, 2, 7, 6, 4, 5]


@pytest.mark.parametrize("bits", [2, 3])
def test_hilbert_code_is_a_unit_step_bijection(bits: int) -> None:
    points = torch.tensor(list(itertools.product(range(2**bits), repeat=3))).T
    code = hilbert_code(points, bits)
    assert torch.equal(torch.sort(code).values, torch.arange(8**bits))
    path = points[:, torch.argsort(code)]
    assert (path.diff(dim=1).abs().sum(0) == 1).all()
    assert torch.equal(torch.sort(morton_code(points, bits)).values, torch.arange(8**bits))


@pytest.mark.parametrize("name", ["hilbert", "zorder"])
def test_curves_are_local(name: str) -> None:
    x, y, z, cu = _uniform_batch([4000, 3000])
    points = torch.stack([x, y, z], 1)

    def mean_step(perm: torch.Tensor) -> float:
        event = event_index(cu)[perm]
        steps = (points[perm][1:] - points[perm][:-1]).norm(dim=1)
        return float(steps[event[1:] == event[:-1]].mean())

    curve = mean_step(ORDERS[name](x, y, z, cu))
    shuffled = mean_step(torch.randperm(len(x), generator=torch.Generator().manual_seed(1)))
    assert curve < shuffled / 5
