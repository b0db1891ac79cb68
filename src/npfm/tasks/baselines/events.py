"""Plain per-event inputs of the tracking baselines and the helpers they share.

An *event* is a mapping of numpy arrays for one event with the event model's hit columns
(``hit_x``, ``hit_y``, ``hit_z`` in cm, ``hit_subsystem``, ``hit_layer``), the scalar
``magnetic_field`` (T) and the primary vertex ``vertex_x/y/z`` (cm; absent or None means 0).
Training and evaluation also read the truth columns ``hit_particle`` (-1 for noise) and
``particle_px/py/pz`` (GeV). A simulated event (``npfm.detectors.simulate_events``) or a row
of a corpus (``events_from_corpus``) is such a mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from npfm.detectors.geometry import load_geometry
from npfm.events.errors import NpfmError
from npfm.tasks.metrics import secondary_hits

Event = Mapping[str, Any]

#: Columns every finder reads.
HIT_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_subsystem", "hit_layer")
#: Columns needed to train a finder or to score its output.
TRUTH_COLUMNS = ("hit_particle", "particle_px", "particle_py", "particle_pz")
EVENT_COLUMNS = ("magnetic_field", "vertex_x", "vertex_y", "vertex_z")

#: Radius of curvature R (cm) = pT (GeV) / (CURVATURE * B (T)): R = p / (qB) with p in
#: GeV/c is p * 1e9 / (c B) m, c = 299792458 m/s (CODATA exact), i.e. 0.2998 per metre.
CURVATURE = 0.299792458e-2


@runtime_checkable
class TrackFinder(Protocol):
    """A track finder: ``fit`` on labelled events (a no-op for classical finders), then
    ``predict`` per-hit track labels (-1: unassigned / noise) for one event."""

    name: str

    def fit(self, events: Sequence[Event]) -> None: ...

    def predict(self, event: Event) -> np.ndarray: ...


def require(event: Event, columns: Sequence[str], what: str) -> None:
    """Raise a one-line ``NpfmError`` if the event lacks one of ``columns``."""
    missing = [c for c in columns if event.get(c) is None]
    if missing:
        run, number = event.get("run", "?"), event.get("event", "?")
        raise NpfmError(f"event run {run} event {number}", f"missing column(s) {missing} "
                        f"needed by {what}", "pass events with the event model's hit columns "
                        "(and hit_particle, particle_px/py/pz for training and scoring)")


@dataclass(frozen=True)
class HitFrame:
    """Hits in the beam frame: x, y relative to the vertex (cm), r, phi (rad), z (cm)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    vz: float
    field: float

    @property
    def eta(self) -> np.ndarray:
        """Pseudorapidity of the hit seen from the vertex."""
        return np.arcsinh((self.z - self.vz) / np.maximum(self.r, 1e-6))


def _scalar(event: Event, key: str) -> float:
    value = event.get(key)
    return 0.0 if value is None else float(value)


def hit_frame(event: Event) -> HitFrame:
    """The event's hits relative to its primary vertex (the beam line in x, y)."""
    require(event, (*HIT_COLUMNS, "magnetic_field"), "the tracking baselines")
    x = np.asarray(event["hit_x"], np.float64) - _scalar(event, "vertex_x")
    y = np.asarray(event["hit_y"], np.float64) - _scalar(event, "vertex_y")
    z = np.asarray(event["hit_z"], np.float64)
    return HitFrame(x, y, z, np.hypot(x, y), np.arctan2(y, x), _scalar(event, "vertex_z"),
                    float(event["magnetic_field"]))


