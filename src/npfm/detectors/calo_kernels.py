"""Compiled (numba) passes of the calorimeter cell simulation, optional.

Same rules as ``npfm.detectors.kernels``: each kernel performs the IEEE operations of the
NumPy code in ``npfm.detectors.calorimeter`` in the same order, so the results are equal
bit for bit; random numbers, ``arcsinh`` and ``arctan2`` come from NumPy and are passed in.
The callers use them when ``kernels.compiled()``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from npfm.detectors.kernels import jit

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
C_CM_PER_NS = 29.9792458


@jit
def place(depth: Array, owner: Ints, cum: Array, d_in: Array, unit: Array
          ) -> tuple[Ints, Array]:
    """``calorimeter._place``: calorimeter index (K where it leaked) and path distance
    (cm, NaN where it leaked) of spots at ``depth``; ``cum`` (n, K) cumulative depths."""
    n_calo = len(unit)
    k_out, dist = np.empty(len(depth), np.int64), np.empty(len(depth))
    for i in range(len(depth)):
        o = owner[i]
        k = 0
        for j in range(n_calo):
            if depth[i] >= cum[o, j]:
                k += 1
        if k < n_calo:
            before = cum[o, k - 1] if k > 0 else 0.0
            k_out[i], dist[i] = k, d_in[o, k] + (depth[i] - before) * unit[k]
        else:
            k_out[i], dist[i] = n_calo, np.nan
    return k_out, dist


@jit
def spots(owner: Ints, dist: Array, radius: Array, k: Ints, lateral: Array, energy: Array,
          psi: Array, point: Array, u: Array, t0: Array) -> tuple[Ints, Array]:
    """``calorimeter._spots`` for the spots with a finite ``dist`` (``psi``: their
    azimuths): rows owner, calorimeter and rows x, y, z (cm), energy, time (ns)."""
    m = len(psi)
    ints, out = np.empty((2, m), np.int64), np.empty((5, m))
    j = 0
    for i in range(len(dist)):
        d = dist[i]
        if not np.isfinite(d):
            continue
        o = owner[i]
        a0, a1, a2 = u[0, o], u[1, o], u[2, o]
        e0, e1 = -a1, a0
        norm = np.sqrt(e0 * e0 + e1 * e1 + 0.0 * 0.0)  # np.linalg.norm
        if norm < 1e-12:  # np.maximum (NaN stays NaN)
            norm = 1e-12
        e0, e1, e2 = e0 / norm, e1 / norm, 0.0 / norm
        f0, f1, f2 = a1 * e2 - a2 * e1, a2 * e0 - a0 * e2, a0 * e1 - a1 * e0  # np.cross
        r = radius[i] * lateral[k[i]]
        c, s = np.cos(psi[j]), np.sin(psi[j])
        out[0, j] = (point[0, o] + d * a0) + r * (c * e0 + s * f0)
        out[1, j] = (point[1, o] + d * a1) + r * (c * e1 + s * f1)
        out[2, j] = (point[2, o] + d * a2) + r * (c * e2 + s * f2)
        out[3, j], out[4, j] = energy[i], t0[o] + d / C_CM_PER_NS
        ints[0, j], ints[1, j] = o, k[i]
        j += 1
    return ints, out


@jit
def eta_argument(x: Array, y: Array, z: Array) -> Array:
    """z / max(hypot(x, y), 1e-9): the argument of the deposits' arcsinh (pseudorapidity)."""
    q = np.empty(len(x))
    for i in range(len(x)):
        r = np.hypot(x[i], y[i])
        q[i] = z[i] / (r if r >= 1e-9 else 1e-9)
    return q


@jit
def towers(eta: Array, phi: Array, z: Array, calo: Ints, particle: Ints, event: Ints,
           table: Array, n_calo: int, width: int) -> tuple[Ints, Ints]:
    """Tower keys ((event * n_calo + calo) * width + cell) of the deposits inside a
    calorimeter's eta range and fibre length, and the indices of those deposits;
    ``table`` rows per calorimeter: eta_max, n_eta, n_phi, z_end0, z_end1."""
    n = len(eta)
    key, index = np.empty(n, np.int64), np.empty(n, np.int64)
    m = 0
    for i in range(n):
        c = calo[i]
        eta_max, n_eta, n_phi = table[0, c], table[1, c], table[2, c]
        f_eta = np.floor((eta[i] + eta_max) / (2 * eta_max) * n_eta)
        if not (0.0 <= f_eta < n_eta and table[3, c] <= z[i] <= table[4, c]):
            continue  # (NaN fails the test as NumPy's cast to int64 does)
        i_phi = int(np.floor((phi[i] + np.pi) / (2 * np.pi) * n_phi)) % int(n_phi)
        key[m] = (event[particle[i]] * n_calo + c) * width + int(f_eta) * int(n_phi) + i_phi
        index[m] = i
        m += 1
    return key[:m], index[:m]


@jit
def smear_totals(particle: Ints, calo: Ints, energy: Array, first: Ints, n_bins: int
                 ) -> tuple[Array, npt.NDArray[np.bool_]]:
    """``np.bincount`` of the energies per key particle * len(first) + first[calo] (the
    same sums, in deposit order) and which keys occur."""
    total, present = np.zeros(n_bins), np.zeros(n_bins, np.bool_)
    for i in range(len(energy)):
        key = particle[i] * len(first) + first[calo[i]]
        total[key] += energy[i]
        present[key] = True
    return total, present


@jit
def smear_apply(particle: Ints, calo: Ints, energy: Array, first: Ints, factor: Array
                ) -> Array:
    """energy * factor[particle * len(first) + first[calo]]."""
    out = np.empty(len(energy))
    for i in range(len(energy)):
        out[i] = energy[i] * factor[particle[i] * len(first) + first[calo[i]]]
    return out


@jit
def stratified(table: Array, lo: Ints, w: Array, beta: Array) -> Array:
    """``showers._stratified_gamma``'s interpolation between the rows ``lo`` and
    ``lo + 1`` of the quantile table, over ``beta``, flattened shower-major."""
    n_spots = table.shape[1]
    out = np.empty(len(lo) * n_spots)
    for i in range(len(lo)):
        for j in range(n_spots):
            out[i * n_spots + j] = ((1.0 - w[i]) * table[lo[i], j]
                                    + w[i] * table[lo[i] + 1, j]) / beta[i]
    return out
