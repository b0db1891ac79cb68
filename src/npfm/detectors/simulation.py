"""Fast detector simulation: ``GeneratedEvent`` -> event-model mapping for
``npfm.events.build.events_to_table``.

Per batch of events, vectorised over all particles: K0S / Lambda decays in flight,
helix propagation of the charged final particles through the geometry (multiple
scattering, energy loss, loopers), digitisation (efficiency, Landau-like deposits,
resolution, readout cells, ADC), noise hits, FM4NPP labels, reconstructed objects, and
calorimeter cells where the geometry has calorimeters (``npfm.detectors.calorimeter``).
Not simulated: secondaries from material (delta rays, conversions, hadronic
interactions), bremsstrahlung, decays in flight of charged particles, dead areas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from npfm.detectors.calorimeter import simulate_cells
from npfm.detectors.decays import Particles, decay_in_flight
from npfm.detectors.digitize import Hits, digitize, noise_hits
from npfm.detectors.geometry import load_geometry
from npfm.detectors.objects import reconstruct
from npfm.detectors.propagate import propagate
from npfm.detectors.tables import Geometry
from npfm.events.labels import hit_labels
from npfm.physics.record import GeneratedEvent


@dataclass(frozen=True)
class SimOptions:
    """Switches of the simulation (defaults: everything on).

    multiple_scattering, energy_loss: material effects at each crossing; smearing: hit
    resolution and object smearing; efficiency: per-layer hit efficiency (off: every
    crossing is a hit); noise: electronic noise hits; decays: K0S / Lambda decays in
    flight; include_objects: the object_* columns; calorimeter: calorimeter cells and their
    truth contributions (geometries with ``calorimeters``); waveforms: the sampled
    waveforms of fibre calorimeters (off: their cells only); max_turns: turns (2 pi) after
    which a particle is dropped; block, linear_max_kink: crossings per propagation step and the
    largest kink treated to first order within a step (0: exact stepping everywhere, see
    ``npfm.detectors.propagate``); max_steps: safety bound on propagation steps.
    """

    multiple_scattering: bool = True
    energy_loss: bool = True
    smearing: bool = True
    efficiency: bool = True
    noise: bool = True
    decays: bool = True
    include_objects: bool = True
    calorimeter: bool = True
    waveforms: bool = True
    max_turns: float = 3.0
    block: int = 16
    linear_max_kink: float = 3e-3
    max_steps: int = 5000


def simulate(event: GeneratedEvent, geometry: Geometry | str, rng: np.random.Generator, *,
             run: int = 0, event_number: int = 0, **options: Any) -> dict[str, Any]:
    """One simulated event as an event-model mapping; ``options`` are ``SimOptions``
    fields. ``geometry`` is a ``Geometry`` or a name from ``list_geometries()``."""
    return simulate_events([event], geometry, rng, run=run, first_event=event_number,
                           **options)[0]


def simulate_events(events: Sequence[GeneratedEvent], geometry: Geometry | str,
                    rng: np.random.Generator, *, run: int = 0, first_event: int = 0,
                    **options: Any) -> list[dict[str, Any]]:
    """Simulate a batch of events together (faster per event than one at a time);
    event numbers are ``first_event``, ``first_event + 1``, ..."""
    opts = SimOptions(**options)
    geo = load_geometry(geometry) if isinstance(geometry, str) else geometry
    if not events:
        return []
    n_events = len(events)
    parts = Particles.from_events(list(events))
    if opts.decays:
        parts = decay_in_flight(parts, geo.r_max, geo.z_max, rng)
    parts, offsets = parts.grouped(n_events)
    track = np.flatnonzero(parts.final & (parts.charge != 0))
    cross = propagate(parts.vx[track], parts.vy[track], parts.vz[track], parts.px[track],
                      parts.py[track], parts.pz[track], parts.charge[track],
                      parts.mass[track], parts.vt[track], geo, rng,
                      multiple_scattering=opts.multiple_scattering,
                      energy_loss=opts.energy_loss, max_turns=opts.max_turns,
                      block=opts.block, linear_max_kink=opts.linear_max_kink,
                      max_steps=opts.max_steps)
    cross.particle = track[cross.particle]
    hits = digitize(cross, parts.mass, parts.charge, geo, rng, smearing=opts.smearing,
                    efficiency=opts.efficiency)
    hit_event = parts.event[hits.particle]
    if opts.noise:
        noise, noise_event = noise_hits(geo, n_events, rng)
        hits = Hits.concat([hits, noise])
        hit_event = np.concatenate((hit_event, noise_event))
    lay = geo.layers
    # imaging-layer subsystems (after the trackers') only where the calorimeters run
    n_sub = len(geo.subsystems) if opts.calorimeter and geo.calorimeters else \
        int(lay.subsystem.max()) + 1
    h = {"particle": hits.particle, "x": hits.x, "y": hits.y, "z": hits.z, "t": hits.t,
         "edep": hits.edep, "adc": hits.adc, "module": hits.module, "row": hits.row,
         "col": hits.col, "layer": lay.layer[hits.layer], "subsystem": lay.subsystem[hits.layer],
         "event": hit_event}
    nhits = _count_hits(h, len(parts), n_sub)
    objects: dict[str, Any] = {}
    object_bounds = np.zeros(n_events + 1, np.int64)
    if opts.include_objects:
        vertex = np.array([[e.info.get("vertex_x", 0.0), e.info.get("vertex_y", 0.0)]
                           for e in events], dtype=np.float64).reshape(n_events, 2)
        objects, index = reconstruct(parts, nhits, geo, vertex[parts.event, 0],
                                     vertex[parts.event, 1], rng, smear=opts.smearing)
        object_bounds = np.searchsorted(parts.event[index], np.arange(n_events + 1))
    cells = simulate_cells(parts, geo, rng, opts.waveforms) \
        if opts.calorimeter and geo.calorimeters else None
    if cells is not None and cells["imaging"]:  # imaging-layer hits join the tracker's
        h = {key: np.concatenate([value, cells["imaging"][key]]) for key, value in h.items()}
        nhits = _count_hits(h, len(parts), n_sub)
    # readout order within each event (no truth ordering leaks into the hit lists)
    order = lexsort_ints([h["col"], h["row"], h["module"], h["layer"], h["subsystem"],
                          h["event"]])
    h = {key: value[order] for key, value in h.items()}
    hit_bounds = np.searchsorted(h["event"], np.arange(n_events + 1))
    # per-hit and per-particle columns of the whole batch, then one slice per event
    bounds = np.append(offsets, len(parts))
    local = np.where(h["particle"] >= 0, h["particle"] - bounds[h["event"]], -1)
    pid, noise_tag = hit_labels(h["particle"], parts.pdg, parts.px, parts.py)
    hit_columns = {
        "hit_x": h["x"], "hit_y": h["y"], "hit_z": h["z"], "hit_t": h["t"],
        "hit_edep": h["edep"], "hit_adc": h["adc"],
        "hit_subsystem": np.array(geo.subsystems)[h["subsystem"]],
        "hit_layer": h["layer"], "hit_module": h["module"],
        "hit_cell_row": h["row"], "hit_cell_col": h["col"], "hit_particle": local,
        "hit_track_id": local, "hit_pid_class": pid, "hit_noise": noise_tag,
    }
    particle_columns = {
        "particle_pdg": parts.pdg, "particle_charge": parts.charge, "particle_px": parts.px,
        "particle_py": parts.py, "particle_pz": parts.pz, "particle_vx": parts.vx,
        "particle_vy": parts.vy, "particle_vz": parts.vz, "particle_vt": parts.vt,
        "particle_parent": np.where(parts.parent >= 0, parts.parent - bounds[parts.event], -1),
        "particle_primary": parts.primary, "particle_nhits": nhits,
    }
    header = {
        "facility": geo.facility, "experiment": geo.experiment, "geometry_id": geo.id,
        "geometry_version": geo.version, "run": run, "magnetic_field": geo.field_tesla,
        "data_level": "simulated",
    }
    out = []
    for k, ev in enumerate(events):
        h0, h1, p0, p1 = hit_bounds[k], hit_bounds[k + 1], bounds[k], bounds[k + 1]
        row: dict[str, Any] = {
            **header, "event": first_event + k, "subsystems": list(geo.subsystems[:n_sub]),
            **ev.info,
            **{key: value[h0:h1] for key, value in hit_columns.items()},
            **{key: value[p0:p1] for key, value in particle_columns.items()},
        }
        if opts.include_objects:
            o0, o1 = object_bounds[k], object_bounds[k + 1]
            row.update({key: value[o0:o1] for key, value in objects.items()})
        out.append(row)
    if cells is not None:
        _add_cells(out, cells, bounds, geo)
    return out


def lexsort_ints(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` (last key primary) of integer arrays, by one stable argsort of
    the keys packed into an int64 when their ranges fit in 63 bits (the same permutation:
    packing keeps the lexicographic order and both sorts are stable)."""
    packed = np.zeros(len(keys[0]), np.int64)
    bits = 0
    for key in reversed(keys):  # primary key in the highest bits
        if not len(key):
            return np.zeros(0, np.int64)
        low, high = int(key.min()), int(key.max())
        width = (high - low).bit_length()
        bits += width
        if bits > 63:
            return np.lexsort(keys)
        packed = (packed << width) | (key.astype(np.int64) - low)
    return np.argsort(packed, kind="stable")


