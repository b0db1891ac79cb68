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


def _jit(func: Callable[..., Any]) -> Any:
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


@_jit
def _first_order_column(rows: Array, i: int, x: float, y: float, px: float, py: float,
                        pz: float, kap: float, length: int, normal: Array, cube: Array,
                        fifth: Array) -> None:
    """``propagate._first_order`` for particle column ``i`` of ``rows`` (13, k, n), in place
    (rows 0-5 from rows 0-4, 6, 10, 12), given its standard normals (2, k) and psi^3, psi^5
    (k; psi = kappa s, by NumPy); the prefix sums are carried in registers."""
    pt = np.hypot(px, py)
    p = np.hypot(pt, pz)
    slope, dip = pz / pt, p / pt
    two_pi, eps = 2.0 * np.pi, np.finfo(np.float64).eps
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = 0.0  # cumulative sums of the terms
    for j in range(min(length, rows.shape[1])):  # later crossings are not recorded
        cx, cy, cz, cpx, cpy, s = (rows[0, j, i], rows[1, j, i], rows[2, j, i], rows[3, j, i],
                                   rows[4, j, i], rows[6, j, i])
        lin = 1.0 if j < length - 1 else 0.0
        kink0 = normal[0, j] * rows[10, j, i] * lin
        kink1 = normal[1, j] * rows[10, j, i] * lin
        dp_lin = rows[12, j, i] * lin
        dphi, dslope = kink0 * dip, kink1 * dip * dip
        dkappa = kap * (dp_lin / p + slope * kink1)
        rx, ry = cx - x, cy - y
        psi = kap * s
        arg = np.pi * (psi / two_pi)  # np.sinc(psi / 2 pi)
        arg = arg if arg != 0.0 else eps
        sinc = np.sin(arg) / arg
        f = 0.5 * s * s * (sinc * sinc)
        if np.abs(psi) < 0.1:
            ratio = psi / 6.0 - cube[j] / 120.0 + fifth[j] / 5040.0
        else:
            ratio = (psi - np.sin(psi)) / (psi * psi)
        g = s * s * ratio
        qx, qy = (f * px - g * py) / pt, (f * py + g * px) / pt
        t0, t1, t2, t3, t4 = dphi, dphi * rx, dphi * ry, dkappa, dkappa * s
        t5, t6, t7, t8, t9 = dkappa * qx, dkappa * qy, dslope, dslope * s, dp_lin
        c0, c1, c2, c3, c4 = c0 + t0, c1 + t1, c2 + t2, c3 + t3, c4 + t4
        c5, c6, c7, c8, c9 = c5 + t5, c6 + t6, c7 + t7, c8 + t8, c9 + t9
        phi_sum, phi_rx, phi_ry, kap_sum, kap_s = c0 - t0, c1 - t1, c2 - t2, c3 - t3, c4 - t4
        kap_qx, kap_qy, slope_sum, slope_s, dp_sum = c5 - t5, c6 - t6, c7 - t7, c8 - t8, c9 - t9
        wx = rx * phi_sum - phi_rx + rx * (s * kap_sum - kap_s) - qx * kap_sum + kap_qx
        wy = ry * phi_sum - phi_ry + ry * (s * kap_sum - kap_s) - qy * kap_sum + kap_qy
        radial = cx * cpx + cy * cpy
        slide = (wy * cx - wx * cy) * pt / radial if j > 0 else 0.0
        omega = phi_sum + s * kap_sum - kap_s + kap * slide
        slope_k = slope + slope_sum
        pt_k = (p - dp_sum) / np.sqrt(1.0 + slope_k * slope_k)
        cos_o, sin_o = np.cos(omega) * pt_k / pt, np.sin(omega) * pt_k / pt
        rows[0, j, i] = cx - wy + cpx / pt * slide
        rows[1, j, i] = cy + wx + cpy / pt * slide
        rows[2, j, i] = cz + s * slope_sum - slope_s + slope * slide
        rows[3, j, i] = cos_o * cpx - sin_o * cpy
        rows[4, j, i] = sin_o * cpx + cos_o * cpy
        rows[5, j, i] = slope_k * pt_k


@_jit
def step_rows(rows: Array, rows_more: Array, ext: npt.NDArray[np.int64], k: int, x: Array,
              y: Array, px: Array, py: Array, pz: Array, kappa: Array,
              length: npt.NDArray[np.int64], normal: Array, powers: Array,
              radius: Array) -> Array:
    """The crossing rows (13, k, n) of a propagation step: each particle's first crossing
    (``rows``, (13, 1, n)) repeated, the further crossings ``rows_more`` (13, >= k - 1,
    len(ext)) of the particles ``ext`` after it, their first-order kinks and losses applied
    (``_first_order_column``) and the points slid exactly onto their cylinders (``radius``
    by layer), as the NumPy code of ``propagate`` does with copies. Only the crossings
    before ``length`` are corrected: the step records no later ones and ends before them."""
    n_rows, n = rows.shape[0], rows.shape[2]
    out = np.empty((n_rows, k, n))
    for a in range(n_rows):
        for j in range(k):
            out[a, j, :] = rows[a, 0, :]
    for e in range(len(ext)):
        i = ext[e]
        for a in range(n_rows):
            for j in range(1, k):
                out[a, j, i] = rows_more[a, j - 1, e]
        if k > 1:
            _first_order_column(out, i, x[i], y[i], px[i], py[i], pz[i], kappa[i], length[i],
                                normal[:, :, e], powers[0, :, e], powers[1, :, e])
            for j in range(1, min(length[i], k)):
                layer = int(out[7, j, i])
                onto = radius[layer if layer >= 0 else layer + len(radius)] / np.hypot(
                    out[0, j, i], out[1, j, i])
                out[0, j, i] *= onto
                out[1, j, i] *= onto
    return out


@_jit
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


@_jit
def _mod(a: float, b: float) -> float:
    """np.mod(a, b) for b != 0 (NumPy's npy_remainder: the exact fmod, moved to b's sign)."""
    near = 0.0 < b < np.inf and -b < a < 2.0 * b  # the crossings' case, without a division
    mod = (a - b if a >= b else a) if near else np.fmod(a, b)  # exact (Sterbenz if a >= b)
    if mod == 0.0:
        return np.copysign(0.0, b)
    return mod + b if (b < 0.0) != (mod < 0.0) else mod


@_jit
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


@_jit
def _minimum(a: float, b: float) -> float:
    """np.minimum of two numbers (NaN if either is)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@_jit
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


@_jit
def advance(x: Array, y: Array, z: Array, px: Array, py: Array, pz: Array, kappa: Array,
            s: Array) -> Array:
    """``helix.advance`` for arc lengths (m, n) of particles (n): rows x y z px py."""
    m, n = s.shape
    out = np.empty((5, m, n))
    for i in range(n):
        for j in range(m):
            out[0, j, i], out[1, j, i], out[2, j, i], out[3, j, i], out[4, j, i] = \
                advance_point(x[i], y[i], z[i], px[i], py[i], pz[i], kappa[i], s[j, i])
    return out


_INT64_MIN = np.iinfo(np.int64).min


@_jit
def _cell(c: float) -> int:
    """np.nan_to_num(c, posinf=0.0).astype(np.int64) (x86: out of range -> INT64_MIN)."""
    if c != c or c == np.inf:
        return 0
    if not -9.223372036854775808e18 <= c < 9.223372036854775808e18:
        return _INT64_MIN
    return int(c)


@_jit
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
