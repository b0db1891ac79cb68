"""Serialisation orders for packed events (hits of B events end to end, ``cu_seqlens``).

Every order returns an int64 permutation ``perm`` of the N packed indices such that
``values[perm]`` lists each event's hits inside that event's own segment, in the new
order; ties keep their input order (stable sort). All work is vectorised over the
whole batch: sorts use the event index as the most significant key. Positions are in
cm and must be finite.

- ``raster``: FM4NPP's hierarchical raster scan (arXiv 2508.14087): 6 r x 8 phi x 8 eta
  equal-count boxes, radius outermost, then phi, then eta; hits within a box by radius.
- ``hilbert`` / ``zorder``: 3-D Hilbert / Morton curve through the per-event min-max
  normalised (x, y, z), quantised to ``bits`` bits per axis.
- ``radial``: by r, then phi.

``ORDERS`` maps these names to callables ``(x, y, z, cu_seqlens) -> perm``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Order = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def event_index(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """(N,) int64 index of the event owning each packed element."""
    counts = cu_seqlens[1:] - cu_seqlens[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=cu_seqlens.device), counts)


def cylindrical(x: torch.Tensor, y: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eta, phi, r) of points in cm; phi in [-pi, pi]; eta = asinh(z / r) (finite at r=0)."""
    r = torch.hypot(x, y)
    eta = torch.asinh(z / r.clamp_min(torch.finfo(r.dtype).tiny))
    return eta, torch.atan2(y, x), r


def lexsort(*keys: torch.Tensor) -> torch.Tensor:
    """Stable permutation sorting by ``keys[0]``, then ``keys[1]``, ... (all (N,))."""
    perm = torch.arange(len(keys[0]), device=keys[0].device)
    for key in reversed(keys):
        perm = perm[torch.sort(key[perm], stable=True).indices]
    return perm


def _bins(group: torch.Tensor, value: torch.Tensor, n_groups: int, n_bins: int) -> torch.Tensor:
    """Equal-count bin (0..n_bins-1) of each element by ``value`` within its ``group``."""
    perm = lexsort(group, value)
    count = torch.bincount(group, minlength=n_groups)
    start = torch.cumsum(count, 0) - count
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(len(perm), device=perm.device) - start[group[perm]]
    return rank * n_bins // count[group].clamp_min(1)


def raster_boxes(eta: torch.Tensor, phi: torch.Tensor, r: torch.Tensor, cu_seqlens: torch.Tensor,
                 n_eta: int = 8, n_phi: int = 8, n_r: int = 6) -> torch.Tensor:
    """(N,) box index ``(r_bin * n_phi + phi_bin) * n_eta + eta_bin`` of each hit.

    Boxes are nested per-event quantiles: r splits the event into ``n_r`` equal-count
    shells, phi splits each shell into ``n_phi`` and eta each of those into ``n_eta``, so
    every box of an event with n hits holds floor or ceil of n / (n_r * n_phi * n_eta).
    """
    event = event_index(cu_seqlens)
    n_events = len(cu_seqlens) - 1
    r_bin = _bins(event, r, n_events, n_r)
    shell = event * n_r + r_bin
    phi_bin = _bins(shell, phi, n_events * n_r, n_phi)
    eta_bin = _bins(shell * n_phi + phi_bin, eta, n_events * n_r * n_phi, n_eta)
    return (r_bin * n_phi + phi_bin) * n_eta + eta_bin


def raster_order(eta: torch.Tensor, phi: torch.Tensor, r: torch.Tensor, cu_seqlens: torch.Tensor,
                 n_eta: int = 8, n_phi: int = 8, n_r: int = 6) -> torch.Tensor:
    """FM4NPP raster scan: boxes of ``raster_boxes`` in index order, by r within a box."""
    box = raster_boxes(eta, phi, r, cu_seqlens, n_eta, n_phi, n_r)
    return lexsort(event_index(cu_seqlens), box, r)


def _quantise(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, cu_seqlens: torch.Tensor,
              bits: int) -> torch.Tensor:
    """(3, N) int64 per-event min-max normalised coordinates in [0, 2**bits - 1]."""
    event = event_index(cu_seqlens)
    n_events = len(cu_seqlens) - 1
    points = torch.stack([x, y, z]).double()
    index = event.expand_as(points)
    lo = torch.full((3, n_events), torch.inf, dtype=points.dtype, device=points.device)
    hi = torch.full_like(lo, -torch.inf)
    lo = lo.scatter_reduce(1, index, points, "amin")
    hi = hi.scatter_reduce(1, index, points, "amax")
    lo, span = lo[:, event], (hi - lo)[:, event]
    scaled = (points - lo) / torch.where(span > 0, span, 1.0)
    top = (1 << bits) - 1
    return (scaled * top).round().long().clamp(0, top)


def _interleave(coords: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,) code with bit b of coordinate i at position 3 b + (2 - i) (x most significant)."""
    code = torch.zeros_like(coords[0])
    for b in range(bits - 1, -1, -1):
        for axis in range(3):
            code = (code << 1) | ((coords[axis] >> b) & 1)
    return code


def morton_code(coords: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,) Morton (z-order) code of (3, N) integer coordinates in [0, 2**bits)."""
    return _interleave(coords, bits)


def hilbert_code(coords: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,) 3-D Hilbert index of (3, N) integer coordinates in [0, 2**bits).

    Skilling's transpose algorithm (AIP Conf. Proc. 707, 381 (2004)), vectorised over
    points: consecutive indices are neighbouring lattice points (one axis, one step).
    """
    x = [c.clone() for c in coords]
    q = 1 << (bits - 1)
    while q > 1:
        p = q - 1
        for i in range(3):
            on = (x[i] & q) != 0
            t = (x[0] ^ x[i]) & p
            x[0] = torch.where(on, x[0] ^ p, x[0] ^ t)
            if i:
                x[i] = torch.where(on, x[i], x[i] ^ t)
        q >>= 1
    for i in range(1, 3):
        x[i] = x[i] ^ x[i - 1]
    t = torch.zeros_like(x[0])
    q = 1 << (bits - 1)
    while q > 1:
        t = torch.where((x[2] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    return _interleave(torch.stack([xi ^ t for xi in x]), bits)


def hilbert_order(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, cu_seqlens: torch.Tensor,
                  bits: int = 10) -> torch.Tensor:
    """Order along a 3-D Hilbert curve through each event's bounding box."""
    code = hilbert_code(_quantise(x, y, z, cu_seqlens, bits), bits)
    return lexsort(event_index(cu_seqlens), code)


def zorder_order(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, cu_seqlens: torch.Tensor,
                 bits: int = 10) -> torch.Tensor:
    """Order along a 3-D Morton (z-order) curve through each event's bounding box."""
    code = morton_code(_quantise(x, y, z, cu_seqlens, bits), bits)
    return lexsort(event_index(cu_seqlens), code)


def radial_order(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                 cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Order by transverse radius r, then by phi (z is unused)."""
    _, phi, r = cylindrical(x, y, z)
    return lexsort(event_index(cu_seqlens), r, phi)


def raster_order_xyz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                     cu_seqlens: torch.Tensor) -> torch.Tensor:
    """``raster_order`` with FM4NPP's 8 eta x 8 phi x 6 r boxes, from Cartesian positions."""
    return raster_order(*cylindrical(x, y, z), cu_seqlens)


ORDERS: dict[str, Order] = {"raster": raster_order_xyz, "hilbert": hilbert_order,
                            "zorder": zorder_order, "radial": radial_order}
