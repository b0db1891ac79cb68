"""The Wilson(-clover) Dirac operator on a gauge background (lattice units, r = 1).

    D psi(x) = (4 + m) psi(x) + c_sw (i/2) sum_{mu<nu} sigma_mu_nu F_mu_nu(x) psi(x)
               - 1/2 sum_mu [(1 - gamma_mu) U_mu(x) psi(x+mu)
                             + (1 + gamma_mu) U_mu(x-mu)^dag psi(x-mu)]

with sigma_mu_nu = (i/2)[gamma_mu, gamma_nu] and the clover-leaf field strength
F_mu_nu = (Q_mu_nu - Q_mu_nu^dag) / 8 (Sheikholeslami and Wohlert, Nucl. Phys. B 259
(1985) 572; normalisation of Lüscher et al., Nucl. Phys. B 478 (1996) 365). Euclidean
hermitian gamma matrices in the DeGrand-Rossi (chiral) basis, gamma_5 = g1 g2 g3 g4 =
diag(1, 1, -1, -1). Fermion fields have shape (T, Z, Y, X, 4, 3) (spin, colour), or
(T, Z, Y, X, B, 4, 3) for B right-hand sides at once; time is antiperiodic for
fermions. D is gamma_5-hermitian: gamma_5 D gamma_5 = D^dag.
"""

from __future__ import annotations

import torch

from npfm.lqcd.observables import plaquette_field
from npfm.lqcd.su3 import NDIM, dagger, parity, shift

FLOPS_PER_SITE = 1320  # Wilson hopping term per site, the customary count (e.g. QUDA, Chroma)


