"""Compiled (numba) crossing rows of a propagation step: ``propagate``'s ``crossings`` in
two passes around NumPy's ``log`` (which differs from the C library's in the last bit),
bit-identical to the NumPy code (see ``npfm.detectors.kernels``). Units as in
``npfm.detectors.material``: GeV, cm, g/cm^2, MeV for the mean excitation energy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from npfm.detectors.kernels import _jit, _minimum, advance_point
from npfm.detectors.material import ELECTRON_MEV, HIGHLAND_LOG, HIGHLAND_MEV, K_MEV_CM2

Array = npt.NDArray[np.float64]
#: rows of the per-layer table ``crossing_geometry`` reads
LAYER_ROWS = ("half_length", "r_min", "r_max", "is_disk", "x_over_x0")


@_jit
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
                factor = _minimum(np.abs(p0 / pz0), cap[lc])
            else:
                on = ins and np.abs(cz) <= table[0, lc]
                factor = _minimum(np.abs(cr * p0 / radial), cap[lc])
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


@_jit
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


@_jit
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
