"""Hits from surface crossings: efficiency, energy deposit, resolution, readout cells, ADC,
and electronic noise hits.

The energy deposit ``hit_edep`` is that of the path through the sensitive layer (its
thickness over |cos| of the incidence angle): Landau-like (Moyal) fluctuations, or, in
gases with an ionisation spectrum, a sum over primary collisions
(``npfm.detectors.material``). ``hit_adc`` digitises it; ``hit_edep`` is not quantised.

Coordinates on a surface: u = r phi along r-phi (phi in [0, 2 pi)) and v = z on cylinders,
v = r on disks. Readout (``geometry.READOUT_CODES``):
- pixel / double-sided strip: u and v smeared; row = u pixel, col = v pixel in the module;
- strip: u smeared, v = centre of its strip-length bin; col = strip, row = v bin;
- pad (TPC): the drift length l = half-length - |z| adds diffusion, sigma^2 = sigma0^2 +
  D^2 l / N_e (D per sqrt(cm), N_e electrons per cluster); z comes from the drift time
  l / v_drift, which is added to hit_t; row = pad row (layer), col = pad in the sector;
- wire (drift chamber): u and v smeared; row = layer, col = drift cell.
Modules are equal phi sectors (TPC sectors are numbered separately for z < 0).
ADC = round(edep / gev_per_count), within [1, 2^bits - 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from npfm.detectors import kernels
from npfm.detectors.geometry import READOUT_CODES
from npfm.detectors.material import collision_deposit, energy_deposit, landau
from npfm.detectors.propagate import Crossings, grazing_cap, incidence_factor
from npfm.detectors.tables import Geometry

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_PAD, _STRIP, _WIRE = READOUT_CODES["pad"], READOUT_CODES["strip"], READOUT_CODES["wire"]
#: per-layer columns that ``kernels.place`` reads
_FLOATS = ("radius", "r_min", "r_max", "half_length", "res_u", "res_v", "diffusion_t2",
           "diffusion_l2", "pitch_u", "pitch_v", "drift_velocity", "adc_gev")
_INTS = ("is_disk", "readout", "modules", "layer", "adc_bits")
#: beta gamma of the reference minimum-ionising particle for noise amplitudes (the Bethe
#: minimum lies at beta gamma ~ 3-4, PDG section 34.2.3).
_MIP_BETA_GAMMA = 3.5


@dataclass
class Hits:
    """Digitised hits (particle: index into the particle arrays, -1 for noise)."""

    particle: Ints
    layer: Ints
    x: Array
    y: Array
    z: Array
    t: Array
    edep: Array
    adc: Ints
    module: Ints
    row: Ints
    col: Ints

    def select(self, mask: npt.NDArray[np.bool_] | Ints | slice) -> Hits:
        return Hits(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        return cls(**{f.name: np.concatenate([getattr(h, f.name) for h in parts])
                      for f in fields(cls)})


def _place(geometry: Geometry, layer: Ints, phi: Array, v: Array, z: Array, t: Array,
           edep: Array, particle: Ints, rng: np.random.Generator, smear: bool) -> Hits:
    """Measured position, time, readout cell and ADC of hits at (phi, v) on ``layer``."""
    lay = geometry.layers
    if kernels.compiled():  # the same arithmetic in one compiled pass
        gauss = rng.standard_normal((2, len(layer))) if smear else np.zeros((2, 0))
        out, cells = kernels.place(
            np.stack([getattr(lay, name) for name in _FLOATS]),
            np.stack([getattr(lay, name).astype(np.int64) for name in _INTS]),
            np.array([_STRIP, _PAD, _WIRE]), layer, phi, v, z, t, edep, gauss, smear)
        return Hits(particle=particle, layer=layer, x=out[0], y=out[1], z=out[2], t=out[3],
                    edep=edep, adc=cells[0], module=cells[1], row=cells[2], col=cells[3])
    disk, kind = lay.is_disk[layer], lay.readout[layer]
    radius = np.where(disk, v, lay.radius[layer])
    v_low = np.where(disk, lay.r_min[layer], -lay.half_length[layer])
    v_high = np.where(disk, lay.r_max[layer], lay.half_length[layer])
    drift = np.where(kind == _PAD, lay.half_length[layer] - np.abs(z), 0.0)
    sigma_u = np.sqrt(lay.res_u[layer] ** 2 + lay.diffusion_t2[layer] * drift)
    sigma_v = np.sqrt(lay.res_v[layer] ** 2 + lay.diffusion_l2[layer] * drift)
    if smear:
        gauss = rng.standard_normal((2, len(layer)))
        phi = phi + sigma_u * gauss[0] / radius
        v = v + sigma_v * gauss[1]
    strip_len = np.where(kind == _STRIP, lay.pitch_v[layer], 1.0)
    strip_bin = np.floor((v - v_low) / strip_len)
    v = np.where(kind == _STRIP, v_low + (strip_bin + 0.5) * strip_len, v)
    v = np.clip(v, v_low, v_high)
    phi = np.mod(phi, 2.0 * np.pi)
    n_mod = lay.modules[layer]
    module = np.minimum((phi * n_mod / (2.0 * np.pi)).astype(np.int64), n_mod - 1)
    u_local = radius * (phi - module * 2.0 * np.pi / n_mod)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_cell = np.floor(u_local / lay.pitch_u[layer])
        v_cell = np.floor((v - v_low) / lay.pitch_v[layer])
    u_cell, v_cell = (np.nan_to_num(c, posinf=0.0).astype(np.int64) for c in (u_cell, v_cell))
    own = lay.layer[layer]
    row = np.select([kind == _STRIP, (kind == _PAD) | (kind == _WIRE)], [v_cell, own], u_cell)
    col = np.select([kind == _STRIP, kind == _PAD, kind == _WIRE], [u_cell, u_cell, module],
                    v_cell)
    module = np.where((kind == _PAD) & (v < 0), module + n_mod, module)
    z_out = np.where(disk, z, v)
    speed = np.where(kind == _PAD, lay.drift_velocity[layer], 1.0)
    t = t + np.where(kind == _PAD, (lay.half_length[layer] - np.abs(z_out)) / speed, 0.0)
    r_out = np.where(disk, v, radius)
    adc = np.clip(np.rint(edep / lay.adc_gev[layer]), 1, 2 ** lay.adc_bits[layer] - 1)
    return Hits(particle=particle, layer=layer, x=r_out * np.cos(phi), y=r_out * np.sin(phi),
                z=z_out, t=t, edep=edep, adc=adc.astype(np.int64), module=module, row=row,
                col=col)


def digitize(cross: Crossings, mass: Array, charge: Array, geometry: Geometry,
             rng: np.random.Generator, *, smearing: bool = True, efficiency: bool = True
             ) -> Hits:
    """Hits of particle crossings; ``mass`` and ``charge`` are indexed by
    ``cross.particle``. Without ``efficiency`` every crossing gives a hit."""
    lay = geometry.layers
    if efficiency:
        keep = rng.random(len(cross.layer)) < lay.efficiency[cross.layer]
        cross = Crossings(**{f.name: getattr(cross, f.name)[keep] for f in fields(cross)})
    layer = cross.layer
    m, q = mass[cross.particle], charge[cross.particle]
    p = np.sqrt(cross.px ** 2 + cross.py ** 2 + cross.pz ** 2)
    path = lay.thickness[layer] * incidence_factor(geometry, layer, cross.x, cross.y, cross.px,
                                                   cross.py, cross.pz,
                                                   grazing_cap(geometry, lay.thickness))
    gas = lay.collision_min_mev[layer] > 0
    if not gas.any():  # (the random stream of geometries without gas ionisation spectra)
        edep = energy_deposit(p, m, q, lay.z_over_a[layer], lay.mean_excitation_mev[layer],
                              path * lay.density[layer], rng)
    else:
        edep = np.empty(len(layer))
        solid, lg = ~gas, layer[gas]
        edep[solid] = energy_deposit(p[solid], m[solid], q[solid],
                                     lay.z_over_a[layer[solid]],
                                     lay.mean_excitation_mev[layer[solid]],
                                     path[solid] * lay.density[layer[solid]], rng)
        edep[gas] = collision_deposit(p[gas], m[gas], q[gas], lay.z_over_a[lg],
                                      lay.mean_excitation_mev[lg], lay.density[lg], path[gas],
                                      lay.collision_min_mev[lg], lay.collision_max_mev[lg],
                                      lay.collision_exponent[lg], rng)
    r = np.hypot(cross.x, cross.y)
    v = np.where(lay.is_disk[layer], r, cross.z)
    return _place(geometry, layer, np.arctan2(cross.y, cross.x), v, cross.z, cross.t, edep,
                  cross.particle, rng, smearing)


def noise_hits(geometry: Geometry, n_events: int, rng: np.random.Generator
               ) -> tuple[Hits, Ints]:
    """Electronic noise hits: a Poisson number per sensitive layer and event (mean
    ``noise_hits``) at uniform positions; amplitudes exponential with a mean of half the
    most probable deposit of a minimum-ionising pion at normal incidence (approx.).
    Returns the hits (particle -1) and the event index of each."""
    lay = geometry.layers
    counts = rng.poisson(np.broadcast_to(lay.noise_hits, (n_events, len(lay))))
    event, layer = np.nonzero(counts)
    reps = counts[event, layer]
    event, layer = np.repeat(event, reps), np.repeat(layer, reps)
    n = len(layer)
    disk = lay.is_disk[layer]
    u = rng.random((2, n))
    r2 = lay.r_min[layer] ** 2 + u[0] * (lay.r_max[layer] ** 2 - lay.r_min[layer] ** 2)
    z_cyl = (2.0 * u[0] - 1.0) * lay.half_length[layer]
    v = np.where(disk, np.sqrt(r2), z_cyl)
    z = np.where(disk, lay.z[layer], z_cyl)
    pion = 0.13957039  # GeV, charged pion mass (PDG 2024)
    mpv, _ = landau(np.full(n, _MIP_BETA_GAMMA * pion), np.full(n, pion), np.ones(n),
                    lay.z_over_a[layer], lay.mean_excitation_mev[layer],
                    lay.thickness[layer] * lay.density[layer])
    edep = rng.exponential(0.5 * mpv * 1e-3)
    hits = _place(geometry, layer, 2.0 * np.pi * u[1], v, z, np.zeros(n), edep,
                  np.full(n, -1, np.int64), rng, smear=False)
    return hits, event
