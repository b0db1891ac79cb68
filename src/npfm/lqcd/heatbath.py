"""Quenched SU(3) updates for the Wilson gauge action: Cabibbo-Marinari heat-bath and
over-relaxation, vectorised over one checkerboard at a time.

Action: S = beta * sum_P (1 - Re tr U_P / 3). For a link U with staple sum A the local
weight is exp((beta / 3) Re tr(U A)). Each update multiplies U from the left by an element
of one of the three SU(2) subgroups (Cabibbo and Marinari, Phys. Lett. B 119 (1982) 387);
the SU(2) element is drawn with the Kennedy-Pendleton algorithm (Phys. Lett. B 156 (1985)
393) or, for over-relaxation, is the reflection that keeps the action fixed (Creutz, Phys.
Rev. D 36 (1987) 515). Links of one direction on sites of one parity do not share
staples, so they are updated together.
"""

from __future__ import annotations

import math

import torch

from npfm.lqcd.su3 import NDIM, dagger, mul, parity, project_su3, shift

SUBGROUPS = ((0, 1), (0, 2), (1, 2))
#: Kennedy-Pendleton rejection rounds before giving up (acceptance is > 0.5 per round
#: wherever the SU(2) coupling is not tiny, so this is never reached in practice).
MAX_KP_ROUNDS = 200


