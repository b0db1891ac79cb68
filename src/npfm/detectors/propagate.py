"""Step charged particles from surface to surface along exact helices.

All particles advance together (NumPy arrays over particles, and over up to ``block``
consecutive crossings). A step starts from the current helix and finds its next crossing
exactly: the cylinder just inside or outside the particle (cylinders sorted by radius, so
a looper turning back re-crosses the same one), the next endcap disk along z, or the end
of the volume (|z| = z_max) or of ``max_turns``; a particle stops on an absorber surface.
The step ends at a crossing where the
multiple-scattering kink (Highland) and the mean energy loss are applied exactly: the
helix is re-parameterised from that point.

Where the kinks are tiny (theta0 (p/pT)^2 and dp/p below ``linear_max_kink``, as in gas
layers or thin silicon at high momentum), a step goes on through up to ``block``
consecutive cylinders in the same radial direction on the same helix: the kink and energy
loss at each crossing act on the following crossings of the step to first order
(rotation of the helix about the kink point, changes of dip and curvature, then a slide
along the track back onto the surface; closed-form prefix sums), so the neglected terms
are of second order in the kinks. Against crossing-by-crossing stepping
(``linear_max_kink = 0``) the multiple-scattering spreads agree within 1 % and, without
scattering, positions within a few um (p >~ 0.3 GeV) to ~0.3 mm after three turns of a
0.12 GeV looper. The step still ends with an exact kink. The loop runs once per step
(about thick layers x turns), never per hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from npfm.detectors import kernels
from npfm.detectors.crossing_kernels import (
    LAYER_ROWS,
    crossing_geometry,
    crossing_losses,
    record_step,
    step_rows,
)
from npfm.detectors.field import field_along
from npfm.detectors.helix import C_CM_NS, advance, curvature, cylinder_crossing
from npfm.detectors.material import MIN_BETA_GAMMA, bethe_mean, highland, scatter
from npfm.detectors.tables import Geometry

Array = npt.NDArray[np.float64]
_TOL = 1e-6  # cm: a crossing closer than this is the surface the particle stands on
_COS_MIN = 0.2  # linearised crossings need |cos| of the transverse incidence above this


@dataclass
class Crossings:
    """Crossings of sensitive surfaces (entry: particle index into the inputs, surface
    index, position in cm, momentum in GeV at arrival, time in ns)."""

    particle: npt.NDArray[np.int64]
    layer: npt.NDArray[np.int64]
    x: Array
    y: Array
    z: Array
    px: Array
    py: Array
    pz: Array
    t: Array


def grazing_cap(geometry: Geometry, thickness: Array) -> Array:
    """Per-layer upper bound on the path length over ``thickness`` (cm): the longest
    chord through the layer, 2 sqrt(2 r t) / t on a cylinder, the radial extent / t on a
    disk; it keeps 1/|cos(incidence)| finite for grazing crossings."""
    lay = geometry.layers
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lay.is_disk, (lay.r_max - lay.r_min) / thickness,
                        2.0 * np.sqrt(2.0 * lay.radius / thickness))


def incidence_factor(geometry: Geometry, layer: npt.NDArray[np.int64], x: Array, y: Array,
                     px: Array, py: Array, pz: Array, cap: Array) -> Array:
    """Path length per unit thickness of each crossing, 1/|cos| of the angle to the
    surface normal (radial on cylinders, z on disks), at most ``cap[layer]``."""
    p = np.sqrt(px * px + py * py + pz * pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(geometry.layers.is_disk[layer], pz / p,
                       (x * px + y * py) / (np.hypot(x, y) * p))
        return np.minimum(1.0 / np.abs(cos), cap[layer])


def _path_integrals(s: Array, kappa: Array) -> tuple[Array, Array]:
    """F = (1 - cos psi) / kappa^2 and G = (psi - sin psi) / kappa^2 with psi = kappa s:
    the integrals over s of the helix offsets along and across the start direction."""
    psi = kappa * s
    f = 0.5 * s * s * np.sinc(psi / (2.0 * np.pi)) ** 2
    small = np.abs(psi) < 0.1
    ratio = np.where(small, psi / 6.0 - psi ** 3 / 120.0 + psi ** 5 / 5040.0,
                     (psi - np.sin(psi)) / np.where(small, 1.0, psi * psi))
    return f, s * s * ratio


def _first_order(cross: Array, x: Array, y: Array, px: Array, py: Array, pz: Array,
                 kappa: Array, length: npt.NDArray[np.int64], theta0: Array, dp: Array,
                 rng: np.random.Generator) -> Array:
    """Positions and momenta (x, y, z, px, py, pz; rows of the result) at the crossings of
    a step, with the kinks (projected angles ~ N(0, theta0)) and momentum losses ``dp``
    of the earlier crossings of the step applied to first order.

    ``cross`` holds the nominal x, y, z, px, py and transverse arc length s (rows) of each
    crossing (axis 1) of each particle (axis 2) on the helix from (x, y, pz, kappa). A kink
    at crossing j changes the azimuth by dphi = theta1 p/pT (a rotation of the rest of
    the helix about the crossing point), the slope pz/pT by theta2 (p/pT)^2, and with the
    momentum loss dp the curvature by dkappa = kappa (dp/p + slope theta2). The curvature term
    integrates by parts to dkappa z x [(s - s_j) R(s) - Q(s) + Q(s_j)] with Q the integral
    of the helix offset R; all sums over j run as prefix sums. Each point then slides
    along the track back onto its cylinder.
    """
    cx, cy, cz, cpx, cpy, s = cross
    rank = np.arange(len(s))[:, None]
    pt = np.hypot(px, py)
    p, slope = np.hypot(pt, pz), pz / pt
    dip = p / pt
    lin = rank < length - 1  # the last crossing's kink is applied exactly afterwards
    kink = rng.standard_normal((2, *s.shape)) * theta0 * lin
    dp_lin = dp * lin
    dphi, dslope = kink[0] * dip, kink[1] * dip * dip
    dkappa = kappa * (dp_lin / p + slope * kink[1])  # -kappa dpT/pT
    rx, ry = cx - x, cy - y
    f, g = _path_integrals(s, kappa)
    qx, qy = (f * px - g * py) / pt, (f * py + g * px) / pt
    terms = np.stack((dphi, dphi * rx, dphi * ry, dkappa, dkappa * s, dkappa * qx,
                      dkappa * qy, dslope, dslope * s, dp_lin))
    (phi_sum, phi_rx, phi_ry, kap_sum, kap_s, kap_qx, kap_qy, slope_sum, slope_s,
     dp_sum) = np.cumsum(terms, axis=1) - terms  # sums over the earlier crossings
    wx = rx * phi_sum - phi_rx + rx * (s * kap_sum - kap_s) - qx * kap_sum + kap_qx
    wy = ry * phi_sum - phi_ry + ry * (s * kap_sum - kap_s) - qy * kap_sum + kap_qy
    radial = cx * cpx + cy * cpy
    slide = np.where(rank > 0, (wy * cx - wx * cy) * pt / radial, 0.0)  # shift D = z x w
    omega = phi_sum + s * kap_sum - kap_s + kappa * slide
    slope_k = slope + slope_sum
    pt_k = (p - dp_sum) / np.sqrt(1.0 + slope_k * slope_k)
    cos_o, sin_o = np.cos(omega) * pt_k / pt, np.sin(omega) * pt_k / pt
    return np.stack((cx - wy + cpx / pt * slide, cy + wx + cpy / pt * slide,
                     cz + s * slope_sum - slope_s + slope * slide, cos_o * cpx - sin_o * cpy,
                     sin_o * cpx + cos_o * cpy, slope_k * pt_k))


def _step_rows(rows: Array, rows_more: Array, ext: npt.NDArray[np.int64], k: int,
               helix: tuple[Array, ...], length: npt.NDArray[np.int64], radius: Array,
               rng: np.random.Generator) -> Array:
    """``crossing_kernels.step_rows`` with the standard normals ``_first_order`` draws and
    the powers of psi it computes with NumPy (``helix``: x y px py pz kappa of the step's
    particles)."""
    normal, powers = np.zeros((2, 0, 0)), np.zeros((2, 0, 0))
    if k > 1:
        psi = helix[5][ext] * np.concatenate((rows[6][:, ext], rows_more[6, :k - 1]))
        normal = rng.standard_normal((2, *psi.shape))
        # psi^3, psi^5 where the series needs them, for the crossings the step records
        small = (np.abs(psi) < 0.1) & (np.arange(k)[:, None] < length[ext])
        powers = np.zeros((2, *psi.shape))
        powers[0, small], powers[1, small] = psi[small] ** 3, psi[small] ** 5
    return step_rows(rows, rows_more, ext, k, *helix, length, normal, powers, radius)


def _record(rows: Array, length: npt.NDArray[np.int64], particle: npt.NDArray[np.int64],
            t: Array, energy: Array, speed: Array, sensitive: npt.NDArray[np.bool_]
            ) -> tuple[Array, Array, Array]:
    """The crossings a step records (rows particle layer x y z px py pz t; those before
    ``length`` on a sensitive surface), the rows at each particle's last crossing and the
    time there (path s p / pT at speed c p / E; ``speed`` = pT c)."""
    if kernels.compiled():
        return record_step(rows, length, particle, t, energy, speed, sensitive)
    times = t + rows[6] * energy / speed
    layers = rows[7].astype(np.int64)
    rec = (np.arange(len(rows[0]))[:, None] < length) & (rows[8] > 0) \
        & sensitive[np.maximum(layers, 0)]
    col = np.nonzero(rec)[1]
    end = np.maximum(length - 1, 0), np.arange(len(length))
    return (np.vstack((particle[col], layers[rec], rows[:6, rec], times[rec])),
            rows[(slice(None), *end)], times[end])


def propagate(x: Array, y: Array, z: Array, px: Array, py: Array, pz: Array, charge: Array,
              mass: Array, t: Array, geometry: Geometry, rng: np.random.Generator, *,
              multiple_scattering: bool = True, energy_loss: bool = True,
              max_turns: float = 3.0, block: int = 16, linear_max_kink: float = 3e-3,
              max_steps: int = 5000) -> Crossings:
    """Crossings of the sensitive surfaces by charged particles starting at (x, y, z) at
    time t (ns) with momentum (px, py, pz) (GeV), charge (e) and mass (GeV)."""
    lay = geometry.layers
    cyl, disk = geometry.cylinder_order, geometry.disk_order
    n_cyl, has_disks, k_max = len(cyl), len(disk) > 0, max(int(block), 1)
    # sorted cylinder c is r_pad[c + k_max]; NaN (no surface) beyond both ends
    r_pad = np.concatenate((np.full(k_max, np.nan), lay.radius[cyl], np.full(k_max, np.nan)))
    cyl_pad = np.concatenate((np.full(k_max, -1), cyl, np.full(k_max, -1)))
    z_pad = np.concatenate(([np.nan], lay.z[disk], [np.nan]))
    disk_pad = np.concatenate(([-1], disk, [-1]))
    ahead = np.arange(1, k_max)[:, None]
    cap = grazing_cap(geometry, lay.material_thickness)
    z_max, turn_limit = geometry.z_max, 2.0 * np.pi * max_turns
    live = (charge != 0) & (np.hypot(px, py) > 0) & (np.abs(z) <= z_max) & (mass > 0)
    idx = np.flatnonzero(live)  # state rows: x y z px py pz t turn q m
    state = np.stack([np.asarray(a, np.float64)[idx] for a in (x, y, z, px, py, pz, t)]
                     + [np.zeros(len(idx)), charge[idx], mass[idx]])
    ints = np.stack((idx, np.searchsorted(lay.radius[cyl], np.hypot(state[0], state[1])),
                     np.searchsorted(lay.z[disk], state[2])))  # particle, radial gap, z gap
    keep = ints[1] < n_cyl
    records: list[Array] = []
    layer_table = np.stack([getattr(lay, name).astype(np.float64) for name in LAYER_ROWS])
    layer_loss = np.stack((lay.z_over_a, lay.x0_g_cm2))

    def crossings(s: Array, layer: npt.NDArray[np.int64], cols: npt.NDArray[np.intp] | slice,
                  kinematics: Array) -> tuple[Array, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Nominal crossings at arc lengths ``s`` (rows) of the particles ``cols`` of the
        current state (``kinematics``: their pT, p, kappa): rows x y z px py pz s layer on
        xx0 theta0 dE dp; whether each crossing happens (inside the volume and turn limit;
        for a linearised crossing also at a non-grazing incidence); whether its kink and
        loss are small enough to act on the following crossings to first order."""
        if kernels.compiled():  # the same in two compiled passes around NumPy's log
            start = state[:, cols]
            rows, inside, args = crossing_geometry(
                start, kinematics, s, layer, layer_table, cap, lay.mean_excitation_mev, z_max,
                turn_limit, 0.0 if isinstance(cols, slice) else _COS_MIN)
            small = crossing_losses(rows, np.log(args), start, kinematics, layer_loss,
                                    multiple_scattering, energy_loss, linear_max_kink)
            return rows, inside, small
        x0, y0, z0, px0, py0, pz0, _, turn0, q0, m0 = state[:, cols]
        pt0, p0, kappa0 = kinematics
        rows = np.empty((13, *s.shape))
        cx, cy, cz, cpx, cpy = rows[:5] = advance(x0, y0, z0, px0, py0, pz0, kappa0, s)
        rows[5], rows[6], rows[7] = pz0, s, layer
        cr = np.hypot(cx, cy)
        lc = np.maximum(layer, 0)
        inside = (layer >= 0) & (np.abs(cz) <= z_max) & (np.abs(kappa0) * s + turn0 <= turn_limit)
        on = inside & (np.abs(cz) <= lay.half_length[lc])
        radial = cx * cpx + cy * cpy
        factor = np.minimum(np.abs(cr * p0 / radial), cap[lc])
        if has_disks:
            disk = lay.is_disk[lc]
            on = np.where(disk, inside & (cr >= lay.r_min[lc]) & (cr <= lay.r_max[lc]), on)
            factor = np.where(disk, np.minimum(np.abs(p0 / pz0), cap[lc]), factor)
        rows[8] = on
        xx0 = rows[9] = lay.x_over_x0[lc] * factor * on
        rows[10] = highland(p0, m0, q0, xx0) if multiple_scattering else 0.0
        rows[11] = bethe_mean(p0, m0, q0, lay.z_over_a[lc], lay.mean_excitation_mev[lc]) \
            * xx0 * lay.x0_g_cm2[lc] * 1e-3 if energy_loss else 0.0  # GeV
        rows[12] = rows[11] * np.sqrt(p0 * p0 + m0 * m0) / p0  # dp = dE / beta
        theta0, dp = rows[10], rows[12]
        small = (theta0 * (p0 / pt0) ** 2 < linear_max_kink) & (dp < linear_max_kink * p0)
        if not isinstance(cols, slice):  # crossings after the first one: slid onto, not grazing
            inside &= np.abs(radial) >= _COS_MIN * cr * pt0
        return rows, inside, small

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_steps):
            if not keep.all():
                state, ints = state[:, keep], ints[:, keep]
            if ints.shape[1] == 0:
                break
            x, y, z, px, py, pz, t, turn, q, m = state
            pt = np.hypot(px, py)
            kappa = curvature(q, pt, field_along(geometry.field_tesla,
                                                 geometry.field_half_length, z, pz))
            kinematics = np.stack((pt, np.hypot(pt, pz), kappa))
            # first crossing: the cylinder inside or outside, or the next disk
            base = ints[1] + k_max
            s_lo, s_hi = cylinder_crossing(x, y, px, py, kappa,
                                           np.stack((r_pad[base - 1], r_pad[base])), _TOL)
            out = s_hi <= s_lo
            first = base - 1 + out
            s0, layer0 = np.where(out, s_hi, s_lo), cyl_pad[first]
            first_disk, s_disk, up = np.zeros(len(x), bool), np.full(len(x), np.inf), pz > 0
            if has_disks:
                plane = ints[2] + up
                s_disk = (z_pad[plane] - z) * pt / pz
                s_disk = np.where(s_disk > _TOL, s_disk, np.inf)
                first_disk = s_disk < s0
                s0 = np.where(first_disk, s_disk, s0)
                layer0 = np.where(first_disk, disk_pad[plane], layer0)
            rows, inside, small = crossings(s0[None], layer0[None], slice(None), kinematics)
            length = inside[0].astype(np.int64)
            # more cylinders in the same direction, on the same helix, while kinks are small
            ext = np.flatnonzero(inside[0] & small[0] & ~first_disk & (k_max > 1))
            if len(ext):
                more = first[ext] + np.where(out[ext], 1, -1) * ahead
                s_more = cylinder_crossing(x[ext], y[ext], px[ext], py[ext], kappa[ext],
                                           r_pad[more], _TOL)
                s_more = np.where(s_more < s_disk[ext], s_more, np.inf)
                rows_more, chain, small_more = crossings(s_more, cyl_pad[more], ext,
                                                         kinematics[:, ext])
                chain[1:] &= small_more[:-1]
                length[ext] += np.cumprod(chain, axis=0).sum(axis=0)
                k = int(length.max())
                if kernels.compiled():  # the same in one compiled pass, without copies
                    rows = _step_rows(rows, rows_more, ext, k, (x, y, px, py, pz, kappa),
                                      length, lay.radius, rng)
                else:
                    rows = np.repeat(rows, k, axis=1)
                    rows[:, 1:, ext] = rows_more[:, :k - 1]
                    if k > 1:  # only rows 0-5 (position, momentum) change
                        part = _first_order(rows[[0, 1, 2, 3, 4, 6]][:, :, ext], x[ext],
                                            y[ext], px[ext], py[ext], pz[ext], kappa[ext],
                                            length[ext], rows[10][:, ext], rows[12][:, ext],
                                            rng)
                        # linearised crossings go exactly onto their cylinders (row 0 is exact)
                        onto = lay.radius[rows[7, 1:][:, ext].astype(np.int64)] / np.hypot(
                            part[0, 1:], part[1, 1:])
                        part[:2, 1:] *= onto
                        rows[:6, :, ext] = part
            energy = np.sqrt(pt * pt + pz * pz + m * m)
            recorded, ends, t_end = _record(rows, length, ints[0], t, energy, pt * C_CM_NS,
                                            lay.sensitive)
            records.append(recorded)
            # the step ends at its last crossing, with an exact kink and energy loss there
            x, y, z, px, py, pz, s_end, xx0, theta0, de = ends[[0, 1, 2, 3, 4, 5, 6, 9, 10, 11]]
            l_end = np.maximum(ends[7].astype(np.int64), 0)
            if multiple_scattering:
                px, py, pz = scatter(px, py, pz, theta0, rng)
            p_end = np.sqrt(px * px + py * py + pz * pz)
            if energy_loss and len(ext):  # the loss at the momentum reached
                de = bethe_mean(p_end, m, q, lay.z_over_a[l_end], lay.mean_excitation_mev[l_end]) \
                    * xx0 * lay.x0_g_cm2[l_end] * 1e-3
            e_new = np.sqrt(p_end * p_end + m * m) - de
            p_new = np.sqrt(np.maximum(e_new * e_new - m * m, 0.0))
            px, py, pz = px * p_new / p_end, py * p_new / p_end, pz * p_new / p_end
            ints[1] += np.where(out, 1, -1) * length * ~first_disk
            ints[2] += first_disk * np.where(up, 1, -1)
            absorbed = lay.absorber[l_end] & (ends[8] > 0)
            keep = (length > 0) & (ints[1] < n_cyl) & (p_new > MIN_BETA_GAMMA * m) & ~absorbed
            state = np.stack((x, y, z, px, py, pz, t_end, turn + np.abs(kappa) * s_end, q, m))
    rows_out = np.hstack(records) if records else np.zeros((9, 0))
    return Crossings(rows_out[0].astype(np.int64), rows_out[1].astype(np.int64), *rows_out[2:])
