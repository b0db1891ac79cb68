"""Compiled (numba) passes of a propagation step, bit-identical to the NumPy code of
``npfm.detectors.propagate`` (see ``npfm.detectors.kernels``): the crossing rows (two
passes around NumPy's ``log``, which differs from the C library's in the last bit), the
assembly of a step's crossings with their first-order kinks and losses, and its records.
Units as in ``npfm.detectors.material``: GeV, cm, g/cm^2, MeV for the mean excitation
energy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from npfm.detectors.kernels import advance_point, jit, nan_minimum
from npfm.detectors.material import ELECTRON_MEV, HIGHLAND_LOG, HIGHLAND_MEV, K_MEV_CM2

Array = npt.NDArray[np.float64]
#: rows of the per-layer table ``crossing_geometry`` reads
LAYER_ROWS = ("half_length", "r_min", "r_max", "is_disk", "x_over_x0")


@jit
def crossing_geometry(start: Array, kinematics: Array, s: Array,
                      layer: npt.NDArray[np.int64], table: Array, cap: Array,
                      mean_excitation: Array, z_max: float, turn_limit: float,
                      cos_min: float) -> tuple[Array, npt.NDArray[np.bool_], Array]:
    """Rows 0-9 (x y z px py pz s layer on xx0) of the crossings at arc lengths ``s``
    (m, n) of particles with state ``start`` (x y z px py pz t turn q m, n) and
    ``kinematics`` (pT p kappa); whether each happens; the arguments (2, m, n) of the
    logarithms of ``highland`` and ``bethe_mean``. ``table``: rows ``LAYER_ROWS``. With
    ``cos_min`` > 0 a crossing also needs |cos| of its transverse incidence >= cos_min."""
    m, n = s.shape
    rows, inside, args = np.empty((13, m, n)), np.empty((m, n), np.bool_), np.empty((2, m, n))
    for i in range(n):
        x0, y0, z0, px0, py0, pz0 = start[0, i], start[1, i], start[2, i], start[3, i], \
            start[4, i], start[5, i]
        turn0, q0, m0 = start[7, i], start[8, i], start[9, i]
        pt0, p0, kappa0 = kinematics[0, i], kinematics[1, i], kinematics[2, i]
        bg2 = (p0 / m0) * (p0 / m0)
        b2 = bg2 / (1.0 + bg2)
        ratio = ELECTRON_MEV / (m0 * 1e3)
        tmax = 2.0 * ELECTRON_MEV * bg2 / (1.0 + 2.0 * np.sqrt(1.0 + bg2) * ratio + ratio * ratio)
        for j in range(m):
            sj, ly = s[j, i], layer[j, i]
            cx, cy, cz, cpx, cpy = advance_point(x0, y0, z0, px0, py0, pz0, kappa0, sj)
            lc = max(ly, 0)
            cr = np.hypot(cx, cy)
            ins = ly >= 0 and np.abs(cz) <= z_max and np.abs(kappa0) * sj + turn0 <= turn_limit
            radial = cx * cpx + cy * cpy
            if table[3, lc] != 0.0:  # disk
                on = ins and cr >= table[1, lc] and cr <= table[2, lc]
                factor = nan_minimum(np.abs(p0 / pz0), cap[lc])
            else:
                on = ins and np.abs(cz) <= table[0, lc]
                factor = nan_minimum(np.abs(cr * p0 / radial), cap[lc])
            if cos_min > 0.0:  # (after ``on``, as in the NumPy code)
                ins = ins and np.abs(radial) >= cos_min * cr * pt0
            xx0 = table[4, lc] * factor * (1.0 if on else 0.0)
            rows[0, j, i], rows[1, j, i], rows[2, j, i] = cx, cy, cz
            rows[3, j, i], rows[4, j, i], rows[5, j, i] = cpx, cpy, pz0
            rows[6, j, i], rows[7, j, i], rows[8, j, i], rows[9, j, i] = sj, ly, on, xx0
            inside[j, i] = ins
            arg = xx0 * (q0 * q0) / b2
            args[0, j, i] = arg if arg != arg or arg >= 1e-300 else 1e-300  # np.maximum
            args[1, j, i] = 2.0 * ELECTRON_MEV * bg2 * tmax / (
                mean_excitation[lc] * mean_excitation[lc])
    return rows, inside, args


@jit
def crossing_losses(rows: Array, logs: Array, start: Array, kinematics: Array,
                    layer_loss: Array, multiple_scattering: bool, energy_loss: bool,
                    linear_max_kink: float) -> npt.NDArray[np.bool_]:
    """Rows 10-12 (theta0, dE, dp) of ``crossing_geometry``'s rows, in place, from the
    logarithms of its arguments; returns whether each kink and loss is small enough for
    the first-order treatment. ``layer_loss``: rows z_over_a, x0_g_cm2 by layer."""
    m, n = rows.shape[1], rows.shape[2]
    small = np.empty((m, n), np.bool_)
    for i in range(n):
        q0, m0 = start[8, i], start[9, i]
        pt0, p0 = kinematics[0, i], kinematics[1, i]
        bg2 = (p0 / m0) * (p0 / m0)
        b2 = bg2 / (1.0 + bg2)
        scale = HIGHLAND_MEV * 1e-3 / (np.sqrt(b2) * p0)
        dip2 = (p0 / pt0) * (p0 / pt0)
        for j in range(m):
            lc = max(int(rows[7, j, i]), 0)
            xx0 = rows[9, j, i]
            theta0 = scale * np.sqrt(q0 * q0 * xx0) * (1.0 + HIGHLAND_LOG * logs[0, j, i]) \
                if multiple_scattering else 0.0
            de = K_MEV_CM2 * (q0 * q0) * layer_loss[0, lc] / b2 * (0.5 * logs[1, j, i] - b2) \
                * xx0 * layer_loss[1, lc] * 1e-3 if energy_loss else 0.0
            dp = de * np.sqrt(p0 * p0 + m0 * m0) / p0
            rows[10, j, i], rows[11, j, i], rows[12, j, i] = theta0, de, dp
            small[j, i] = theta0 * dip2 < linear_max_kink and dp < linear_max_kink * p0
    return small


@jit
def record_step(rows: Array, length: npt.NDArray[np.int64], particle: npt.NDArray[np.int64],
                t: Array, energy: Array, speed: Array, sensitive: npt.NDArray[np.bool_]
                ) -> tuple[Array, Array, Array]:
    """``propagate``'s records of a step: the recorded crossings (rows particle layer x y z
    px py pz t, in the order of ``np.nonzero`` over (crossing, particle)), each particle's
    rows at the end of its step and the time there; ``speed`` = pT c (cm GeV/ns)."""
    k, n = rows.shape[1], rows.shape[2]
    count = 0
    for j in range(k):
        for i in range(n):
            if j < length[i] and rows[8, j, i] > 0 and sensitive[max(int(rows[7, j, i]), 0)]:
                count += 1
    rec = np.empty((9, count))
    c = 0
    for j in range(k):
        for i in range(n):
            if j < length[i] and rows[8, j, i] > 0 and sensitive[max(int(rows[7, j, i]), 0)]:
                rec[0, c], rec[1, c] = particle[i], float(int(rows[7, j, i]))
                for a in range(6):
                    rec[2 + a, c] = rows[a, j, i]
                rec[8, c] = t[i] + rows[6, j, i] * energy[i] / speed[i]
                c += 1
    ends, t_end = np.empty((rows.shape[0], n)), np.empty(n)
    for i in range(n):
        j = max(length[i] - 1, 0)
        ends[:, i] = rows[:, j, i]
        t_end[i] = t[i] + rows[6, j, i] * energy[i] / speed[i]
    return rec, ends, t_end


@jit
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


@jit
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