def staple(u: torch.Tensor, mu: int, sites: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the six staples A_mu(x), so that the plaquettes through U_mu(x) are U_mu(x) A.

    With ``sites`` (flat site indices) only those sites are computed, as (len(sites), 3, 3);
    otherwise all, as (T, Z, Y, X, 3, 3).
    """
    def at(field: torch.Tensor) -> torch.Tensor:
        flat = field.reshape(-1, 3, 3)
        return flat if sites is None else flat[sites]

    u_mu = u[mu]
    total = None
    for nu in range(NDIM):
        if nu == mu:
            continue
        u_nu = u[nu]
        u_nu_back = shift(u_nu, nu, -1)
        # forward: U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag
        fwd = mul(mul(at(shift(u_nu, mu, 1)), dagger(at(shift(u_mu, nu, 1)))), dagger(at(u_nu)))
        # backward: U_nu(x+mu-nu)^dag U_mu(x-nu)^dag U_nu(x-nu)
        bwd = mul(mul(dagger(at(shift(u_nu_back, mu, 1))), dagger(at(shift(u_mu, nu, -1)))),
                  at(u_nu_back))
        total = fwd + bwd if total is None else total + fwd + bwd
    assert total is not None
    return total if sites is not None else total.reshape(u_mu.shape)


def _su2_part(w: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """Quaternion (a0, a1, a2, a3) of the SU(2)-proportional part of w's (i, j) block."""
    m00, m01, m10, m11 = w[:, i, i], w[:, i, j], w[:, j, i], w[:, j, j]
    return torch.stack([(m00 + m11).real / 2, (m01 + m10).imag / 2,
                        (m01 - m10).real / 2, (m00 - m11).imag / 2], dim=-1)


def _qmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Product of SU(2) elements a0 + i a.sigma stored as quaternions (..., 4)."""
    a0, av = a[..., :1], a[..., 1:]
    b0, bv = b[..., :1], b[..., 1:]
    c0 = a0 * b0 - (av * bv).sum(-1, keepdim=True)
    cv = a0 * bv + b0 * av - torch.linalg.cross(av, bv)
    return torch.cat([c0, cv], dim=-1)


def _conj(a: torch.Tensor) -> torch.Tensor:
    return torch.cat([a[..., :1], -a[..., 1:]], dim=-1)


def _rotate_rows(m: torch.Tensor, r: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """Rows i, j of each m replaced by the SU(2) matrix of quaternion r times them."""
    r = r.to(m.real.dtype)
    r00 = torch.complex(r[:, 0], r[:, 3])[:, None]
    r01 = torch.complex(r[:, 2], r[:, 1])[:, None]
    r10 = torch.complex(-r[:, 2], r[:, 1])[:, None]
    r11 = torch.complex(r[:, 0], -r[:, 3])[:, None]
    mi, mj = m[:, i, :], m[:, j, :]
    out = m.clone()
    out[:, i, :] = r00 * mi + r01 * mj
    out[:, j, :] = r10 * mi + r11 * mj
    return out


def kennedy_pendleton(alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SU(2) quaternions x with density ~ exp(alpha x0) dHaar(x), one per entry of alpha."""
    n = alpha.shape[0]
    x0 = torch.empty_like(alpha)
    pending = torch.arange(n, device=alpha.device)
    for _ in range(MAX_KP_ROUNDS):
        if pending.numel() == 0:
            break
        r = 1.0 - torch.rand((4, pending.numel()), generator=generator, dtype=alpha.dtype,
                             device=alpha.device)  # in (0, 1]
        a = alpha[pending]
        delta = -(torch.log(r[0]) + torch.cos(2 * math.pi * r[1]) ** 2 * torch.log(r[2])) / a
        accept = r[3] ** 2 <= 1 - delta / 2
        x0[pending[accept]] = 1 - delta[accept]
        pending = pending[~accept]
    else:
        raise RuntimeError("Kennedy-Pendleton sampling did not converge")
    # direction uniform on the 2-sphere, length sqrt(1 - x0^2)
    uniform = torch.rand((2, n), generator=generator, dtype=alpha.dtype, device=alpha.device)
    cos_t = 2 * uniform[0] - 1
    phi = 2 * math.pi * uniform[1]
    sin_t = torch.sqrt(1 - cos_t ** 2)
    length = torch.sqrt(torch.clamp(1 - x0 ** 2, min=0))
    return torch.stack([x0, length * sin_t * torch.cos(phi), length * sin_t * torch.sin(phi),
                        length * cos_t], dim=-1)


def _update_links(links: torch.Tensor, a: torch.Tensor, beta: float,
                  generator: torch.Generator | None) -> torch.Tensor:
    """One Cabibbo-Marinari pass over links (N, 3, 3) with staples a (N, 3, 3).

    With a generator: heat-bath; without: over-relaxation.
    """
    w = mul(links, a)
    for i, j in SUBGROUPS:
        q = _su2_part(w, i, j)
        k = torch.linalg.vector_norm(q, dim=-1).clamp_min(1e-30)
        v = q / k[:, None]
        if generator is None:
            r = _conj(_qmul(v, v))
        else:
            x = kennedy_pendleton(2.0 * beta * k / 3.0, generator)
            r = _qmul(x, _conj(v))
        links = _rotate_rows(links, r, i, j)
        w = _rotate_rows(w, r, i, j)
    return links


def sweep(u: torch.Tensor, beta: float, generator: torch.Generator, n_or: int = 4
          ) -> torch.Tensor:
    """One heat-bath sweep followed by ``n_or`` over-relaxation sweeps; returns the new field.

    Every sweep visits all 4 V links, checkerboard by checkerboard; links are projected back
    onto SU(3) at the end to remove rounding drift.
    """
    par = parity(tuple(u.shape[1:5]), u.device).reshape(-1)
    checkerboards = [torch.nonzero(par == p).squeeze(1) for p in (0, 1)]
    u = u.clone()
    for rng in [generator] + [None] * n_or:
        for mu in range(NDIM):
            flat = u[mu].reshape(-1, 3, 3)  # a view: writes go into u
            for sites in checkerboards:
                flat[sites] = _update_links(flat[sites], staple(u, mu, sites), beta, rng)
    return project_su3(u)


def link_updates_per_sweep(u: torch.Tensor) -> int:
    """Heat-bath link updates in one sweep (4 V)."""
    return int(u[0].shape[:4].numel()) * NDIM

