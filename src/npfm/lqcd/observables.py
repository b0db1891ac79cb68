"""Gauge observables: plaquette, rectangular Wilson loops, Polyakov loop.

All are gauge invariant, normalised by 1/3 (tr 1 = 3), and averaged over the lattice;
lattice units. The time direction is mu = 3 (ILDG's t).
"""

from __future__ import annotations

import torch

from npfm.lqcd.su3 import NCOLOR, NDIM, dagger, mul, shift

TIME = 3


def plaquette_field(u: torch.Tensor, mu: int, nu: int) -> torch.Tensor:
    """Plaquette matrices U_mu(x) U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag at every site."""
    return mul(mul(u[mu], shift(u[nu], mu, 1)), dagger(mul(u[nu], shift(u[mu], nu, 1))))


def plaquette(u: torch.Tensor) -> float:
    """Average plaquette <Re tr U_P> / 3 over all sites and the six planes."""
    total = sum(
        torch.diagonal(plaquette_field(u, mu, nu), dim1=-2, dim2=-1).sum(-1).real.mean()
        for mu in range(NDIM) for nu in range(mu + 1, NDIM))
    return float(total) / (6 * NCOLOR)


def spatial_temporal_plaquettes(u: torch.Tensor) -> tuple[float, float]:
    """Average spatial (ij) and temporal (i4) plaquettes, each / 3."""
    def mean(mu: int, nu: int) -> float:
        return float(torch.diagonal(plaquette_field(u, mu, nu), dim1=-2, dim2=-1)
                     .sum(-1).real.mean()) / NCOLOR
    spatial = sum(mean(i, j) for i in range(3) for j in range(i + 1, 3)) / 3
    temporal = sum(mean(i, TIME) for i in range(3)) / 3
    return spatial, temporal


def line(u: torch.Tensor, mu: int, length: int) -> torch.Tensor:
    """Product U_mu(x) U_mu(x+mu) ... of ``length`` links starting at every site."""
    out = u[mu]
    for step in range(1, length):
        out = mul(out, shift(u[mu], mu, step))
    return out


def wilson_loop(u: torch.Tensor, r: int, t: int) -> float:
    """<Re tr W(r, t)> / 3 of r x t loops, r along the spatial axes, t along time."""
    values = []
    time_line = line(u, TIME, t)
    for i in range(3):
        space_line = line(u, i, r)
        loop = mul(mul(space_line, shift(time_line, i, r)),
                   dagger(mul(time_line, shift(space_line, TIME, t))))
        values.append(torch.diagonal(loop, dim1=-2, dim2=-1).sum(-1).real.mean())
    return float(torch.stack(values).mean()) / NCOLOR


def wilson_loops(u: torch.Tensor, r_max: int, t_max: int) -> list[list[float]]:
    """Table ``W[r-1][t-1]`` of <W(r, t)> for 1 <= r <= r_max, 1 <= t <= t_max."""
    return [[wilson_loop(u, r, t) for t in range(1, t_max + 1)] for r in range(1, r_max + 1)]


def polyakov_loop(u: torch.Tensor) -> complex:
    """Spatial average of tr prod_t U_4(x, t) / 3 (the order parameter of deconfinement)."""
    lt = u.shape[1]
    prod = line(u, TIME, lt)[0]  # loops starting on time slice 0
    value = torch.diagonal(prod, dim1=-2, dim2=-1).sum(-1).mean() / NCOLOR
    return complex(value.item())
