"""Compiled (numba) loops for the hottest array passes of the simulation, optional.

Each kernel fuses a chain of NumPy passes into one loop over the elements and performs the
same IEEE operations in the same order (``fastmath`` off, no contraction into fused
multiply-adds, NumPy's error model), so its results equal the NumPy code bit for bit.
Functions whose NumPy implementation differs in the last bit from the C library's on this
kind of CPU (NumPy dispatches ``log``, ``exp``, ``arctan2`` and ``power`` to its own SIMD
routines) stay outside the kernels: callers compute them with NumPy and pass the results
in. ``sin``, ``cos``, ``sqrt``, ``hypot``, ``floor`` and ``mod`` are the same in both.

``numba`` is the optional extra ``npfm[fast]``; without it AVAILABLE is False and the
callers keep their NumPy code. ``backend("numpy")`` forces the NumPy code (tests compare
the two). Compiled once and cached in ``__pycache__``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
AVAILABLE = importlib.util.find_spec("numba") is not None  # the optional extra npfm[fast]
BACKENDS = ("auto", "numpy", "numba")
_backend = ["auto"]
if AVAILABLE:
    from numba import njit


def jit(func: Callable[..., Any]) -> Any:
    """numba.njit (cached, IEEE arithmetic, NumPy's division semantics) when numba is
    installed, else the function."""
    if not AVAILABLE:
        return func
    return njit(cache=True, fastmath=False, error_model="numpy")(func)


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Within the block the simulation uses ``name``: "auto" (compiled when numba is
    installed), "numpy" or "numba" (an error without numba)."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {name!r}")
    if name == "numba" and not AVAILABLE:
        raise RuntimeError("the compiled kernels need numba (pip install 'npfm[fast]')")
    previous, _backend[0] = _backend[0], name
    try:
        yield
    finally:
        _backend[0] = previous


def compiled() -> bool:
    """Whether the simulation runs its compiled kernels now."""
    return AVAILABLE and _backend[0] != "numpy"


@jit
def crossing_arguments(x: Array, y: Array, px: Array, py: Array, kappa: Array,
                       radius: Array) -> tuple[Array, Array]:
    """The arguments (y, x) of the two arctan2 of ``helix.cylinder_crossing`` for radii
    (m, n) of particles (n): shape (2, 2, m, n), and the discriminant (m, n)."""
    m, n = radius.shape
    args, disc = np.empty((2, 2, m, n)), np.empty((m, n))
    for i in range(n):
        pt = np.hypot(px[i], py[i])
        a = (x[i] * px[i] + y[i] * py[i]) / pt
        b = (y[i] * px[i] - x[i] * py[i]) / pt
        for j in range(m):
            delta = radius[j, i] * radius[j, i] - (x[i] * x[i] + y[i] * y[i])
            quad = 1.0 + kappa[i] * b - 0.25 * kappa[i] * kappa[i] * delta
            d = disc[j, i] = a * a + quad * delta
            q = -(a + np.copysign(np.sqrt(d), a))
            args[0, 0, j, i], args[1, 0, j, i] = kappa[i] * q, 2.0 * quad
            args[0, 1, j, i], args[1, 1, j, i] = -kappa[i] * delta, 2.0 * q
    return args, disc


@jit
def _mod(a: float, b: float) -> float:
    """np.mod(a, b) for b != 0 (NumPy's npy_remainder: the exact fmod, moved to b's sign)."""
    near = 0.0 < b < np.inf and -b < a < 2.0 * b  # the crossings' case, without a division
    mod = (a - b if a >= b else a) if near else np.fmod(a, b)  # exact (Sterbenz if a >= b)
    if mod == 0.0:
        return np.copysign(0.0, b)
    return mod + b if (b < 0.0) != (mod < 0.0) else mod


@jit
def crossing_lengths(angle: Array, disc: Array, kappa: Array, tol: float) -> Array:
    """``helix.cylinder_crossing`` from the arctan2 of ``crossing_arguments``."""
    m, n = disc.shape
    s = np.empty((m, n))
    for i in range(n):
        period, two_over_kappa = 2.0 * np.pi / np.abs(kappa[i]), 2.0 / kappa[i]
        for j in range(m):
            if not disc[j, i] >= 0.0:  # never reaches the radius (fmod of NaN is slow)
                s[j, i] = np.inf
                continue
            s1 = _mod(angle[0, j, i] * two_over_kappa, period)
            s2 = _mod(angle[1, j, i] * two_over_kappa, period)
            s1 += period * (1.0 if s1 <= tol else 0.0)
            s2 += period * (1.0 if s2 <= tol else 0.0)
            if s1 != s1 or s2 != s2:  # np.minimum propagates NaN
                s[j, i] = np.nan
            else:
                s[j, i] = min(s1, s2)
    return s


@jit
def nan_minimum(a: float, b: float) -> float:
    """np.minimum of two numbers (NaN if either is)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@jit
def advance_point(x: float, y: float, z: float, px: float, py: float, pz: float,
                  kappa: float, s: float) -> tuple[float, float, float, float, float]:
    """``helix.advance`` of one point: x y z px py after the arc length ``s``."""
    pt = np.hypot(px, py)
    psi = kappa * s
    c, sn, half = np.cos(psi), np.sin(psi), np.sin(0.5 * psi)
    along = sn / kappa / pt
    across = 2.0 * half * half / kappa / pt
    return (x + along * px - across * py, y + along * py + across * px, z + s * pz / pt,
            c * px - sn * py, sn * px + c * py)


_INT64_MIN = np.iinfo(np.int64).min


@jit
def _cell(c: float) -> int:
    """np.nan_to_num(c, posinf=0.0).astype(np.int64) (x86: out of range -> INT64_MIN)."""
    if c != c or c == np.inf:
        return 0
    if not -9.223372036854775808e18 <= c < 9.223372036854775808e18:
        return _INT64_MIN
    return int(c)


@jit
def place(floats: Array, ints: npt.NDArray[np.int64], codes: npt.NDArray[np.int64],
          layer: npt.NDArray[np.int64], phi: Array, v: Array, z: Array, t: Array, edep: Array,
          gauss: Array, smear: bool) -> tuple[Array, npt.NDArray[np.int64]]:
    """``digitize._place`` for given standard normals ``gauss`` (2, n). ``floats``: per-layer
    rows radius r_min r_max half_length res_u res_v diffusion_t2 diffusion_l2 pitch_u
    pitch_v drift_velocity adc_gev; ``ints``: is_disk readout modules layer adc_bits;
    ``codes``: the strip, pad and wire readout codes. Returns rows x y z t and adc module
    row col."""
    strip, pad, wire = codes[0], codes[1], codes[2]
    n = len(layer)
    out, cells = np.empty((4, n)), np.empty((4, n), np.int64)
    two_pi = 2.0 * np.pi
    for i in range(n):
        ly = layer[i]
        radius, r_min, r_max, half = floats[0, ly], floats[1, ly], floats[2, ly], floats[3, ly]
        res_u, res_v, diff_t2, diff_l2 = floats[4, ly], floats[5, ly], floats[6, ly], floats[7, ly]
        pitch_u, pitch_v, speed = floats[8, ly], floats[9, ly], floats[10, ly]
        adc_gev = floats[11, ly]
        disk, kind, n_mod, own, bits = (ints[0, ly] != 0, ints[1, ly], ints[2, ly], ints[3, ly],
                                        ints[4, ly])
        vi = v[i]
        radius = vi if disk else radius
        v_low, v_high = (r_min, r_max) if disk else (-half, half)
        drift = half - np.abs(z[i]) if kind == pad else 0.0
        ph = phi[i]
        if smear:
            ph = ph + np.sqrt(res_u * res_u + diff_t2 * drift) * gauss[0, i] / radius
            vi = vi + np.sqrt(res_v * res_v + diff_l2 * drift) * gauss[1, i]
        if kind == strip:
            vi = v_low + (np.floor((vi - v_low) / pitch_v) + 0.5) * pitch_v
        if vi < v_low:  # np.clip
            vi = v_low
        elif vi > v_high:
            vi = v_high
        ph = _mod(ph, two_pi)
        module = min(int(ph * n_mod / two_pi), n_mod - 1)
        u_cell = _cell(np.floor(radius * (ph - module * 2.0 * np.pi / n_mod) / pitch_u))
        v_cell = _cell(np.floor((vi - v_low) / pitch_v))
        if kind == strip:
            cells[2, i], cells[3, i] = v_cell, u_cell
        elif kind in (pad, wire):
            cells[2, i], cells[3, i] = own, (u_cell if kind == pad else module)
        else:
            cells[2, i], cells[3, i] = u_cell, v_cell
        cells[1, i] = module + n_mod if kind == pad and vi < 0 else module
        z_out = z[i] if disk else vi
        extra = (half - np.abs(z_out)) / speed if kind == pad else 0.0
        r_out = vi if disk else radius
        adc, adc_max = np.rint(edep[i] / adc_gev), float(2 ** bits - 1)
        adc = 1.0 if adc < 1.0 else (adc_max if adc > adc_max else adc)  # np.clip
        cells[0, i] = _cell(adc) if adc == adc else _INT64_MIN
        out[0, i], out[1, i] = r_out * np.cos(ph), r_out * np.sin(ph)
        out[2, i], out[3, i] = z_out, t[i] + extra
    return out, cells


@jit
def collision_bases(counts: npt.NDArray[np.int64], lo: Array, hi: Array, inv_g: Array,
                    u: Array) -> tuple[Array, Array]:
    """``material.collision_deposit``'s inverse-CDF bases (1 - u) lo + u hi and exponents
    1 / g of each collision, the collisions of deposit i being ``counts[i]`` consecutive
    entries of ``u`` (replaces ``np.repeat`` and three gathers)."""
    base, power = np.empty(len(u)), np.empty(len(u))
    j = 0
    for i in range(len(counts)):
        for _ in range(counts[i]):
            base[j] = (1.0 - u[j]) * lo[i] + u[j] * hi[i]
            power[j] = inv_g[i]
            j += 1
    return base, power


@jit
def segment_sums(counts: npt.NDArray[np.int64], values: Array) -> Array:
    """Sums of consecutive runs of ``counts[i]`` values, added in order from 0.0 (equal to
    ``np.bincount(np.repeat(arange, counts), weights=values)``)."""
    out = np.zeros(len(counts))
    j = 0
    for i in range(len(counts)):
        total = 0.0
        for _ in range(counts[i]):
            total += values[j]
            j += 1
        out[i] = total
    return out
