"""The Wilson hopping term as one fused, compiled pass over the sites (numba, optional).

    H psi(x) = -1/2 sum_mu [(1 - gamma_mu) U_mu(x) psi(x + mu)
                            + (1 + gamma_mu) U_mu(x - mu)^dag psi(x - mu)]

in the conventions of npfm.lqcd.dirac (DeGrand-Rossi gamma matrices, (T, Z, Y, X, [B,]
4, 3) fields; the boundary conditions are carried by the links it is given). In that
basis gamma_mu = [[0, A_mu], [A_mu^dag, 0]] with A_mu a 2 x 2 permutation with phases,
A_mu[k, p_k] = a_k in {+-1, +-i}, so for s = +-1

    (1 + s gamma_mu) psi = (h_0, h_1, ...) with h_k = psi_k + s a_k psi_{2 + p_k}

and row 2 + p_k of the result is s conj(a_k) h_k. For each site, right-hand side and the
eight terms the kernel projects the neighbour spinor to the half-spinor h, multiplies
it by the link (or its adjoint) and reconstructs into the site's output, all in
registers and in the precision of the fields (fastmath off, so the result equals the
torch kernel to rounding). Compiled once per precision and cached in __pycache__.
``numba`` is the optional extra ``npfm[fast]``; without it AVAILABLE is False and
WilsonDirac keeps its torch kernel.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

AVAILABLE = importlib.util.find_spec("numba") is not None  # the optional extra npfm[fast]
if AVAILABLE:
    from numba import njit, prange


def _jit(parallel: bool = False, inline: Literal["never", "always"] = "never"
         ) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit (cached, IEEE arithmetic) when numba is installed, else the function;
    the helpers are inlined into their callers (numba otherwise calls them)."""
    if not AVAILABLE:
        return lambda func: func
    return njit(cache=True, fastmath=False, parallel=parallel, inline=inline)


@_jit()
def _times(re: float, im: float, imag: bool, sign: int) -> tuple[float, float]:
    """(re + i im) times sign (+1 or -1), or times sign * i when ``imag``."""
    if imag:
        return (-im, re) if sign > 0 else (im, -re)
    return (re, im) if sign > 0 else (-re, -im)


@_jit()
def _half(psi: Any, y: int, b: int, k: int, p: int, c: int, imag: bool, sign: int
          ) -> tuple[float, float]:
    """Colour c of the projected row h_k = psi_k + sign (i) psi_{2 + p} at site y."""
    re, im = _times(psi[y, b, 2 + p, c, 0], psi[y, b, 2 + p, c, 1], imag, sign)
    return psi[y, b, k, c, 0] + re, psi[y, b, k, c, 1] + im


@_jit()
def _link(links: Any, mu: int, site: int, a: int, c: int, dag: bool) -> tuple[float, float]:
    """Element (a, c) of U_mu(site), or of its adjoint when ``dag``."""
    if dag:
        return links[mu, site, c, a, 0], -links[mu, site, c, a, 1]
    return links[mu, site, a, c, 0], links[mu, site, a, c, 1]


@_jit(inline="always")
def _row(out: Any, psi: Any, links: Any, x: int, y: int, site: int, mu: int, b: int,
         dag: bool, k: int, p: int, imag: bool, sign: int) -> None:
    """Add row k of (1 + s gamma_mu) M psi(y) and its partner row 2 + p to out[x, b]:
    M = U_mu(site) or its adjoint, sign = s times the sign of a_k."""
    h0r, h0i = _half(psi, y, b, k, p, 0, imag, sign)
    h1r, h1i = _half(psi, y, b, k, p, 1, imag, sign)
    h2r, h2i = _half(psi, y, b, k, p, 2, imag, sign)
    for a in range(3):
        u0r, u0i = _link(links, mu, site, a, 0, dag)
        u1r, u1i = _link(links, mu, site, a, 1, dag)
        u2r, u2i = _link(links, mu, site, a, 2, dag)
        cr = u0r * h0r - u0i * h0i + u1r * h1r - u1i * h1i + u2r * h2r - u2i * h2i
        ci = u0r * h0i + u0i * h0r + u1r * h1i + u1i * h1r + u2r * h2i + u2i * h2r
        out[x, b, k, a, 0] += cr
        out[x, b, k, a, 1] += ci
        # s conj(a_k) = sign for a real a_k, -sign i for an imaginary one
        rr, ri = _times(cr, ci, imag, -sign if imag else sign)
        out[x, b, 2 + p, a, 0] += rr
        out[x, b, 2 + p, a, 1] += ri