def _count_hits(h: dict[str, np.ndarray], n_parts: int, n_sub: int) -> np.ndarray:
    """Hits per (particle, subsystem) of the particles' own hits (noise excluded)."""
    real = h["particle"] >= 0
    return np.bincount(h["particle"][real] * n_sub + h["subsystem"][real],
                       minlength=n_parts * n_sub).reshape(n_parts, n_sub)


def _add_cells(rows: list[dict[str, Any]], cells: dict[str, Any], bounds: np.ndarray,
               geo: Geometry) -> None:
    """Per-event cell and truth-contribution columns (indices local to the event)."""
    n = len(rows)
    c_bounds = np.searchsorted(cells["cell_event"], np.arange(n + 1))
    t_bounds = np.searchsorted(cells["truth_event"], np.arange(n + 1))
    names = np.array([c.subsystem for c in geo.calorimeters])
    truth_cell = cells["truth_cell"] - c_bounds[cells["truth_event"]]
    truth_particle = cells["truth_particle"] - bounds[cells["truth_event"]]
    for k, row in enumerate(rows):
        c0, c1, t0, t1 = c_bounds[k], c_bounds[k + 1], t_bounds[k], t_bounds[k + 1]
        row.update({name: cells[name][c0:c1] for name in (
            "cell_id", "cell_layer", "cell_x", "cell_y", "cell_z", "cell_energy", "cell_time")})
        row.update(cell_subsystem=names[cells["cell_calo"][c0:c1]],
                   cell_truth_cell=truth_cell[t0:t1], cell_truth_particle=truth_particle[t0:t1],
                   cell_truth_fraction=cells["truth_fraction"][t0:t1])
    if "waveform_event" in cells and len(cells["waveform_event"]):
        _add_waveforms(rows, cells, c_bounds)


def _add_waveforms(rows: list[dict[str, Any]], cells: dict[str, Any], c_bounds: np.ndarray
                   ) -> None:
    """Per-event waveform and sample columns (``waveform_cell`` local to the event)."""
    event = cells["waveform_event"]
    w_bounds = np.searchsorted(event, np.arange(len(rows) + 1))
    s_bounds = np.concatenate([[0], np.cumsum(cells["waveform_n_samples"])])[w_bounds]
    local = cells["waveform_cell"] - c_bounds[event]
    for k, row in enumerate(rows):
        w0, w1 = w_bounds[k], w_bounds[k + 1]
        row.update({name: cells[name][w0:w1] for name in (
            "waveform_end", "waveform_n_samples", "waveform_period_ns", "waveform_pedestal",
            "waveform_gain")}, waveform_cell=local[w0:w1],
            sample_adc=cells["sample_adc"][s_bounds[k]:s_bounds[k + 1]])
