"""The Wilson hopping term as a compiled pass vectorised across sites (numba, optional).

    H psi(x) = -1/2 sum_mu [(1 - gamma_mu) U_mu(x) psi(x + mu)
                            + (1 + gamma_mu) U_mu(x - mu)^dag psi(x - mu)]

in the conventions of npfm.lqcd.dirac (DeGrand-Rossi gamma matrices, (T, Z, Y, X, [B,]
4, 3) fields; the boundary conditions are carried by the links it is given). In that
basis gamma_mu = [[0, A_mu], [A_mu^dag, 0]] with A_mu a 2 x 2 permutation with phases,
A_mu[k, p_k] = a_k in {+-1, +-i}, so for s = +-1

    (1 + s gamma_mu) psi = (h_0, h_1, ...) with h_k = psi_k + s a_k psi_{2 + p_k}

and row 2 + p_k of the result is s conj(a_k) h_k.

Layout (structure of arrays, real): the sites of one (t, z) plane, y X + x, are cut into
chunks of LANES sites, and within a chunk each component is a contiguous row of LANES
lanes, so the kernel's inner loop is an elementwise loop over the lanes, which LLVM
vectorises (one site per SIMD lane; the rows sit at fixed offsets, so LLVM's runtime
alias checks stay few). psi becomes planes (T, Z, B, chunks, 24 x LANES), component
(spin, colour, re/im) = 24, and, for the plane being computed, its copies shifted by +x,
-x, +y, -y, (B, chunks, 4 x 24 x LANES), so the neighbours of a lane sit at the same lane,
wrap-round included; the neighbours in z and t are the same chunk of another plane. The
links become (T, Z, chunks, 8 x 18 x LANES): U_mu(x) and U_mu(x - mu)^dag as terms 2 mu
and 2 mu + 1, (row, column, re/im) = 18, laid out once per operator (Hopping). psi in and
H psi out are converted by compiled passes inside every call, a time slice ahead of the
kernel.
Padding lanes (Y X not a multiple of LANES) compute values that are never read back.
Arithmetic in the fields' precision, fastmath off (no fused multiply-adds), so the result
equals the torch kernel to rounding. Compiled once per precision (about a minute) and
cached in __pycache__. ``numba`` is the optional extra ``npfm[fast]``; without it
AVAILABLE is False and WilsonDirac keeps its torch kernel.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from npfm.lqcd.su3 import NDIM, dagger, shift

AVAILABLE = importlib.util.find_spec("numba") is not None  # the optional extra npfm[fast]
if AVAILABLE:
    from numba import njit

LANES = 16  # sites of a plane per chunk: the length of the vectorised inner loop
# A_mu[k, p_k] = g_k (times i when imag_k) as (p_0, imag_0, g_0, p_1, imag_1, g_1), mu = x,
# y, z, t: A_x = [[0, i], [i, 0]], A_y = [[0, -1], [1, 0]], A_z = [[i, 0], [0, -i]], A_t = 1


def _jit(inline: Literal["never", "always"] = "never") -> Callable[[Callable[..., Any]], Any]:
    """numba.njit (cached, IEEE arithmetic) when numba is installed, else the function;
    the helpers are inlined into their callers (numba otherwise calls them)."""
    if not AVAILABLE:
        return lambda func: func
    return njit(cache=True, fastmath=False, inline=inline)


@_jit(inline="always")
def _times(re: Any, im: Any, imag: bool, sign: int) -> tuple[Any, Any]:
    """(re + i im) times sign (+1 or -1), or times sign * i when ``imag``."""
    if imag:
        return (-im, re) if sign > 0 else (im, -re)
    return (re, im) if sign > 0 else (-re, -im)


@_jit(inline="always")
def _half(nb: Any, base: int, i: int, k: int, p: int, c: int, imag: bool, sign: int
          ) -> tuple[Any, Any]:
    """Colour c of h_k = psi_k + sign (i) psi_{2 + p} at lane i of the chunk nb[base:]."""
    re, im = _times(nb[base + (12 + 6 * p + 2 * c) * LANES + i],
                    nb[base + (13 + 6 * p + 2 * c) * LANES + i], imag, sign)
    return (nb[base + (6 * k + 2 * c) * LANES + i] + re,
            nb[base + (6 * k + 2 * c + 1) * LANES + i] + im)


@_jit(inline="always")
def _row(acc: Any, nb: Any, base: int, link: Any, term: int, i: int, a: int, k: int, p: int,
         imag: bool, sign: int) -> Any:
    """acc (spins 0-3 of colour a, re/im) plus colour a of rows k and 2 + p of
    (1 + s gamma_mu) M psi, M = link term ``term``, sign = s times the sign of a_k."""
    h0r, h0i = _half(nb, base, i, k, p, 0, imag, sign)
    h1r, h1i = _half(nb, base, i, k, p, 1, imag, sign)
    h2r, h2i = _half(nb, base, i, k, p, 2, imag, sign)
    row = (18 * term + 6 * a) * LANES + i
    u0r, u0i, u1r = link[row], link[row + LANES], link[row + 2 * LANES]
    u1i, u2r, u2i = link[row + 3 * LANES], link[row + 4 * LANES], link[row + 5 * LANES]
    cr = u0r * h0r - u0i * h0i + u1r * h1r - u1i * h1i + u2r * h2r - u2i * h2i
    ci = u0r * h0i + u0i * h0r + u1r * h1i + u1i * h1r + u2r * h2i + u2i * h2r
    # s conj(a_k) = sign for a real a_k, -sign i for an imaginary one
    rr, ri = _times(cr, ci, imag, -sign if imag else sign)
    a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i = acc
    if k == 0:
        a0r, a0i = a0r + cr, a0i + ci
    else:
        a1r, a1i = a1r + cr, a1i + ci
    if p == 0:
        a2r, a2i = a2r + rr, a2i + ri
    else:
        a3r, a3i = a3r + rr, a3i + ri
    return a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i


@_jit(inline="always")
def _direction(acc: Any, up: Any, up_base: int, down: Any, down_base: int, link: Any,
               mu: int, i: int, a: int, p0: int, i0: bool, g0: int, p1: int, i1: bool,
               g1: int) -> Any:
    """acc plus both terms of direction mu: (1 - g_mu) U_mu(x) psi(x + mu) from the chunk
    up[up_base:] and (1 + g_mu) U_mu(x - mu)^dag psi(x - mu) from down[down_base:]."""
    acc = _row(acc, up, up_base, link, 2 * mu, i, a, 0, p0, i0, -g0)
    acc = _row(acc, up, up_base, link, 2 * mu, i, a, 1, p1, i1, -g1)
    acc = _row(acc, down, down_base, link, 2 * mu + 1, i, a, 0, p0, i0, g0)
    return _row(acc, down, down_base, link, 2 * mu + 1, i, a, 1, p1, i1, g1)


@_jit(inline="always")
def _pass(o: Any, up: Any, up_base: int, down: Any, down_base: int, link: Any, mu: int,
          a: int, first: bool, scale: Any, p0: int, i0: bool, g0: int, p1: int, i1: bool,
          g1: int) -> None:
    """Direction mu's terms added to colour a of the chunk's output o (set by the first
    direction, scaled by the last): one elementwise loop over the lanes. One loop per
    direction keeps the pointers few enough for LLVM's runtime alias checks."""
    zero = scale - scale  # 0 in the fields' precision
    for i in range(LANES):
        row = 2 * a * LANES + i
        acc = (zero, zero, zero, zero, zero, zero, zero, zero) if first else (
            o[row], o[row + LANES], o[row + 6 * LANES], o[row + 7 * LANES],
            o[row + 12 * LANES], o[row + 13 * LANES], o[row + 18 * LANES],
            o[row + 19 * LANES])
        a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i = _direction(
            acc, up, up_base, down, down_base, link, mu, i, a, p0, i0, g0, p1, i1, g1)
        if mu == 3:  # the last direction
            a0r, a0i, a1r, a1i = scale * a0r, scale * a0i, scale * a1r, scale * a1i
            a2r, a2i, a3r, a3i = scale * a2r, scale * a2i, scale * a3r, scale * a3i
        o[row], o[row + LANES] = a0r, a0i
        o[row + 6 * LANES], o[row + 7 * LANES] = a1r, a1i
        o[row + 12 * LANES], o[row + 13 * LANES] = a2r, a2i
        o[row + 18 * LANES], o[row + 19 * LANES] = a3r, a3i


