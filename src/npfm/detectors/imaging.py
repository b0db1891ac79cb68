"""Imaging layers: silicon pixel layers among the calorimeters (the ``imaging_layers``
section of a geometry file), hit by the charged particles of the showers.

Each group (units in the key names; every number cites ``source``): ``subsystem`` (a
vocabulary name), ``radius_cm`` (one per layer), ``z_min_cm`` / ``z_max_cm``,
``pixel_pitch_um`` (square pixels), ``modules`` (phi staves per layer),
``sensitive_thickness_cm`` and ``mip_mev_per_cm`` (deposit of one crossing),
``adc {bits, gev_per_count}``.

Crossings of a layer at path distance d along a particle's axis (from the front face of
the first calorimeter):
- the particle itself, while it has not showered: muons everywhere, charged hadrons before
  their first interaction, electrons in front of the first absorber;
- its shower: the number of charged tracks crossing a plane at depth t is about
  (dE/dt) / E_c, with dE/dt the energy deposited per radiation length and E_c the critical
  energy (Rossi's approximation B: a charged shower particle loses about E_c per X0; PDG
  Review, "Passage of particles through matter", section 34.5). dE/dt at the layer comes
  from the shower's stratified spots (``npfm.detectors.showers``): each spot carries E/n,
  so the density between neighbouring spots is (E/n) / their depth gap (before the first
  spot, E/2n spread from the shower's start; none after the last); hadron showers
  convert their depth per interaction length to X0 with the next calorimeter's
  X0/lambda_I. The count is Poisson; each crossing draws its lateral radius from the
  profile (core or tail scale) of one of the spots nearest in depth, at a uniform azimuth.
Crossings are binned into pixels; a pixel's deposit is its number of crossings times the
MIP deposit (no Landau fluctuations), its time the arrival time of the particle's front.
Hits belong to the particle that started the shower. Not modelled: noise hits, dead
areas between sensors, charge sharing, the layers' own material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from npfm.detectors.showers import lateral_radius
from npfm.detectors.tables import Calorimeter, ImagingLayers

if TYPE_CHECKING:
    from npfm.detectors.geometry_reader import GeometryReader

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
C_CM_PER_NS = 29.9792458
_KEYS = {"subsystem", "radius_cm", "z_min_cm", "z_max_cm", "pixel_pitch_um", "modules",
         "sensitive_thickness_cm", "mip_mev_per_cm", "adc", "source"}
#: Spots around the layer's depth among which a crossing draws its lateral radius.
NEIGHBOURS = 4


def parse_imaging(entries: list[GeometryReader], sources: set[str]) -> tuple[ImagingLayers, ...]:
    """Validated imaging-layer groups."""
    out = []
    for g in entries:
        name = g.detector_entry(_KEYS, sources, "pixel")
        z_min, z_max = g.number("z_min_cm", low=-np.inf), g.number("z_max_cm", low=-np.inf)
        if z_max <= z_min:
            raise g.fail("z_max_cm", "not above z_min_cm", "give z_min_cm < z_max_cm")
        adc = g.sub("adc")
        adc.check_keys({"bits", "gev_per_count"})
        out.append(ImagingLayers(
            subsystem=name, radius=np.sort(g.numbers("radius_cm")), z_min=z_min, z_max=z_max,
            pitch=g.number("pixel_pitch_um") * 1e-4,
            modules=int(g.number("modules", low=1, strict=False)),
            mip_gev=g.number("sensitive_thickness_cm") * g.number("mip_mev_per_cm") * 1e-3,
            adc_bits=int(adc.number("bits", high=31)), adc_gev=adc.number("gev_per_count")))
    return tuple(out)


@dataclass
class Showers:
    """Spots of showers (rows): owner (index into the calorimeter's particles), depths in
    ``unit`` (``x0`` or ``lambda_i``, increasing along each row), the scale of the lateral
    profile each spot draws its radius from (same unit; ``showers.lateral_radius``), energy
    per spot (GeV), and the depth where each shower starts."""

    owner: Ints
    depth: Array
    scale: Array
    spot_energy: Array
    unit: str
    start: Array


def _depth(dist: Array, bounds: tuple[Array, Array], unit: Array) -> Array:
    """Depth (in ``unit`` per calorimeter) of path distances ``dist`` (n, K)."""
    d_in, d_out = bounds
    inside = np.clip(dist[:, :, None] - d_in[:, None, :], 0.0, (d_out - d_in)[:, None, :])
    return np.asarray((inside / unit).sum(axis=2))


def _next_calo(radius: Array, calos: tuple[Calorimeter, ...]) -> Ints:
    """Index of the calorimeter whose front face follows each radius (else the last)."""
    front = np.array([c.r_inner for c in calos])
    return np.minimum(np.searchsorted(front, radius - 1e-9), len(calos) - 1)


def _shower_crossings(sh: Showers, t_layer: Array, x0_per_unit: Array, e_crit: Array,
                      rng: np.random.Generator) -> tuple[Ints, Ints, Array]:
    """(shower row, layer, lateral radius in ``sh.unit``) of each shower crossing."""
    n_spots = sh.depth.shape[1]
    depth = np.where(np.isfinite(sh.depth), sh.depth, np.inf)
    t = t_layer[sh.owner]  # (showers, K)
    j = (depth[:, :, None] < t[:, None, :]).sum(axis=1)
    lo = np.take_along_axis(depth, np.clip(j - 1, 0, n_spots - 1), axis=1)
    hi = np.take_along_axis(depth, np.clip(j, 0, n_spots - 1), axis=1)
    e = sh.spot_energy[:, None]
    start = sh.start[:, None]
    density = np.where(j >= n_spots, 0.0, e / np.maximum(hi - lo, 1e-9))
    # before the first spot: half a stratum spread from the shower's start
    density = np.where(j == 0, np.where(t > start, 0.5 * e / np.maximum(
        depth[:, :1] - start, 1e-9), 0.0), density)
    density = np.where(np.isfinite(density), density, 0.0)
    mean = density * x0_per_unit[None, :] / e_crit[None, :]
    n = rng.poisson(mean)
    s, k = np.nonzero(n)
    s, k = np.repeat(s, n[s, k]), np.repeat(k, n[s, k])
    near = np.clip(j[s, k] - NEIGHBOURS // 2 + rng.integers(0, NEIGHBOURS, len(s)), 0,
                   n_spots - 1)
    return s, k, lateral_radius(sh.scale[s, near], rng)


def imaging_hits(group: ImagingLayers, layer_dist: Array, reach: Array, showers: list[Showers],
                 entry: tuple[Array, Array, Array, Ints], bounds: tuple[Array, Array],
                 calos: tuple[Calorimeter, ...], rng: np.random.Generator) -> dict[str, Any]:
    """Pixel hits of one imaging group. ``layer_dist`` (n, K): path distance of each
    particle to each layer (NaN: never); ``reach`` (n): distance up to which the particle
    itself crosses layers; ``entry``: points (3, n), unit directions (3, n), times (ns)
    and events of the particles. Keys: event, particle (index into the calorimeter's
    particles), layer, x, y, z, t, edep, adc, module, row, col (sorted by event)."""
    nxt = _next_calo(group.radius, calos)
    x0 = np.array([c.x0 for c in calos])
    lam = np.array([c.lambda_i for c in calos])
    e_crit = np.array([c.critical_energy for c in calos])[nxt]
    ok = np.isfinite(layer_dist)
    dist = np.where(ok, layer_dist, -np.inf)
    owner, layer = np.nonzero(ok & (dist < reach[:, None]))
    radius = np.zeros(len(owner))
    for sh in showers:
        unit = x0 if sh.unit == "x0" else lam
        ratio = np.ones(len(nxt)) if sh.unit == "x0" else x0[nxt] / lam[nxt]
        lateral = np.array([c.moliere for c in calos]) if sh.unit == "x0" else lam
        s, k, r = _shower_crossings(sh, _depth(np.where(ok, layer_dist, 0.0), bounds, unit),
                                    ratio, e_crit, rng)
        owner = np.concatenate([owner, sh.owner[s]])
        layer = np.concatenate([layer, k])
        radius = np.concatenate([radius, r * lateral[nxt[k]]])
    return _pixels(group, owner, layer, radius, layer_dist[owner, layer], entry, rng)


def _pixels(group: ImagingLayers, owner: Ints, layer: Ints, radius: Array, dist: Array,
            entry: tuple[Array, Array, Array, Ints], rng: np.random.Generator
            ) -> dict[str, Any]:
    """Crossings placed around the particle axes and binned into pixels (per event)."""
    point, u, t0, event = entry
    ax = u[:, owner]
    e1 = np.stack([-ax[1], ax[0], np.zeros(len(owner))])
    e1 /= np.maximum(np.linalg.norm(e1, axis=0), 1e-12)
    e2 = np.cross(ax, e1, axis=0)
    psi = rng.uniform(0.0, 2.0 * np.pi, len(owner))
    pos = point[:, owner] + dist * ax + radius * (np.cos(psi) * e1 + np.sin(psi) * e2)
    phi = np.mod(np.arctan2(pos[1], pos[0]), 2.0 * np.pi)
    z = pos[2]
    keep = (z >= group.z_min) & (z < group.z_max)
    r = group.radius[layer]
    sector = 2.0 * np.pi / group.modules
    module = np.floor(phi / sector).astype(np.int64)
    row = np.floor((phi - module * sector) * r / group.pitch).astype(np.int64)
    col = np.floor((z - group.z_min) / group.pitch).astype(np.int64)
    key = np.stack([event[owner], layer, module, row, col, owner])[:, keep]
    time = (t0[owner] + dist / C_CM_PER_NS)[keep]
    uniq, first, count = np.unique(key[:5], axis=1, return_index=True, return_counts=True)
    edep = count * group.mip_gev
    ev, lay, mod, row_u, col_u = uniq
    phi_c = mod * sector + (row_u + 0.5) * group.pitch / group.radius[lay]
    return {"event": ev, "particle": key[5, first], "layer": lay,
            "x": group.radius[lay] * np.cos(phi_c), "y": group.radius[lay] * np.sin(phi_c),
            "z": group.z_min + (col_u + 0.5) * group.pitch, "t": time[first], "edep": edep,
            "adc": np.clip(np.rint(edep / group.adc_gev), 1, 2 ** group.adc_bits - 1
                           ).astype(np.int64),
            "module": mod, "row": row_u, "col": col_u}
