"""Nucleon two-point functions and three-point functions by the sequential-source method.

Proton interpolator chi = eps_abc (u_a^T C gamma_5 d_b) u_c with C = gamma_2 gamma_4
(C gamma_mu C^-1 = -gamma_mu^T in the DeGrand-Rossi basis), chi-bar = chi^dag gamma_4.
Wick's theorem with S = <psi psi-bar> (sink x, source 0) gives the spin matrix

    C_{gg'}(x) = eps_abc eps_a'b'c' sum_{i,j} Q^{bb'}_{ij}
                 (S^{aa'}_{ij} S^{cc'}_{gg'} - S^{ac'}_{ig'} S^{ca'}_{gj}),
    Q = Gamma S_d Gamma~,  Gamma = C gamma_5,  Gamma~ = gamma_4 Gamma^dag gamma_4,

and C2(t, p) = sum_x e^{-i p.x} tr[P C(x)] with the positive-parity projector
P+ = (1 + gamma_4)/2, or P_3 = P+ i gamma_5 gamma_3 for the polarised (axial) case
(Gattringer and Lang, "Quantum Chromodynamics on the Lattice", Springer 2010, ch. 6 and
ch. 11; Leinweber, Melnitchouk, Richards, Williams and Zanotti, Lect. Notes Phys. 663
(2005) 71 for the projectors).

Three-point functions C3(tau; q) = sum_{x,y} e^{i q.y} tr P <chi(x, t_s) J(y, tau) chi-bar(0)>
(sink momentum 0, so the initial nucleon carries p = -q) use the sequential source through
the sink: C2 is multilinear in the quark lines, so dC2/dS_f(x) (obtained by automatic
differentiation of the contraction) is the source of the backward propagator
G_f(y) = sum_x dC2/dS_f(x) S(x, y), computed with gamma_5-hermiticity from one
12-column solve per flavour f and projector (Martinelli and Sachrajda, Nucl. Phys. B 316
(1989) 355). Only connected diagrams are computed (exact for the isovector u - d).
Currents: local V_mu = psi-bar gamma_mu psi, A_mu = psi-bar gamma_mu gamma_5 psi, and the
conserved (point-split) vector current of the Wilson action
J_4(y) = 1/2 [psi-bar(y+4)(1 + gamma_4) U_4(y)^dag psi(y) - psi-bar(y)(1 - gamma_4) U_4(y) psi(y+4)]
(Karsten and Smit, Nucl. Phys. B 183 (1981) 103), whose charge is exactly 1 per quark.
Lattice units throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from npfm.lqcd.correlators import Progress, propagator, solve_columns
from npfm.lqcd.dirac import WilsonDirac, gamma_matrices
from npfm.lqcd.su3 import shift

#: solves per configuration for the 3-point functions: 2 projectors x 2 flavours x 12
SEQUENTIAL_SOLVES = 48
#: nucleon momenta (units of 2 pi / L) of the three-point functions by default
DEFAULT_MOMENTA: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (1, 0, 0), (0, 1, 0),
                                                     (0, 0, 1))
FLAVOURS = ("u", "d")
_EPS = [((0, 1, 2), 1), ((1, 2, 0), 1), ((2, 0, 1), 1),
        ((0, 2, 1), -1), ((2, 1, 0), -1), ((1, 0, 2), -1)]


def charge_conjugation(dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """C = gamma_2 gamma_4 (DeGrand-Rossi basis)."""
    g = gamma_matrices(dtype)
    return g[1] @ g[3]


def projectors(dtype: torch.dtype = torch.complex128) -> dict[str, torch.Tensor]:
    """P+ = (1 + gamma_4)/2 (unpolarised) and P_3 = P+ i gamma_5 gamma_3 (spin along z)."""
    g = gamma_matrices(dtype)
    plus = (torch.eye(4, dtype=dtype) + g[3]) / 2
    return {"P+": plus, "P3": plus @ (1j * g[4] @ g[2])}


def nucleon_matrix(su: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Spin matrix C_{g g'}(x) (..., 4, 4) of the proton from u and d propagators."""
    g = gamma_matrices(su.dtype).to(su.device)
    gam = charge_conjugation(su.dtype).to(su.device) @ g[4]
    gam_t = g[3] @ gam.conj().T @ g[3]
    q = torch.einsum("ij,...jbke,kl->...ible", gam, sd, gam_t)
    out = torch.zeros((*su.shape[:-4], 4, 4), dtype=su.dtype, device=su.device)
    for (a, b, c), s1 in _EPS:
        for (d, e, f), s2 in _EPS:
            qbe = q[..., :, b, :, e]
            direct = (qbe * su[..., :, a, :, d]).sum(dim=(-1, -2))
            cross = torch.einsum("...il,...ik,...gl->...gk", qbe, su[..., :, a, :, f],
                                 su[..., :, c, :, d])
            out = out + (s1 * s2) * (direct[..., None, None] * su[..., :, c, :, f] - cross)
    return out


def phases(site_shape: tuple[int, ...], momentum: tuple[int, int, int], sign: int,
           dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """e^{sign i p.x} on (T, Z, Y, X) sites, p = 2 pi n / L with n = (nx, ny, nz)."""
    _, lz, ly, lx = site_shape
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (lz, ly, lx)],
                             indexing="ij")
    arg = 2 * math.pi * (momentum[0] * x / lx + momentum[1] * y / ly + momentum[2] * z / lz)
    return torch.exp(sign * 1j * arg).to(dtype).expand(site_shape)


