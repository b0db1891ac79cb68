"""Even-odd preconditioned conjugate-gradient solution of D x = b.

With D split by site parity, D = [[A_ee, H_eo], [H_oe, A_oo]] (A site-diagonal, H the
hopping term), the even part solves the Schur system

    (A_ee - H_eo A_oo^-1 H_oe) x_e = b_e - H_eo A_oo^-1 b_o

by CG on its normal equations (CGNR: Hestenes and Stiefel, J. Res. NBS 49 (1952) 409),
and x_o = A_oo^-1 (b_o - H_oe x_e) (DeGrand and Hecht, Phys. Rev. D 46 (1992) 3937).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from npfm.lqcd.dirac import WilsonDirac

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SolveResult:
    """Solution and convergence record of one linear solve."""

    x: torch.Tensor
    iterations: int
    residual: float  # |b - D x| / |b| of the full system (the largest over a batch)
    converged: bool


BATCH_AXIS = 4  # (T, Z, Y, X, B, 4, 3): B right-hand sides solved together


def _norm2(a: torch.Tensor) -> torch.Tensor:
    """|a|^2, per right-hand side (shape (B, 1, 1)) for a batched field, else a scalar."""
    sq = a.real ** 2 + a.imag ** 2
    if a.dim() == 7:
        return sq.sum(dim=(0, 1, 2, 3, 5, 6))[:, None, None]
    return sq.sum()


def cgnr(op: Operator, op_dagger: Operator, b: torch.Tensor, tol: float = 1e-10,
         max_iter: int = 5000) -> tuple[torch.Tensor, int]:
    """Solve op x = b by CG on op^dag op x = op^dag b; stops at |r_normal| <= tol |op^dag b|.

    A batched b (T, Z, Y, X, B, 4, 3) runs B independent CGs in lock step; each column stops
    updating once it has converged, and the count returned is the largest.
    """
    x = torch.zeros_like(b)
    r = op_dagger(b)
    p = r.clone()
    rr = _norm2(r)
    stop = (tol ** 2) * rr
    active = rr > 0
    for iteration in range(1, max_iter + 1):
        q = op(p)
        qq = _norm2(q)
        alpha = torch.where(active, rr / torch.where(active, qq, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * op_dagger(q)
        rr_new = _norm2(r)
        active = active & (rr_new > stop)
        if not bool(active.any()):
            return x, iteration
        beta = torch.where(active, rr_new / torch.where(active, rr, 1.0), 0.0)
        p = torch.where(active, r + beta * p, p)
        rr = rr_new
    return x, max_iter


def solve(dirac: WilsonDirac, b: torch.Tensor, tol: float = 1e-10, max_iter: int = 5000
          ) -> SolveResult:
    """x with D x = b, via the even-odd preconditioned CGNR; b may be batched (BATCH_AXIS)."""
    b_e, b_o = dirac.mask(b, even=True), dirac.mask(b, even=False)
    a_inv_b_o = dirac.apply_local(b_o, inverse=True)
    rhs = b_e - dirac.mask(dirac.hop(a_inv_b_o), even=True)
    x_e, iterations = cgnr(dirac.schur, dirac.schur_dagger, rhs, tol, max_iter)
    x_e = dirac.mask(x_e, even=True)
    x_o = dirac.apply_local(b_o - dirac.mask(dirac.hop(x_e), even=False), inverse=True)
    x = x_e + x_o
    norm_b = _norm2(b).sqrt()
    residual = float((_norm2(b - dirac(x)).sqrt() / torch.where(norm_b > 0, norm_b, 1.0))
                     .max())
    return SolveResult(x=x, iterations=iterations, residual=residual,
                       converged=iterations < max_iter)
