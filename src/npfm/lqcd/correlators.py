"""Quark propagators from point and wall sources, meson two-point functions, effective masses.

A propagator S has shape (T, Z, Y, X, 4, 3, 4, 3): sink spin, sink colour, source spin,
source colour. Meson correlators with O = psi-bar Gamma psi, using
S(0, x) = gamma_5 S(x, 0)^dag gamma_5:

    C_Gamma(t) = -sum_x tr[Gamma S(x, 0) Gamma-bar gamma_5 S(x, 0)^dag gamma_5],
    Gamma-bar = gamma_4 Gamma^dag gamma_4,

so the pion (Gamma = gamma_5) is sum_x |S|^2 and the rho averages Gamma = gamma_1,2,3.
Correlators are in lattice units and start at the source time slice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from npfm.lqcd.dirac import WilsonDirac, gamma_matrices
from npfm.lqcd.solver import solve

Progress = Callable[[int], None]


def point_source(site_shape: tuple[int, ...], origin: tuple[int, int, int, int],
                 spin: int, colour: int, dtype: torch.dtype = torch.complex128
                 ) -> torch.Tensor:
    """Unit source at ``origin`` = (t, z, y, x) in one spin and colour component."""
    b = torch.zeros((*site_shape, 4, 3), dtype=dtype)
    b[(*origin, spin, colour)] = 1.0
    return b


def wall_source(site_shape: tuple[int, ...], t0: int, spin: int, colour: int,
                dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """Unit source on every site of time slice ``t0`` (meaningful in a fixed gauge, e.g.
    Coulomb gauge, or on the free field: it is not gauge covariant)."""
    b = torch.zeros((*site_shape, 4, 3), dtype=dtype)
    b[t0, ..., spin, colour] = 1.0
    return b


def propagator(dirac: WilsonDirac, source: str = "point", t0: int = 0, tol: float = 1e-10,
               progress: Progress | None = None) -> tuple[torch.Tensor, list[int]]:
    """The 12 solves of a point source at (t0, 0, 0, 0) or a wall source at t0, solved
    together as one batch.

    Returns S (T, Z, Y, X, 4, 3, 4, 3) and the CG iteration count (one per column).
    """
    shape = dirac.site_shape
    dtype = dirac.links.dtype
    columns = [(point_source(shape, (t0, 0, 0, 0), s, c, dtype) if source == "point"
                else wall_source(shape, t0, s, c, dtype)) for s in range(4) for c in range(3)]
    return solve_columns(dirac, torch.stack(columns, dim=4).to(dirac.links.device), tol,
                         progress)


def solve_columns(dirac: WilsonDirac, sources: torch.Tensor, tol: float,
                  progress: Progress | None = None) -> tuple[torch.Tensor, list[int]]:
    """Solve D x = b for the 12 columns of ``sources`` (T, Z, Y, X, 12, 4, 3), column
    (spin s, colour c) at index 3 s + c; returns them as S (T, Z, Y, X, 4, 3, 4, 3)."""
    result = solve(dirac, sources, tol=tol)
    if not result.converged:
        raise RuntimeError(f"CG did not converge (residual {result.residual:.2e}); "
                           "raise the quark mass or the iteration limit")
    if progress is not None:
        progress(12)
    x = result.x.reshape(*dirac.site_shape, 4, 3, 4, 3)  # source spin, colour, sink ...
    return x.permute(0, 1, 2, 3, 6, 7, 4, 5).contiguous(), [result.iterations] * 12


def meson(prop: torch.Tensor, gamma: torch.Tensor, t0: int = 0) -> np.ndarray:
    """C_Gamma(t) for one Gamma (4 x 4), t counted from the source slice t0."""
    per_t = meson_sites(prop, gamma).sum(dim=(1, 2, 3)).cpu().numpy()
    return np.roll(per_t, -t0)


def meson_sites(prop: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The summand of C_Gamma at every sink site (T, Z, Y, X), real part."""
    g = gamma_matrices(prop.dtype).to(prop.device)
    g4, g5 = g[3], g[4]
    gamma = gamma.to(prop.device, prop.dtype)
    gamma_bar = g4 @ gamma.conj().T @ g4
    left = torch.einsum("ab,...bcde->...acde", gamma, prop)  # Gamma S
    mid = torch.einsum("...acde,df->...acfe", left, gamma_bar @ g5)  # ... Gamma-bar g5
    # (S^dag g5)[(f e), (a c)] stored as [a, c, f, e]
    back = torch.einsum("...gcfe,ga->...acfe", prop.conj(), g5)
    return -torch.einsum("...acfe,...acfe->...", mid, back).real


def pion(prop: torch.Tensor, t0: int = 0) -> np.ndarray:
    """Pseudoscalar correlator (Gamma = gamma_5)."""
    return meson(prop, gamma_matrices()[4], t0)


def rho(prop: torch.Tensor, t0: int = 0) -> np.ndarray:
    """Vector correlator averaged over Gamma = gamma_1, gamma_2, gamma_3."""
    g = gamma_matrices()
    return np.mean([meson(prop, g[i], t0) for i in range(3)], axis=0)


def effective_mass(corr: np.ndarray) -> np.ndarray:
    """Cosh effective mass: m with cosh(m (t - T/2)) ratios matching C(t)/C(t+1).

    Solved by bisection per t; NaN where the ratio admits no solution (noise).
    """
    n = len(corr)
    out = np.full(n - 1, np.nan)
    for t in range(n - 1):
        if corr[t] <= 0 or corr[t + 1] <= 0:
            continue
        ratio = corr[t] / corr[t + 1]

        def model(m: float, t: int = t) -> float:
            return math.cosh(m * (t - n / 2)) / math.cosh(m * (t + 1 - n / 2))
        lo, hi = 1e-9, 10.0
        if not (model(lo) - ratio) * (model(hi) - ratio) < 0:
            continue
        for _ in range(100):
            mid = (lo + hi) / 2
            if (model(lo) - ratio) * (model(mid) - ratio) <= 0:
                hi = mid
            else:
                lo = mid
        out[t] = (lo + hi) / 2
    return out


def plot_effective_mass(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Effective masses with error bars, one curve per channel name -> (mean, error)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (mean, err) in curves.items():
        t = np.arange(len(mean))
        ax.errorbar(t, mean, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xlabel("t (lattice units)")
    ax.set_ylabel("effective mass a m_eff")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
