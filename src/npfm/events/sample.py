"""Randomised, schema-complete events for tests and benchmarks.

These are toy events, not physics: straight-line tracks from the origin crossing
cylindrical layers, plus uniform noise hits. They exercise every column of the schema
(including nulls and derived labels) at a realistic size: about 850 hits per event,
as in FM4NPP's TPC events. Real events come from the simulation and importers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npfm.events.labels import hit_labels

#: (subsystem, layer radii in cm) of the toy detector.
_LAYERS = (("MVTX", (2.5, 3.3, 4.1)), ("INTT", (7.2, 7.7, 9.7, 10.3)),
           ("TPC", tuple(np.linspace(31.1, 75.9, 48).round(2))))
_SUBSYSTEMS = [name for name, _ in _LAYERS]
_PDG = np.array([211, -211, 321, -321, 2212, -2212, 11, -11, 13, 22])


def sample_event(rng: np.random.Generator, run: int = 1, event: int = 0,
                 mean_tracks: float = 16.0, noise_hits: int = 30) -> dict[str, Any]:
    """One toy event as a column mapping for ``build.events_to_table``."""
    n_tracks = max(1, int(rng.poisson(mean_tracks)))
    pdg = rng.choice(_PDG, n_tracks)
    pt = rng.exponential(0.5, n_tracks) + 0.02
    phi0, eta = rng.uniform(-np.pi, np.pi, n_tracks), rng.uniform(-1.1, 1.1, n_tracks)
    radii = np.concatenate([r for _, r in _LAYERS]).astype(np.float64)
    sub = np.concatenate([[i] * len(r) for i, (_, r) in enumerate(_LAYERS)])
    layer = np.concatenate([np.arange(len(r)) for _, r in _LAYERS])
    # Each track hits a random ~90% of the layers.
    hit = rng.random((n_tracks, len(radii))) < 0.9
    track, lay = np.nonzero(hit)
    r = radii[lay]
    phi = phi0[track] + rng.normal(0, 0.002, len(track))
    hx, hy, hz = r * np.cos(phi), r * np.sin(phi), r * np.sinh(eta[track])
    n_noise = noise_hits
    nr = rng.choice(radii, n_noise)
    nphi = rng.uniform(-np.pi, np.pi, n_noise)
    x = np.concatenate([hx, nr * np.cos(nphi)])
    y = np.concatenate([hy, nr * np.sin(nphi)])
    z = np.concatenate([hz, rng.uniform(-100, 100, n_noise)])
    particle = np.concatenate([track, -np.ones(n_noise, dtype=np.int64)])
    sub_idx = np.concatenate([sub[lay], sub[np.searchsorted(radii, nr)]])
    layer_idx = np.concatenate([layer[lay], layer[np.searchsorted(radii, nr)]])
    px, py, pz = pt * np.cos(phi0), pt * np.sin(phi0), pt * np.sinh(eta)
    pid, noise = hit_labels(particle, pdg, px, py)
    nhits = np.stack([np.bincount(track[sub[lay] == s], minlength=n_tracks)
                      for s in range(len(_LAYERS))], axis=1)
    return {
        "facility": "RHIC", "experiment": "sPHENIX", "geometry_id": "toy-cylinders",
        "geometry_version": "1", "beam1_pdg": 2212, "beam2_pdg": 2212, "beam1_energy": 100.0,
        "beam2_energy": 100.0, "sqrt_s": 200.0, "process": "toy", "run": run, "event": event,
        "magnetic_field": 1.4, "data_level": "simulated", "split": "train",
        "subsystems": _SUBSYSTEMS,
        "hit_x": x, "hit_y": y, "hit_z": z, "hit_t": None,
        "hit_edep": rng.gamma(2.0, 1e-6, len(x)), "hit_subsystem":
            np.array(_SUBSYSTEMS)[sub_idx], "hit_layer": layer_idx, "hit_particle": particle,
        "hit_track_id": particle, "hit_pid_class": pid, "hit_noise": noise,
        "particle_pdg": pdg, "particle_charge": np.sign(pdg).astype(float) * (pdg != 22),
        "particle_px": px, "particle_py": py, "particle_pz": pz,
        "particle_vx": np.zeros(n_tracks), "particle_vy": np.zeros(n_tracks),
        "particle_vz": np.zeros(n_tracks), "particle_parent": -np.ones(n_tracks, np.int64),
        "particle_primary": np.ones(n_tracks, bool), "particle_nhits": nhits,
    }


def sample_events(n: int, seed: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """``n`` toy events with reproducible content for a given ``seed``."""
    rng = np.random.default_rng(seed)
    return [sample_event(rng, event=i, **kwargs) for i in range(n)]