@_jit(inline="always")
def _direction(out: Any, psi: Any, links: Any, x: int, b: int, mu: int, up: int, down: int,
               p0: int, i0: bool, g0: int, p1: int, i1: bool, g1: int) -> None:
    """Both terms of direction mu at site x, with A_mu[k, p_k] = g_k (i if i_k) and
    neighbours up = x + mu, down = x - mu."""
    _row(out, psi, links, x, up, x, mu, b, False, 0, p0, i0, -g0)  # (1 - g_mu) U_mu(x)
    _row(out, psi, links, x, up, x, mu, b, False, 1, p1, i1, -g1)
    _row(out, psi, links, x, down, down, mu, b, True, 0, p0, i0, g0)  # (1 + g_mu) U^dag
    _row(out, psi, links, x, down, down, mu, b, True, 1, p1, i1, g1)


@_jit()
def _slice(out: Any, psi: Any, links: Any, t: int, shape: tuple[int, int, int, int],
           scale: Any) -> None:
    """The hopping term on the sites of time slice t; ``scale`` (-1/2, in the fields'
    precision) multiplies the sum."""
    nt, nz, ny, nx = shape
    tp, tm = (t + 1) % nt, (t - 1 + nt) % nt
    for z in range(nz):
        zp, zm = (z + 1) % nz, (z - 1 + nz) % nz
        for y in range(ny):
            yp, ym = (y + 1) % ny, (y - 1 + ny) % ny
            row = ((t * nz + z) * ny + y) * nx
            up_t, down_t = ((tp * nz + z) * ny + y) * nx, ((tm * nz + z) * ny + y) * nx
            up_z, down_z = ((t * nz + zp) * ny + y) * nx, ((t * nz + zm) * ny + y) * nx
            up_y, down_y = ((t * nz + z) * ny + yp) * nx, ((t * nz + z) * ny + ym) * nx
            for ix in range(nx):
                x = row + ix
                xp = x + 1 if ix < nx - 1 else row
                xm = x - 1 if ix > 0 else row + nx - 1
                for b in range(psi.shape[1]):
                    out[x, b] = 0
                    # A_x = [[0, i], [i, 0]], A_y = [[0, -1], [1, 0]],
                    # A_z = [[i, 0], [0, -i]], A_t = 1
                    _direction(out, psi, links, x, b, 0, xp, xm, 1, True, 1, 0, True, 1)
                    _direction(out, psi, links, x, b, 1, up_y + ix, down_y + ix,
                               1, False, -1, 0, False, 1)
                    _direction(out, psi, links, x, b, 2, up_z + ix, down_z + ix,
                               0, True, 1, 1, True, -1)
                    _direction(out, psi, links, x, b, 3, up_t + ix, down_t + ix,
                               0, False, 1, 1, False, 1)
                    for s in range(4):
                        for c in range(3):
                            out[x, b, s, c, 0] *= scale
                            out[x, b, s, c, 1] *= scale


@_jit()
def _hop_serial(out: Any, psi: Any, links: Any, shape: tuple[int, int, int, int],
                scale: Any) -> None:
    """All time slices, one after the other."""
    for t in range(shape[0]):
        _slice(out, psi, links, t, shape, scale)


@_jit(parallel=True)
def _hop_parallel(out: Any, psi: Any, links: Any, shape: tuple[int, int, int, int],
                  scale: Any) -> None:
    """The time slices shared among numba's threads (NUMBA_NUM_THREADS)."""
    for t in prange(shape[0]):
        _slice(out, psi, links, t, shape, scale)


def hop(links: torch.Tensor, psi: torch.Tensor, parallel: bool = False) -> torch.Tensor:
    """H psi for CPU links (4, T, Z, Y, X, 3, 3) and psi (T, Z, Y, X, [B,] 4, 3) of the
    same complex dtype; a new contiguous tensor of psi's shape. ``parallel`` shares the
    time slices among numba's threads."""
    if not AVAILABLE:
        raise RuntimeError("the compiled hopping term needs numba (pip install 'npfm[fast]')")
    if links.device.type != "cpu" or psi.device.type != "cpu":
        raise ValueError("the compiled hopping term runs on CPU tensors only")
    if psi.dtype != links.dtype or links.dtype not in (torch.complex128, torch.complex64):
        raise TypeError(f"links {links.dtype} and psi {psi.dtype}: need one complex dtype")
    shape = tuple(links.shape[1:5])
    volume = shape[0] * shape[1] * shape[2] * shape[3]
    field = psi.detach().contiguous().reshape(volume, -1, 4, 3)
    out = torch.empty_like(field)
    scale = np.float64(-0.5) if psi.dtype == torch.complex128 else np.float32(-0.5)
    kernel = _hop_parallel if parallel else _hop_serial
    kernel(torch.view_as_real(out).numpy(), torch.view_as_real(field).numpy(),
           torch.view_as_real(links.detach().contiguous()).reshape(4, volume, 3, 3, 2)
           .numpy(), shape, scale)
    return out.reshape(psi.shape)
