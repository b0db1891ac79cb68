"""Calorimeter fast simulation: towers with energies, times and truth contributions from
the final particles of a batch of events, vectorised over all particles.

1. Each final particle (neutrinos aside) is carried to the front face of the first
   calorimeter, on its helix in the solenoid field (``helix.cylinder_crossing``), then on
   a straight line through the calorimeters.
2. Electrons and photons shower (``showers.em_profile``: Grindhammer-Peters profiles in
   radiation lengths, core/tail lateral profile in Moliere radii); hadrons first ionise as
   MIPs (charged) up to an exponential first-interaction depth, then shower
   (``showers.hadron_spots``, in interaction lengths; response on the electromagnetic
   scale f_em + (1 - f_em) h/e); muons deposit MIP signals along their path. Depths are
   mapped through the calorimeters in turn; what passes the last one leaks out.
3. Signals: each particle's energy in each calorimeter is scaled by 1 + N(0, sigma) with
   sigma^2 = (a^2 - 1/N_pe) / E + b^2, so that with the photo-statistics of step 4 the
   calorimeter's published a/sqrt(E) (+) b is reproduced; MIP signals get
   photo-statistics only.
4. Spots are summed into projective (eta, phi) towers; each tower gets Poisson
   photo-statistics, Gaussian noise and a zero-suppression threshold. Truth: each
   particle's share of a tower's true (unsmeared) energy. Several calorimeters of one
   subsystem are its longitudinal layers (``cell_layer``); the resolution terms of step 3
   apply per subsystem. Fibre calorimeters (``waveforms``) have cells along the whole
   fibre, two-ended photo-statistics and sampled waveforms (``npfm.detectors.waveforms``).
5. Imaging layers (``npfm.detectors.imaging``) get pixel hits from the particles and
   showers crossing them.

Not simulated: the tracker material in front of the calorimeters (no conversions or
bremsstrahlung), the magnetic field beyond the first calorimeter face, cracks and dead
towers, noise-only towers, shower-to-shower fluctuations of the hadronic profile shape.

The per-spot passes run compiled where numba is installed (``calo_kernels``; the same
output bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from npfm.detectors import calo_kernels, kernels
from npfm.detectors.decays import Particles
from npfm.detectors.helix import advance, curvature, cylinder_crossing
from npfm.detectors.imaging import Showers, imaging_hits
from npfm.detectors.showers import (
    HAD_R95,
    em_fraction,
    em_profile,
    hadron_spots,
    lateral_radius,
)
from npfm.detectors.tables import Calorimeter, Geometry
from npfm.detectors.waveforms import digitise, photostatistics

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
C_CM_PER_NS = 29.9792458
#: Energy spots per shower: enough for the lateral sharing between towers.
N_SPOTS = 64
_NEUTRINOS = (12, 14, 16)
_NEUTRAL_KAPPA = 1e-12  # 1/cm: a straight line within the helix code


@dataclass
class _Deposits:
    """Energy deposits (spots or MIP segments) on the electromagnetic scale (GeV)."""

    particle: IntArray
    calo: IntArray
    x: Array
    y: Array
    z: Array
    energy: Array
    time: Array


def _entry(parts: Particles, sel: IntArray, radius: float, field: float
           ) -> tuple[IntArray, Array, Array, Array]:
    """Particles reaching ``radius``: indices into ``sel``, entry points, unit directions
    (3, n) and entry times (ns)."""
    pt = np.hypot(parts.px[sel], parts.py[sel])
    bends = (parts.charge[sel] != 0) & (pt > 0)
    kappa = np.full(len(sel), _NEUTRAL_KAPPA)
    kappa[bends] = curvature(parts.charge[sel][bends], pt[bends], field)
    s = cylinder_crossing(parts.vx[sel], parts.vy[sel], parts.px[sel], parts.py[sel], kappa,
                          np.full(len(sel), radius))
    ok = np.flatnonzero(np.isfinite(s) & (pt > 0))
    x, y, z, px, py = advance(parts.vx[sel][ok], parts.vy[sel][ok], parts.vz[sel][ok],
                              parts.px[sel][ok], parts.py[sel][ok], parts.pz[sel][ok],
                              kappa[ok], s[ok])
    pz = parts.pz[sel][ok]
    p = np.sqrt(px * px + py * py + pz * pz)
    speed = C_CM_PER_NS * p / np.maximum(parts.energy[sel][ok], p)
    time = parts.vt[sel][ok] + s[ok] * p / pt[ok] / speed
    return ok, np.stack([x, y, z]), np.stack([px, py, pz]) / p, time


def _distance(point: Array, u: Array, radius: float) -> Array:
    """Straight-line distance from ``point`` (3, n) along ``u`` to ``radius`` (cm)."""
    a = u[0] ** 2 + u[1] ** 2
    b = point[0] * u[0] + point[1] * u[1]
    c = point[0] ** 2 + point[1] ** 2 - radius * radius
    return np.asarray((-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / np.maximum(a, 1e-12))


def _place(depth: Array, owner: IntArray, bounds: tuple[Array, Array], unit: Array
           ) -> tuple[IntArray, Array]:
    """Calorimeter index (len(unit) where it leaked) and path distance from the entry of
    spots at ``depth`` (in the units ``unit``, cm per unit and calorimeter)."""
    d_in, d_out = bounds  # (n, K) distances to each calorimeter's inner and outer radius
    thick = (d_out - d_in) / unit
    cum = np.cumsum(thick, axis=1)
    if kernels.compiled():
        return calo_kernels.place(depth, owner, cum, d_in, unit)
    k = (depth[:, None] >= cum[owner]).sum(axis=1)
    inside = k < len(unit)
    kk = np.minimum(k, len(unit) - 1)
    before = np.where(kk > 0, cum[owner, np.maximum(kk - 1, 0)], 0.0)
    dist = d_in[owner, kk] + (depth - before) * unit[kk]
    return np.where(inside, k, len(unit)), np.where(inside, dist, np.nan)


def _spots(owner: IntArray, dist: Array, radius: Array, k: IntArray, entry: tuple[Array,
           Array, Array], energy: Array, lateral: Array, rng: np.random.Generator) -> _Deposits:
    """Spots along each particle's axis by ``dist`` (cm) and across it by ``radius`` x
    ``lateral[k]`` (cm per unit in the spot's calorimeter) at a uniform azimuth;
    ``entry``: points (3, n), unit directions (3, n) and times (ns) of the particles."""
    point, u, t0 = entry
    keep = np.isfinite(dist)
    if kernels.compiled():
        psi = rng.uniform(0.0, 2.0 * np.pi, int(keep.sum()))
        ints, out = calo_kernels.spots(owner, dist, radius, k, lateral, energy, psi, point, u,
                                       t0)
        return _Deposits(ints[0], ints[1], *out)
    owner, dist, radius, k, energy = owner[keep], dist[keep], radius[keep], k[keep], \
        energy[keep]
    ax = u[:, owner]
    e1 = np.stack([-ax[1], ax[0], np.zeros(len(owner))])
    e1 /= np.maximum(np.linalg.norm(e1, axis=0), 1e-12)
    e2 = np.cross(ax, e1, axis=0)
    psi = rng.uniform(0.0, 2.0 * np.pi, len(owner))
    r = radius * lateral[k]
    pos = point[:, owner] + dist * ax + r * (np.cos(psi) * e1 + np.sin(psi) * e2)
    return _Deposits(owner, k, pos[0], pos[1], pos[2], energy, t0[owner] + dist / C_CM_PER_NS)


def _mip(owner: IntArray, limit: Array, bounds: tuple[Array, Array], calos: tuple[
         Calorimeter, ...], entry: tuple[Array, Array, Array]) -> _Deposits:
    """MIP segments of particles ``owner`` up to ``limit`` interaction lengths deep: one
    deposit per calorimeter at the middle of the path in it."""
    d_in, d_out = bounds[0][owner], bounds[1][owner]
    lam = np.array([c.lambda_i for c in calos])
    start = np.cumsum(np.column_stack([np.zeros(len(owner)),
                                       (d_out - d_in)[:, :-1] / lam[:-1]]), axis=1)
    length = np.clip(limit[:, None] - start, 0.0, (d_out - d_in) / lam) * lam
    i, k = np.nonzero(length > 0)
    mid = d_in[i, k] + 0.5 * length[i, k]
    point, u, t0 = entry
    pos = point[:, owner[i]] + mid * u[:, owner[i]]
    mip = np.array([c.mip_gev_per_cm for c in calos])
    return _Deposits(owner[i], k, pos[0], pos[1], pos[2], length[i, k] * mip[k],
                     t0[owner[i]] + mid / C_CM_PER_NS)


def _concat(parts: list[_Deposits]) -> _Deposits:
    return _Deposits(*(np.concatenate([getattr(d, f.name) for d in parts])
                       for f in fields(_Deposits)))


def _layering(calos: tuple[Calorimeter, ...]) -> tuple[IntArray, IntArray]:
    """Per calorimeter: index of the first calorimeter of its subsystem, and its layer
    (position among the calorimeters of its subsystem)."""
    names = [c.subsystem for c in calos]
    first = np.array([names.index(n) for n in names])
    return first, np.array([names[:i].count(n) for i, n in enumerate(names)])


def _smear(particle: IntArray, calo: IntArray, energy: Array, em_like: npt.NDArray[np.bool_],
           calos: tuple[Calorimeter, ...], rng: np.random.Generator) -> Array:
    """Deposit energies scaled per (particle, calorimeter) by the sampling and constant
    terms left after photo-statistics; ``particle`` indexes ``em_like``."""
    first = _layering(calos)[0]
    n_bins = len(em_like) * len(calos)
    if kernels.compiled():
        total, present = calo_kernels.smear_totals(particle, calo, energy, first, n_bins)
    else:
        key = particle * len(calos) + first[calo]
        total = np.bincount(key, weights=energy, minlength=n_bins)
        present = np.bincount(key, minlength=n_bins) > 0
    uniq = np.flatnonzero(present)  # np.unique(key) without a sort
    total = total[uniq]
    k = uniq % len(calos)
    owner = uniq // len(calos)
    pe = np.array([c.photoelectrons_per_gev for c in calos])[k]
    em = em_like[owner]
    a = np.where(em, np.array([c.em_stochastic for c in calos])[k],
                 np.array([c.hadron_stochastic for c in calos])[k])
    b = np.where(em, np.array([c.em_constant for c in calos])[k],
                 np.array([c.hadron_constant for c in calos])[k])
    var = np.maximum(a * a - 1.0 / pe, 0.0) / np.maximum(total, 1e-6) + b * b
    factor = np.zeros(len(present))
    factor[uniq] = np.maximum(1.0 + np.sqrt(var) * rng.standard_normal(len(uniq)), 0.0)
    if kernels.compiled():
        return calo_kernels.smear_apply(particle, calo, energy, first, factor)
    return np.asarray(energy * factor[key])


def simulate_cells(parts: Particles, geo: Geometry, rng: np.random.Generator,
                   waveforms: bool = True) -> dict[str, Any]:
    """Cells and truth contributions of a batch, sorted by event; ``particle`` values
    index ``parts``. Keys: cell_event, cell_id, cell_calo, cell_layer, cell_x/y/z,
    cell_energy, cell_time; truth_event, truth_cell (global cell index),
    truth_particle, truth_fraction; waveform_* (``waveforms``: see ``_towers``);
    imaging: the imaging-layer hits (``npfm.detectors.imaging``, with ``subsystem``)."""
    calos = geo.calorimeters
    pdg = np.abs(parts.pdg)
    sel = np.flatnonzero(parts.final & ~np.isin(pdg, _NEUTRINOS) & (parts.energy > 0))
    ok, point, u, t0 = _entry(parts, sel, calos[0].r_inner, geo.field_tesla)
    sel = sel[ok]
    entry = (point, u, t0)
    bounds = (np.stack([_distance(point, u, c.r_inner) for c in calos], axis=1),
              np.stack([_distance(point, u, c.r_outer) for c in calos], axis=1))
    kind = pdg[sel]
    em = np.isin(kind, (11, 22))
    muon = kind == 13
    energy = parts.energy[sel]
    heavy = (parts.pdg[sel] > 1000) & (kind > 1000)  # baryons: kinetic energy only
    energy = np.where(heavy, energy - parts.mass[sel], energy)
    x0 = np.array([c.x0 for c in calos])
    lam = np.array([c.lambda_i for c in calos])
    deposits = [_Deposits(*(np.zeros(0, t) for t in (np.int64, np.int64, *[float] * 5)))]
    showers: list[Showers] = []
    reach = np.where(muon, np.inf, np.where(em & (parts.charge[sel] != 0), 0.0, -np.inf))
    e_idx = np.flatnonzero(em)
    if len(e_idx):
        depth, scale = em_profile(energy[e_idx], calos[0].critical_energy, calos[0].z_eff,
                                  N_SPOTS, rng)
        radius = lateral_radius(scale, rng)
        owner = np.repeat(e_idx, N_SPOTS)
        k, dist = _place(depth, owner, bounds, x0)
        spot_e = np.repeat(energy[e_idx], N_SPOTS) / N_SPOTS
        deposits.append(_spots(owner, dist, radius, k, entry, spot_e,
                               np.array([c.moliere for c in calos]), rng))
        showers.append(Showers(e_idx, depth.reshape(-1, N_SPOTS), scale.reshape(
            -1, N_SPOTS), energy[e_idx] / N_SPOTS, "x0", np.zeros(len(e_idx))))
    h_idx = np.flatnonzero(~em & ~muon)
    limit = np.full(len(sel), np.inf)
    if len(h_idx):
        first, depth, radius = hadron_spots(energy[h_idx], N_SPOTS, rng)
        limit[h_idx] = np.where(parts.charge[sel][h_idx] != 0, first, 0.0)
        owner = np.repeat(h_idx, N_SPOTS)
        k, dist = _place(depth, owner, bounds, lam)
        h_over_e = 1.0 / np.array([c.e_over_h for c in calos])
        f_em = np.repeat(em_fraction(energy[h_idx]), N_SPOTS)
        spot_e = np.repeat(energy[h_idx], N_SPOTS) / N_SPOTS * \
            (f_em + (1.0 - f_em) * h_over_e[np.minimum(k, len(calos) - 1)])
        deposits.append(_spots(owner, dist, radius, k, entry, spot_e, lam, rng))
        showers.append(Showers(h_idx, depth.reshape(-1, N_SPOTS), np.full(
            (len(h_idx), N_SPOTS), HAD_R95), spot_e.reshape(-1, N_SPOTS).mean(axis=1),
            "lambda_i", first))
        _, first_dist = _place(first, h_idx, bounds, lam)
        reach[h_idx] = np.where(parts.charge[sel][h_idx] == 0, -np.inf,
                                np.nan_to_num(first_dist, nan=np.inf))
    m_idx = np.flatnonzero(muon | (~em & (limit > 0)))
    mips = _mip(m_idx, limit[m_idx], bounds, calos, entry)
    dep = _concat([*deposits, mips])
    n = len(dep.energy) - len(mips.energy)  # shower spots first
    smeared = dep.energy.copy()
    smeared[:n] = _smear(dep.particle[:n], dep.calo[:n], dep.energy[:n], em, calos, rng)
    cells = _towers(dep, smeared, sel, parts.event[sel], calos, rng, waveforms)
    cells["imaging"] = _imaging(geo, (*entry, parts.event[sel]), reach, showers, bounds, sel,
                                rng)
    return cells


def _imaging(geo: Geometry, entry: tuple[Array, Array, Array, IntArray], reach: Array,
             showers: list[Showers], bounds: tuple[Array, Array], sel: IntArray,
             rng: np.random.Generator) -> dict[str, Any]:
    """Hits of all imaging-layer groups, sorted by event; particle indexes the batch."""
    out = []
    for g in geo.imaging:
        dist = np.stack([_distance(entry[0], entry[1], r) for r in g.radius], axis=1)
        h = imaging_hits(g, dist, reach, showers, entry, bounds, geo.calorimeters, rng)
        h["particle"] = sel[h["particle"]]
        h["subsystem"] = np.full(len(h["event"]), geo.subsystems.index(g.subsystem))
        out.append(h)
    if not out:
        return {}
    hits = {key: np.concatenate([h[key] for h in out]) for key in out[0]}
    order = np.argsort(hits["event"], kind="stable")
    return {key: value[order] for key, value in hits.items()}


def _tower_keys(dep: _Deposits, event: IntArray, calos: tuple[Calorimeter, ...], width: int
                ) -> tuple[IntArray, IntArray]:
    """Tower keys ((event * len(calos) + calo) * width + cell) of the deposits inside a
    calorimeter's eta range and fibre length, and the indices of those deposits."""
    ends = [(c.waveform.z_end0, c.waveform.z_end1) if c.waveform else (-np.inf, np.inf)
            for c in calos]
    if kernels.compiled():
        eta = np.arcsinh(calo_kernels.eta_argument(dep.x, dep.y, dep.z))
        table = np.array([[c.eta_max, c.n_eta, c.n_phi, *e] for c, e in zip(calos, ends,
                                                                            strict=True)]).T
        return calo_kernels.towers(
            eta, np.arctan2(dep.y, dep.x), dep.z, dep.calo, dep.particle, event,
            np.ascontiguousarray(table), len(calos), width)
    r = np.hypot(dep.x, dep.y)
    eta = np.arcsinh(dep.z / np.maximum(r, 1e-9))
    phi = np.arctan2(dep.y, dep.x)
    eta_max = np.array([c.eta_max for c in calos])[dep.calo]
    n_eta = np.array([c.n_eta for c in calos])[dep.calo]
    n_phi = np.array([c.n_phi for c in calos])[dep.calo]
    i_eta = np.floor((eta + eta_max) / (2 * eta_max) * n_eta).astype(np.int64)
    i_phi = np.floor((phi + np.pi) / (2 * np.pi) * n_phi).astype(np.int64) % n_phi
    z_ends = np.array(ends)[dep.calo]
    keep = (i_eta >= 0) & (i_eta < n_eta) & (dep.z >= z_ends[:, 0]) & (dep.z <= z_ends[:, 1])
    key = (event[dep.particle] * len(calos) + dep.calo) * width + i_eta * n_phi + i_phi
    idx = np.flatnonzero(keep)
    return key[idx], idx


def _towers(dep: _Deposits, smeared: Array, sel: IntArray, event: IntArray,
            calos: tuple[Calorimeter, ...], rng: np.random.Generator, waveforms: bool
            ) -> dict[str, Any]:
    """Sum deposits into towers; photo-statistics, noise, threshold; truth fractions;
    waveforms of fibre cells (``waveforms``: keys waveform_event, waveform_cell (global
    cell index), waveform_end, _n_samples, _period_ns, _pedestal, _gain, sample_adc)."""
    width = int(max(c.n_eta * c.n_phi for c in calos))
    key, idx = _tower_keys(dep, event, calos, width)
    # one sort for the cells and the (cell, particle) pairs: key * len(sel) + particle
    pairs, pair_inv = np.unique(key * len(sel) + dep.particle[idx], return_inverse=True)
    pair_key = pairs // len(sel)
    first = np.diff(pair_key, prepend=-1) != 0
    uniq, pair_cell = pair_key[first], np.cumsum(first) - 1
    inv = pair_cell[pair_inv]  # = np.unique(key, return_inverse=True)[1]
    energy = dep.energy[idx]
    true = np.bincount(inv, weights=energy)
    visible = np.asarray(np.bincount(inv, weights=smeared[idx]), dtype=np.float64)
    time = np.bincount(inv, weights=dep.time[idx] * energy) / true
    z_mean = np.bincount(inv, weights=dep.z[idx] * energy) / true
    calo = (uniq // width) % len(calos)
    reco, light = photostatistics(visible, z_mean, calo, calos, rng)
    reco += rng.standard_normal(len(uniq)) * np.array([c.noise for c in calos])[calo]
    time += rng.standard_normal(len(uniq)) * np.array([c.time_resolution for c in calos])[calo]
    alive = reco > np.array([c.threshold for c in calos])[calo]
    new_index = np.cumsum(alive) - 1
    pair_e = np.bincount(pair_inv, weights=energy)
    live_pair = alive[pair_cell]
    cid = uniq[alive] % width
    c_calo = calo[alive]
    n_phi_c = np.array([c.n_phi for c in calos])[c_calo]
    n_eta_c = np.array([c.n_eta for c in calos])[c_calo]
    eta_max_c = np.array([c.eta_max for c in calos])[c_calo]
    r_mid = np.array([0.5 * (c.r_inner + c.r_outer) for c in calos])[c_calo]
    eta_c = -eta_max_c + (cid // n_phi_c + 0.5) * 2 * eta_max_c / n_eta_c
    phi_c = -np.pi + (cid % n_phi_c + 0.5) * 2 * np.pi / n_phi_c
    fibre_mid = np.array([0.5 * (c.waveform.z_end0 + c.waveform.z_end1) if c.waveform
                          else np.nan for c in calos])[c_calo]  # fibre cells span z
    cell_z = np.where(np.isfinite(fibre_mid), fibre_mid, r_mid * np.sinh(eta_c))
    layer = _layering(calos)[1][c_calo]
    cell_event = uniq[alive] // width // len(calos)
    cells = {
        "cell_event": cell_event, "cell_id": layer * n_eta_c * n_phi_c + cid,
        "cell_calo": c_calo, "cell_layer": layer,
        "cell_x": r_mid * np.cos(phi_c), "cell_y": r_mid * np.sin(phi_c),
        "cell_z": cell_z, "cell_energy": reco[alive],
        "cell_time": time[alive],
        "truth_event": (uniq[pair_cell] // width // len(calos))[live_pair],
        "truth_cell": new_index[pair_cell][live_pair],
        "truth_particle": sel[pairs % len(sel)][live_pair],
        "truth_fraction": (pair_e / true[pair_cell])[live_pair],
    }
    if waveforms:
        wave = digitise(light[alive], time[alive], z_mean[alive], c_calo, calos, rng)
        cells.update(waveform_event=cell_event[wave["cell"]], waveform_cell=wave["cell"],
                     sample_adc=wave["samples"], waveform_period_ns=wave["period"],
                     **{f"waveform_{k}": wave[k] for k in ("end", "n_samples", "pedestal",
                                                          "gain")})
    return cells