@_jit(inline="always")
def _chunk(out: Any, psi: Any, shifted: Any, links: Any, t: int, z: int, b: int, ch: int,
           scale: Any) -> None:
    """H psi on the LANES sites of chunk ch of plane (t, z), right-hand side b, into
    out (Z, B, chunks, 24 LANES); ``shifted`` holds the plane's shifted copies."""
    nt, nz = links.shape[0], links.shape[1]
    tp, tm, zp, zm = (t + 1) % nt, (t - 1 + nt) % nt, (z + 1) % nz, (z - 1 + nz) % nz
    o, lk, own = out[z, b, ch], links[t, z, ch], shifted[b, ch]
    zu, zd, tu, td = psi[t, zp, b, ch], psi[t, zm, b, ch], psi[tp, z, b, ch], psi[tm, z, b, ch]
    copy = 24 * LANES  # the copies shifted by +x, -x, +y, -y, one after the other
    for a in range(3):
        _pass(o, own, 0, own, copy, lk, 0, a, True, scale, 1, True, 1, 0, True, 1)
        _pass(o, own, 2 * copy, own, 3 * copy, lk, 1, a, False, scale,
              1, False, -1, 0, False, 1)
        _pass(o, zu, 0, zd, 0, lk, 2, a, False, scale, 0, True, 1, 1, True, -1)
        _pass(o, tu, 0, td, 0, lk, 3, a, False, scale, 0, False, 1, 1, False, 1)