def gamma_matrices(dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """gamma_1 .. gamma_4 (x, y, z, t) and gamma_5, stacked as (5, 4, 4)."""
    i = 1j
    g1 = [[0, 0, 0, i], [0, 0, i, 0], [0, -i, 0, 0], [-i, 0, 0, 0]]
    g2 = [[0, 0, 0, -1], [0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0]]
    g3 = [[0, 0, i, 0], [0, 0, 0, -i], [-i, 0, 0, 0], [0, i, 0, 0]]
    g4 = [[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
    g = torch.tensor([g1, g2, g3, g4], dtype=torch.complex128)
    g5 = g[0] @ g[1] @ g[2] @ g[3]
    return torch.cat([g, g5[None]]).to(dtype)


def fermion_links(u: torch.Tensor, antiperiodic: bool = True) -> torch.Tensor:
    """Links with the time links of the last slice negated (antiperiodic fermions in t)."""
    v = u.clone()
    if antiperiodic:
        v[3, -1] = -v[3, -1]
    return v


def spin(matrix: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """A 4 x 4 spin matrix applied to psi (..., 4, 3)."""
    return (matrix @ psi.reshape(-1, 4, 3)).reshape(psi.shape)


def colour(links_t: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Site colour matrices applied to psi (T, Z, Y, X, [B,] 4, 3), given as their
    transposes (T, Z, Y, X, 3, 3); B is an optional axis of right-hand sides.

    The site axes are flattened first: batched matmul over one axis is much faster.
    """
    n = links_t[..., 0, 0].numel()
    flat = psi.reshape(n, -1, 3) @ links_t.reshape(n, 3, 3)
    return flat.reshape(psi.shape)


def clover_field(u: torch.Tensor, csw: float) -> torch.Tensor:
    """The clover term c_sw (i/2) sum_{mu<nu} sigma_mu_nu F_mu_nu as (T, Z, Y, X, 12, 12)."""
    g = gamma_matrices(u.dtype)
    term = torch.zeros((*u.shape[1:5], 12, 12), dtype=u.dtype, device=u.device)
    for mu in range(NDIM):
        for nu in range(mu + 1, NDIM):
            f = _field_strength(u, mu, nu)
            sigma = 0.5j * (g[mu] @ g[nu] - g[nu] @ g[mu])
            # (spin s, colour a) x (spin t, colour b): sigma[s, t] F[a, b]
            block = torch.einsum("st,...ab->...satb", sigma.to(u.device), f)
            term = term + block.reshape(*u.shape[1:5], 12, 12)
    return csw * 0.5j * term


def _field_strength(u: torch.Tensor, mu: int, nu: int) -> torch.Tensor:
    """Clover-leaf F_mu_nu(x) = (Q - Q^dag) / 8 from the four plaquettes touching x."""
    p = plaquette_field(u, mu, nu)  # leaf in the (+mu, +nu) quadrant, based at x
    q = p
    # the other three leaves are plaquettes based at x-mu, x-nu, x-mu-nu, rotated to x
    back_mu = shift(p, mu, -1)
    back_nu = shift(p, nu, -1)
    back_both = shift(back_mu, nu, -1)
    u_mu_b, u_nu_b = shift(u[mu], mu, -1), shift(u[nu], nu, -1)
    q = q + dagger(u_mu_b) @ back_mu @ u_mu_b
    q = q + dagger(u_nu_b) @ back_nu @ u_nu_b
    corner = shift(u_mu_b, nu, -1) @ u_nu_b  # U_mu(x-mu-nu) U_nu(x-nu)
    q = q + dagger(corner) @ back_both @ corner
    return (q - dagger(q)) / 8


class WilsonDirac:
    """The Wilson(-clover) operator for one gauge field, bare mass m0 and c_sw."""

    def __init__(self, u: torch.Tensor, mass: float, csw: float = 0.0,
                 antiperiodic: bool = True) -> None:
        self.links = fermion_links(u, antiperiodic)
        # transposed link matrices, forward U_mu(x) and backward U_mu(x-mu)^dag
        self.fwd_t = self.links.transpose(-1, -2).contiguous()
        self.bwd_t = torch.stack([shift(self.links[mu], mu, -1).conj() for mu in range(NDIM)])
        self.mass, self.csw = mass, csw
        g = gamma_matrices(u.dtype).to(u.device)
        self.gamma5 = g[4]
        # gamma_mu[s, perm[mu, s]] = phase[mu, s], all other entries zero
        self.perm = g[:4].abs().argmax(dim=-1)
        self.phase = torch.gather(g[:4], 2, self.perm[..., None])  # (4, 4, 1)
        self.site_shape = tuple(u.shape[1:5])
        self.even = parity(self.site_shape, u.device) == 0
        diag = (4.0 + mass) * torch.eye(12, dtype=u.dtype, device=u.device)
        self.local = (diag + clover_field(u, csw)).reshape(-1, 12, 12) if csw else None
        self.local_inv = torch.linalg.inv(self.local) if self.local is not None else None

    def hop(self, psi: torch.Tensor) -> torch.Tensor:
        """The hopping term -1/2 sum_mu [(1 - g_mu) fwd_mu + (1 + g_mu) bwd_mu] applied to psi.

        Each gamma matrix has one entry per row, so g psi is a permutation times phases.
        """
        total = torch.zeros_like(psi)
        gamma_part = torch.zeros_like(psi)
        for mu in range(NDIM):
            fwd = colour(self.fwd_t[mu], shift(psi, mu, 1))
            bwd = colour(self.bwd_t[mu], shift(psi, mu, -1))
            total = total + fwd + bwd
            diff = fwd - bwd
            gamma_part = gamma_part + diff[..., self.perm[mu], :] * self.phase[mu]
        return -0.5 * (total - gamma_part)

    def apply_local(self, psi: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """The site-diagonal part (4 + m + clover), or its inverse, applied to psi."""
        matrix = self.local_inv if inverse else self.local
        if matrix is None:
            return psi / (4.0 + self.mass) if inverse else psi * (4.0 + self.mass)
        flat = psi.reshape(matrix.shape[0], -1, 12)  # (sites, right-hand sides, 12)
        return (flat @ matrix.transpose(-1, -2)).reshape(psi.shape)

    def __call__(self, psi: torch.Tensor) -> torch.Tensor:
        """D psi on the full lattice."""
        return self.apply_local(psi) + self.hop(psi)

    def dagger(self, psi: torch.Tensor) -> torch.Tensor:
        """D^dag psi = gamma_5 D gamma_5 psi."""
        return spin(self.gamma5, self(spin(self.gamma5, psi)))

    def mask(self, psi: torch.Tensor, even: bool) -> torch.Tensor:
        """psi with the sites of the other parity set to zero."""
        keep = self.even if even else ~self.even
        return psi * keep.reshape(*keep.shape, *([1] * (psi.dim() - keep.dim())))

    def schur(self, psi_e: torch.Tensor) -> torch.Tensor:
        """Even-odd Schur complement D_ee - D_eo D_oo^-1 D_oe on an even-site field."""
        odd = self.apply_local(self.mask(self.hop(psi_e), even=False), inverse=True)
        return self.apply_local(psi_e) - self.mask(self.hop(odd), even=True)

    def schur_dagger(self, psi_e: torch.Tensor) -> torch.Tensor:
        """Hermitian conjugate of the Schur complement (gamma_5-hermiticity)."""
        return spin(self.gamma5, self.schur(spin(self.gamma5, psi_e)))
