"""SU(3) gauge fields on a periodic 4-d lattice, as torch tensors.

A gauge field ``U`` has shape ``(4, T, Z, Y, X, 3, 3)`` (complex): ``U[mu]`` is the link
from site x to x + mu-hat, with mu = 0, 1, 2, 3 for the x, y, z, t directions, as in the
ILDG ordering. Site tensors have shape ``(T, Z, Y, X, ...)``, so direction mu runs along
site axis ``3 - mu``. Lattice units throughout (lattice spacing a = 1).
"""

from __future__ import annotations

import torch

NDIM = 4
NCOLOR = 3


def site_axis(mu: int) -> int:
    """Axis of a site tensor ``(T, Z, Y, X, ...)`` along which direction ``mu`` runs."""
    return NDIM - 1 - mu


def shift(field: torch.Tensor, mu: int, step: int) -> torch.Tensor:
    """``out[x] = field[x + step * mu-hat]`` with periodic boundaries (site axes first)."""
    return torch.roll(field, shifts=-step, dims=site_axis(mu))


def dagger(m: torch.Tensor) -> torch.Tensor:
    """Hermitian conjugate over the last two axes."""
    return m.conj().transpose(-1, -2)


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched 3 x 3 matrix product over the last two axes of same-shape tensors.

    The batch axes are flattened first (much faster than a many-axis batched matmul).
    """
    return torch.bmm(a.reshape(-1, 3, 3), b.reshape(-1, 3, 3)).reshape(a.shape)


def lattice_shape(u: torch.Tensor) -> tuple[int, int, int, int]:
    """``(lx, ly, lz, lt)`` of a gauge field."""
    t, z, y, x = u.shape[1:5]
    return x, y, z, t


def parity(shape_txyz: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """Site parity (x + y + z + t) mod 2 of a ``(T, Z, Y, X)`` lattice, as a long tensor."""
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in shape_txyz],
                           indexing="ij")
    return sum(grids, torch.zeros((), dtype=torch.long, device=device)) % 2


def unit_field(lattice: tuple[int, int, int, int], dtype: torch.dtype = torch.complex128,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """The cold (unit) gauge field on an ``(lx, ly, lz, lt)`` lattice."""
    lx, ly, lz, lt = lattice
    eye = torch.eye(NCOLOR, dtype=dtype, device=device)
    return eye.expand(NDIM, lt, lz, ly, lx, NCOLOR, NCOLOR).clone()


def project_su3(m: torch.Tensor) -> torch.Tensor:
    """Nearest-by-Gram-Schmidt SU(3) matrices: orthonormal rows 0, 1; row 2 = (r0 x r1)*."""
    r0 = m[..., 0, :]
    r0 = r0 / torch.linalg.vector_norm(r0, dim=-1, keepdim=True)
    r1 = m[..., 1, :]
    r1 = r1 - (r0.conj() * r1).sum(-1, keepdim=True) * r0
    r1 = r1 / torch.linalg.vector_norm(r1, dim=-1, keepdim=True)
    r2 = torch.linalg.cross(r0, r1).conj()
    return torch.stack([r0, r1, r2], dim=-2)


def random_su3(shape: tuple[int, ...], generator: torch.Generator,
               dtype: torch.dtype = torch.complex128, device: torch.device | str = "cpu"
               ) -> torch.Tensor:
    """Haar-random SU(3) matrices: Gram-Schmidt of complex Gaussian matrices."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    g = torch.randn((*shape, NCOLOR, NCOLOR, 2), generator=generator, dtype=real,
                    device=device)
    return project_su3(torch.view_as_complex(g))


def random_field(lattice: tuple[int, int, int, int], generator: torch.Generator,
                 dtype: torch.dtype = torch.complex128, device: torch.device | str = "cpu"
                 ) -> torch.Tensor:
    """A hot start: every link Haar-random."""
    lx, ly, lz, lt = lattice
    return random_su3((NDIM, lt, lz, ly, lx), generator, dtype, device)


def gauge_transform(u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``U'_mu(x) = g(x) U_mu(x) g(x + mu)^dagger`` for site matrices ``g`` (T, Z, Y, X, 3, 3)."""
    return torch.stack([mul(mul(g, u[mu]), dagger(shift(g, mu, 1))) for mu in range(NDIM)])


def unitarity_violation(u: torch.Tensor) -> tuple[float, float]:
    """Largest ``|U U^dagger - 1|`` entry and largest ``|det U - 1|`` over all links."""
    eye = torch.eye(NCOLOR, dtype=u.dtype, device=u.device)
    off = (mul(u, dagger(u)) - eye).abs().max().item()
    det = (torch.linalg.det(u) - 1).abs().max().item()
    return float(off), float(det)