@_jit(inline="always")
def _gather(dst: Any, offset: int, plane: Any, b: int, src: Any) -> None:
    """dst[offset + c LANES + l] = plane[src[l], b, c]: one chunk's 24 components."""
    for c in range(24):
        for lane in range(LANES):
            dst[offset + c * LANES + lane] = plane[src[lane], b, c]


@_jit(inline="always")
def _lay_out(planes: Any, field: Any, sources: Any, t: int) -> None:
    """Time slice t of field (T, Z, Y X, B, 24) into planes (T, Z, B, chunks, 24 LANES)."""
    for z in range(field.shape[1]):
        for b in range(field.shape[3]):
            for ch in range(sources.shape[1]):
                _gather(planes[t, z, b, ch], 0, field[t, z], b, sources[0, ch])


@_jit()
def _hop(out: Any, field: Any, sources: Any, planes: Any, shifted: Any, result: Any,
         links: Any, scale: Any) -> None:
    """out = H field, both (T, Z, Y X, B, 24), time slice by time slice: slice t + 1 laid
    out into planes just before slice t is computed into result (Z, B, chunks, 24 LANES)
    and copied out, and each plane's shifted copies just before the plane (into shifted,
    (B, chunks, 4 x 24 x LANES)), so the data in use stay in cache. sources[q, ch, l]: the
    site lane l of chunk ch of copy q reads (q = 0: psi, 1-4: shifted by +x, -x, +y, -y)."""
    nt, nz, sites, nb = field.shape[:4]
    _lay_out(planes, field, sources, nt - 1)
    _lay_out(planes, field, sources, 0)
    for t in range(nt):
        if t + 1 < nt - 1:
            _lay_out(planes, field, sources, t + 1)
        for z in range(nz):
            for b in range(nb):
                for ch in range(sources.shape[1]):
                    for q in range(1, 5):
                        _gather(shifted[b, ch], 24 * LANES * (q - 1), field[t, z], b,
                                sources[q, ch])
            for b in range(nb):
                for ch in range(sources.shape[1]):
                    _chunk(result, planes, shifted, links, t, z, b, ch, scale)
        for z in range(nz):
            for site in range(sites):
                for b in range(nb):
                    for c in range(24):
                        out[t, z, site, b, c] = result[z, b, site // LANES,
                                                       c * LANES + site % LANES]