@cache
def _layer_ranks(geometry: str) -> dict[tuple[str, int], int]:
    geo = load_geometry(geometry)
    lay = geo.layers
    sensitive = np.flatnonzero(lay.subsystem >= 0)
    key = np.where(lay.is_disk[sensitive], 1e4 + np.abs(lay.z[sensitive]),
                   lay.radius[sensitive])
    ordered = sensitive[np.argsort(key, kind="stable")]
    ranks = {(geo.subsystems[lay.subsystem[i]], int(lay.layer[i])): rank
             for rank, i in enumerate(ordered)}
    # Imaging layers of calorimeters (silicon among the absorbers) count on outwards;
    # their layer ids are the indices of their sorted radii (npfm.detectors.imaging).
    outer = sorted((r, g.subsystem, k) for g in geo.imaging for k, r in enumerate(g.radius))
    ranks.update({(name, k): len(ranks) + n for n, (_, name, k) in enumerate(outer)})
    return ranks


def global_layer(event: Event, geometry: str) -> np.ndarray:
    """Layer index of each hit counted outwards over all subsystems of ``geometry``
    (sPHENIX: MVTX 0-2, INTT 3-6, TPC 7-54), then over its calorimeters' imaging layers
    (ePIC: the BIC's AstroPix layers follow the trackers)."""
    ranks = _layer_ranks(geometry)
    subsystem = np.asarray(event["hit_subsystem"]).astype(str)
    layer = np.asarray(event["hit_layer"], np.int64)
    out = np.empty(len(layer), np.int64)
    for (name, lay), rank in ranks.items():
        out[(subsystem == name) & (layer == lay)] = rank
    known = np.zeros(len(layer), bool)
    for name in {n for n, _ in ranks}:
        known |= subsystem == name
    if not known.all():
        bad = sorted(set(subsystem[~known]))
        raise NpfmError(f"geometry {geometry}", f"hits of subsystem(s) {bad} it does not have",
                        "give the finder the geometry the events were made with")
    return out


def n_layers(geometry: str) -> int:
    """Number of sensitive layers of ``geometry``."""
    return len(_layer_ranks(geometry))


def hit_pt(event: Event) -> np.ndarray:
    """Transverse momentum (GeV) of each hit's truth particle; 0 for noise hits."""
    require(event, TRUTH_COLUMNS, "scoring")
    particle = np.asarray(event["hit_particle"], np.int64)
    pt = np.hypot(np.asarray(event["particle_px"], np.float64),
                  np.asarray(event["particle_py"], np.float64))
    return np.where(particle >= 0, pt[np.maximum(particle, 0)] if len(pt) else 0.0, 0.0)


def hit_eta(event: Event) -> np.ndarray:
    """Pseudorapidity of each hit's truth particle; 0 for noise hits."""
    particle = np.asarray(event["hit_particle"], np.int64)
    px, py, pz = (np.asarray(event[f"particle_p{c}"], np.float64) for c in "xyz")
    eta = np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-12))
    return np.where(particle >= 0, eta[np.maximum(particle, 0)] if len(eta) else 0.0, 0.0)


def hit_secondary(event: Event) -> np.ndarray:
    """True for hits of secondary particles (``particle_primary`` false); False for noise
    and where the event does not say (``metrics.secondary_hits``)."""
    return secondary_hits(event["hit_particle"], event.get("particle_primary"))


def events_from_corpus(path: str | Path, limit: int | None = None,
                       split: str | None = None) -> Iterator[dict[str, Any]]:
    """Events of a corpus as plain dicts (hit, truth and event columns), in corpus order;
    ``split`` keeps one split (train, validation, test), ``limit`` stops early."""
    from npfm.events.corpus import Corpus

    corpus = Corpus.open(path)
    columns = [*HIT_COLUMNS, *TRUTH_COLUMNS, *EVENT_COLUMNS, "particle_primary", "run", "event",
               "split"]
    count = 0
    for table in corpus.iter_tables(columns=columns):
        for row in table.to_pylist():
            if split is not None and row["split"] != split:
                continue
            if row["hit_x"] is None:
                continue
            yield {k: np.asarray(v) if isinstance(v, list) else v for k, v in row.items()}
            count += 1
            if limit is not None and count >= limit:
                return