def two_point(su: torch.Tensor, sd: torch.Tensor, projector: torch.Tensor,
              momentum: tuple[int, int, int] = (0, 0, 0)) -> torch.Tensor:
    """C2(t, p) = sum_x e^{-i p.x} tr[P C(x)], complex, t = 0 .. T-1 from a source at t = 0."""
    c = nucleon_matrix(su, sd)
    trace = torch.einsum("kg,...gk->...", projector.to(c), c)
    return (trace * phases(tuple(c.shape[:4]), momentum, -1, c.dtype)).sum(dim=(1, 2, 3))


def _backward(dirac: WilsonDirac, prop: torch.Tensor, projector: torch.Tensor, t_sink: int,
              flavour: str, tol: float, progress: Progress | None) -> torch.Tensor:
    """G_f(y)[spin_y, col_y, spin_0, col_0] = sum_x dC2(t_sink, p=0)/dS_f(x)_{.;0} S(x, y)."""
    su = prop.clone().requires_grad_(flavour == "u")
    sd = prop.clone().requires_grad_(flavour == "d")
    c2 = two_point(su, sd, projector)[t_sink]
    leaf = su if flavour == "u" else sd
    # torch returns conj(dC2/dS) for the holomorphic C2
    (grad,) = torch.autograd.grad(c2, leaf, torch.ones_like(c2))
    g5 = dirac.gamma5
    source = torch.einsum("ij,...jakb->...iakb", g5, grad.detach())
    columns = source.permute(0, 1, 2, 3, 6, 7, 4, 5).reshape(*dirac.site_shape, 12, 4, 3)
    x, _ = solve_columns(dirac, columns.contiguous(), tol, progress)
    return torch.einsum("ij,...jakb->...iakb", g5, x.conj())


def _insert(back: torch.Tensor, gamma: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
    """Per-site tr[G(y)^T Gamma S(y, 0)] over spin, colour and source indices."""
    return torch.einsum("...iakb,ij,...jakb->...", back, gamma.to(prop), prop)


def conserved_density(back: torch.Tensor, prop: torch.Tensor, links: torch.Tensor
                      ) -> torch.Tensor:
    """Per-site conserved J_4(y) (between y and y + 4) inserted between G and S."""
    g4 = gamma_matrices(prop.dtype).to(prop.device)[3]
    eye = torch.eye(4, dtype=prop.dtype, device=prop.device)
    u4 = links[3]
    s_next = shift(prop, 3, 1)
    fwd = torch.einsum("...ab,...jbkc->...jakc", u4.conj().transpose(-1, -2), prop)
    bwd = torch.einsum("...ab,...jbkc->...jakc", u4, s_next)
    return 0.5 * (_insert(shift(back, 3, 1), eye + g4, fwd) - _insert(back, eye - g4, bwd))


@dataclass
class NucleonData:
    """Correlators of one configuration; complex arrays indexed by t or tau (from 0)."""

    two_point: dict[str, np.ndarray] = field(default_factory=dict)  # "P+/n" -> C2(t)
    three_point: dict[str, np.ndarray] = field(default_factory=dict)  # "P+/V4/u/n" -> C3
    iterations: list[int] = field(default_factory=list)


def momentum_key(momentum: tuple[int, int, int]) -> str:
    """Key suffix of a momentum in ``NucleonData`` (e.g. ``+1+0+0``)."""
    return "".join(f"{n:+d}" for n in momentum)


def currents(dtype: torch.dtype = torch.complex128) -> dict[str, torch.Tensor]:
    """Local V_mu = gamma_mu and A_mu = gamma_mu gamma_5, mu = 1 .. 4."""
    g = gamma_matrices(dtype)
    out = {f"V{mu + 1}": g[mu] for mu in range(4)}
    out.update({f"A{mu + 1}": g[mu] @ g[4] for mu in range(4)})
    return out


def nucleon_correlators(dirac: WilsonDirac, t_sink: int,
                        momenta: tuple[tuple[int, int, int], ...] = DEFAULT_MOMENTA,
                        tol: float = 1e-10, progress: Progress | None = None,
                        prop: torch.Tensor | None = None) -> NucleonData:
    """Two-point functions at ``momenta`` and three-point functions (source at the origin,
    sink at ``t_sink``) of all local currents per flavour, and the conserved J_4 at q = 0.

    ``prop``: the point-source propagator at the origin, if already computed."""
    iterations: list[int] = []
    if prop is None:
        prop, iterations = propagator(dirac, "point", 0, tol, progress)
    data = NucleonData(iterations=list(iterations))
    site_shape = dirac.site_shape
    for name, proj in projectors(prop.dtype).items():
        proj = proj.to(prop.device)
        for n in momenta:
            data.two_point[f"{name}/{momentum_key(n)}"] = two_point(prop, prop, proj, n).detach() \
                .cpu().numpy()
        for flavour in FLAVOURS:
            back = _backward(dirac, prop, proj, t_sink, flavour, tol, progress)
            for cname, gamma in currents(prop.dtype).items():
                density = _insert(back, gamma, prop)
                for n in momenta:
                    c3 = (density * phases(site_shape, n, 1, prop.dtype)).sum(dim=(1, 2, 3))
                    key = f"{name}/{cname}/{flavour}/{momentum_key(n)}"
                    data.three_point[key] = c3.cpu().numpy()
            cons = conserved_density(back, prop, dirac.links).sum(dim=(1, 2, 3))
            key = f"{name}/J4/{flavour}/{momentum_key((0, 0, 0))}"
            data.three_point[key] = cons.cpu().numpy()
    return data