class Hopping:
    """The compiled hopping term for CPU links (4, T, Z, Y, X, 3, 3), complex128 or
    complex64, laid out once for the kernel; call it on psi (T, Z, Y, X, [B,] 4, 3)."""

    def __init__(self, links: torch.Tensor) -> None:
        if not AVAILABLE:
            raise RuntimeError("the compiled hopping term needs numba "
                               "(pip install 'npfm[fast]')")
        if links.device.type != "cpu":
            raise ValueError("the compiled hopping term runs on CPU tensors only")
        if links.dtype not in (torch.complex128, torch.complex64):
            raise TypeError(f"links {links.dtype}: need complex128 or complex64")
        self.dtype = links.dtype
        self.site_shape = tuple(links.shape[1:5])
        nt, nz, ny, nx = self.site_shape
        links = links.detach()
        terms = torch.stack([m for mu in range(NDIM)
                             for m in (links[mu], dagger(shift(links[mu], mu, -1)))])
        self.chunks = -(-ny * nx // LANES)
        # (8, T, Z, Y, X, 3, 3, 2) -> (T, Z, 8, 18, Y X), padded to whole chunks with zeros
        flat = torch.view_as_real(terms).permute(1, 2, 0, 5, 6, 7, 3, 4)
        padded = flat.new_zeros((nt, nz, 2 * NDIM, 18, self.chunks * LANES))
        padded[..., :ny * nx] = flat.reshape(nt, nz, 2 * NDIM, 18, ny * nx)
        self.links = (padded.reshape(nt, nz, 2 * NDIM * 18, self.chunks, LANES)
                      .transpose(2, 3).reshape(nt, nz, self.chunks, -1).contiguous().numpy())
        # the site each lane of each copy reads: (5, chunks, LANES); padding lanes read site 0
        site = np.arange(self.chunks * LANES)
        y, x = site // nx % ny, site % nx
        self.sources = np.stack([y * nx + x, y * nx + (x + 1) % nx, y * nx + (x - 1) % nx,
                                 (y + 1) % ny * nx + x, (y - 1) % ny * nx + x])
        self.sources[:, site >= ny * nx] = 0
        self.sources = self.sources.reshape(5, self.chunks, LANES)
        real = np.float64 if self.dtype == torch.complex128 else np.float32
        self.scale = real(-0.5)
        self._work: tuple[np.ndarray, ...] | None = None

    def _workspace(self, nrhs: int) -> tuple[np.ndarray, ...]:
        """planes, shifted and result of _hop, reused (kept for the last B only)."""
        if self._work is None or self._work[2].shape[1] != nrhs:
            nt, nz = self.site_shape[:2]
            size = (nrhs, self.chunks, 24 * LANES)
            self._work = (np.zeros((nt, nz, *size), self.scale.dtype),
                          np.zeros((*size[:2], 4 * size[2]), self.scale.dtype),
                          np.zeros((nz, *size), self.scale.dtype))
        return self._work

    def __call__(self, psi: torch.Tensor) -> torch.Tensor:
        """H psi, a new contiguous tensor of psi's shape."""
        if psi.device.type != "cpu":
            raise ValueError("the compiled hopping term runs on CPU tensors only")
        if psi.dtype != self.dtype:
            raise TypeError(f"links {self.dtype} and psi {psi.dtype}: need one complex dtype")
        nt, nz, ny, nx = self.site_shape
        field = psi.detach().contiguous().reshape(nt, nz, ny * nx, -1, 12)
        out = torch.empty_like(field)
        real = (*field.shape[:4], 24)  # (T, Z, Y X, B, spin-colour-re/im)
        _hop(torch.view_as_real(out).numpy().reshape(real),
             torch.view_as_real(field).numpy().reshape(real), self.sources,
             *self._workspace(field.shape[3]), self.links, self.scale)
        return out.reshape(psi.shape)
