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

The hopping term uses spin projection: 1 -+ gamma_mu has rank 2, so each of the eight
terms is projected to a half-spinor (2 spin x 3 colour), multiplied by its link and
reconstructed, which halves the SU(3) work (the standard trick of Chroma, Edwards and
Joo, Nucl. Phys. Proc. Suppl. 140 (2005) 832, and QUDA, Clark et al., Comput. Phys.
Commun. 181 (2010) 1517). Internally the fields are laid out structure-of-arrays,
(spin, colour, T, Z, Y, X, B), so every elementwise op runs over the sites. On CPU
tensors, when numba is installed (extra npfm[fast]), the hopping term runs instead as a
compiled pass vectorised across the sites of each (t, z) plane (npfm.lqcd.hopping; the
links laid out for it once per operator); the torch kernel is the reference, and the
one used on CUDA.
"""

from __future__ import annotations

import torch

from npfm.lqcd import hopping
from npfm.lqcd.observables import plaquette_field
from npfm.lqcd.su3 import NDIM, dagger, parity, shift, site_axis

FLOPS_PER_SITE = 1320  # Wilson hopping term per site, the customary count (e.g. QUDA, Chroma)
KERNELS = ("auto", "torch", "numba")  # hopping-term implementations WilsonDirac can use


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


def _shift_into(out: torch.Tensor, field: torch.Tensor, mu: int, step: int) -> None:
    """out[x] = field[x + step mu-hat] (periodic, step = +-1) for contiguous
    (spin, colour, T, Z, Y, X, B) fields: one flat copy, then the wrapped slab."""
    axis = 2 + site_axis(mu)
    n, inner = field.shape[axis], field[(0,) * (axis + 1)].numel()
    flat_out, flat_in, size = out.view(-1), field.view(-1), field.numel() - inner
    if step > 0:  # out[..., n - 1] wraps round to field[..., 0]
        flat_out[:size].copy_(flat_in[inner:])
        out.select(axis, n - 1).copy_(field.select(axis, 0))
    else:
        flat_out[inner:].copy_(flat_in[:size])
        out.select(axis, 0).copy_(field.select(axis, n - 1))


def _colour_into(out: torch.Tensor, links: torch.Tensor, half: torch.Tensor) -> None:
    """out[mu, s, a] = sum_b U_mu[a, b] half[mu, s, b] for all mu, in place.

    ``links`` is (mu, b, a, T, Z, Y, X, 1); ``half`` and ``out`` are (mu, 2, 3, T, Z, Y, X, B).
    """
    torch.mul(links[:, None, 0], half[:, :, None, 0], out=out)
    for b in (1, 2):
        out.addcmul_(links[:, None, b], half[:, :, None, b])


class WilsonDirac:
    """The Wilson(-clover) operator for one gauge field, bare mass m0 and c_sw.

    ``kernel`` picks the hopping term: "auto" (the compiled one for CPU tensors when numba
    is installed, else torch), "torch" or "numba" (forced; an error where it cannot run).
    """

    def __init__(self, u: torch.Tensor, mass: float, csw: float = 0.0,
                 antiperiodic: bool = True, kernel: str = "auto") -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel {kernel!r}: one of {KERNELS}")
        self.kernel = kernel
        self.links = fermion_links(u, antiperiodic)
        # links as (mu, colour b, colour a, T, Z, Y, X, 1): U_mu(x)[a, b] and U_mu(x)^dag[a, b]
        self.fwd_soa = self.links.permute(0, 6, 5, 1, 2, 3, 4)[..., None].contiguous()
        self.bwd_soa = self.links.conj().permute(0, 5, 6, 1, 2, 3, 4)[..., None].contiguous()
        self.mass, self.csw = mass, csw
        g = gamma_matrices(u.dtype).to(u.device)
        self.gamma5 = g[4]
        # (1 -+ g_mu) = (1 -+ g_mu)[:, :2] (1 -+ g_mu)[:2, :] in the chiral basis: project to
        # the top two rows, reconstruct with the left two columns; forward (-) terms first
        ones = torch.eye(4, dtype=u.dtype, device=u.device)
        terms = [ones + sign * g[mu] for sign in (-1, 1) for mu in range(NDIM)]
        colour_eye = torch.eye(3, dtype=u.dtype, device=u.device)
        self.project = torch.kron(torch.cat([t[:2] for t in terms]), colour_eye)  # (48, 12)
        self.reconstruct = -0.5 * torch.cat([t[:, :2] for t in terms], dim=1)  # (4, 16)
        self.site_shape = tuple(u.shape[1:5])
        self._work: tuple[torch.Tensor, ...] | None = None
        self._compiled: hopping.Hopping | None = None  # made on the first compiled hop
        self.even = parity(self.site_shape, u.device) == 0
        diag = (4.0 + mass) * torch.eye(12, dtype=u.dtype, device=u.device)
        self.local = (diag + clover_field(u, csw)).reshape(-1, 12, 12) if csw else None
        self.local_inv = torch.linalg.inv(self.local) if self.local is not None else None

    def backend(self, psi: torch.Tensor) -> str:
        """The hopping-term implementation hop uses for psi: "numba" or "torch"."""
        if self.kernel == "torch":
            return "torch"
        compiled = (hopping.AVAILABLE and psi.device.type == "cpu"
                    and self.links.device.type == "cpu"
                    and not (psi.requires_grad or self.links.requires_grad))
        if self.kernel == "numba" and not compiled:
            raise RuntimeError("kernel='numba' needs numba installed and CPU tensors "
                               "without gradients")
        return "numba" if compiled else "torch"

    def hop(self, psi: torch.Tensor) -> torch.Tensor:
        """The hopping term -1/2 sum_mu [(1 - g_mu) fwd_mu + (1 + g_mu) bwd_mu] applied to
        psi, by the kernel ``backend`` names; 1320 flops per site."""
        if self.backend(psi) == "numba":
            if self._compiled is None:
                self._compiled = hopping.Hopping(self.links)
            return self._compiled(psi)
        return self.hop_torch(psi)

    def hop_torch(self, psi: torch.Tensor) -> torch.Tensor:
        """The torch hopping term: project (one matrix product over spin and colour),
        shift, colour-multiply the half-spinors, reconstruct (one spin product)."""
        nrhs = psi[..., 0, 0].numel() // self.even.numel()
        half, moved, out = self._workspace(nrhs)
        # half-spinors in structure-of-arrays order (direction, spin, colour, sites * B)
        torch.matmul(self.project, psi.reshape(-1, 12).T, out=half.reshape(4 * NDIM * 3, -1))
        for mu in range(NDIM):  # forward: U_mu(x) h(x + mu)
            _shift_into(moved[0, mu], half[0, mu], mu, 1)
        _colour_into(half[0], self.fwd_soa, moved[0])
        _colour_into(moved[1], self.bwd_soa, half[1])  # backward: U_mu(y)^dag h(y) at y = x - mu
        for mu in range(NDIM):
            _shift_into(half[1, mu], moved[1, mu], mu, -1)
        torch.matmul(self.reconstruct, half.reshape(4 * NDIM, -1), out=out)
        return out.reshape(12, -1).transpose(0, 1).reshape(psi.shape).contiguous()

    def _workspace(self, nrhs: int) -> tuple[torch.Tensor, ...]:
        """Buffers reused by hop (fresh pages are slow to touch), kept for the last B only;
        so one hop at a time per operator."""
        if self._work is None or self._work[0].shape[-1] != nrhs:
            new = self.links.new_empty
            field = (*self.site_shape, nrhs)
            self._work = (new((2, NDIM, 2, 3, *field)), new((2, NDIM, 2, 3, *field)),
                          new((4, 3 * self.even.numel() * nrhs)))
        return self._work

    def apply_local(self, psi: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """The site-diagonal part (4 + m + clover), or its inverse, applied to psi."""
        matrix = self.local_inv if inverse else self.local
        if matrix is None:
            return psi / (4.0 + self.mass) if inverse else psi * (4.0 + self.mass)
        flat = psi.reshape(matrix.shape[0], -1, 12)  # (sites, right-hand sides, 12)
        return (flat @ matrix.transpose(-1, -2)).reshape(psi.shape)

    def __call__(self, psi: torch.Tensor) -> torch.Tensor:
        """D psi on the full lattice."""
        return self.hop(psi).add_(self.apply_local(psi))

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
