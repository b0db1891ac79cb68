"""Detector-agnostic tokens: one embedding per hit (or per reconstructed object).

A ``PackedBatch`` holds per-element fields only, so the geometry id and data level of
each of its B events are passed alongside it. Every scale comes from the event's
geometry file or from the documented constants below; none is specific to a detector.

Hit features (``HIT_FEATURES``, float32, all finite):

- eta: pseudorapidity asinh(z / r) clipped to [-ETA_MAX, ETA_MAX], divided by ETA_MAX;
  range [-1, 1];
- cos_phi, sin_phi: cosine and sine of the azimuth (periodic; no jump at +-pi);
- r: transverse radius / the geometry's ``r_max`` (outermost cylinder), clipped to
  [0, POSITION_CLIP];
- z: z / the geometry's ``z_max`` (half-length), clipped to [-POSITION_CLIP, POSITION_CLIP];
- energy: (log10(E / GeV) - log_e_mean) / log_e_std, clipped to [-ENERGY_CLIP, ENERGY_CLIP];
  0 where E is missing (NaN) or not positive;
- energy_missing: 1.0 where E is missing or not positive, else 0.0.

Object features (``OBJECT_FEATURES``, float32, all finite), from the momentum (GeV):

- eta: as for hits, and phi: azimuth / pi in [-1, 1], of the momentum direction;
- log_pt: (log10(pT / GeV) - log_pt_mean) / log_pt_std, clipped as the hit energy;
- log_mass: log10(1 + mass / GeV), 0 where missing; charge: clipped to [-1, 1], 0 if missing;
- d0, z0: asinh(impact parameter / IMPACT_SCALE_CM) / asinh(1 cm / IMPACT_SCALE_CM), so
  1 cm maps to 1; 0 where missing (null, or the column absent);
- d0_missing, z0_missing: 1.0 where the impact parameter is missing, else 0.0.

A hit's position enters twice: linearly (eta, cos_phi, sin_phi, r, z above) and through
a fixed Fourier encoding whose frequencies follow each coordinate's range and sampling
pitch in the event's geometry file (``GeometryFourier``). Objects' (eta, phi / pi,
log_pt) go through a fixed random NeRF-style encoding (``FourierEncoding``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from npfm.detectors import list_geometries, load_geometry
from npfm.events import vocabulary
from npfm.events.loader import PackedBatch
from npfm.model.serialize import cylindrical, event_index

ETA_MAX = 4.0
POSITION_CLIP = 2.0
ENERGY_CLIP = 5.0
#: Default log10(E / GeV) centre and spread: hit deposits of keV to MeV (1e-6 to 1e-3 GeV).
LOG_E_MEAN, LOG_E_STD = -5.0, 1.5
#: Default log10(pT / GeV) centre and spread for object tokens (0.1 to 10 GeV).
LOG_PT_MEAN, LOG_PT_STD = 0.0, 0.5
#: Impact-parameter scale (cm): 100 um, the order of LEP vertex-detector impact-parameter
#: resolution (ALEPH: 25 um + 95 um GeV / p; Buskulic et al., NIM A 360 (1995) 481).
IMPACT_SCALE_CM = 0.01
HIT_FEATURES = ("eta", "cos_phi", "sin_phi", "r", "z", "energy", "energy_missing")
#: Columns of ``HIT_FEATURES`` that give a hit's position (the linear path).
POSITION_FEATURES = 5
OBJECT_FEATURES = ("eta", "phi", "log_pt", "log_mass", "charge", "d0", "z0", "d0_missing",
                   "z0_missing")


def _log_feature(value: torch.Tensor, mean: float, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped z-scored log10 of ``value`` (0 where missing) and the missing flag."""
    present = torch.isfinite(value) & (value > 0)
    safe = torch.where(present, value, torch.ones_like(value))
    scored = ((torch.log10(safe) - mean) / std).clamp(-ENERGY_CLIP, ENERGY_CLIP)
    return torch.where(present, scored, torch.zeros_like(scored)), (~present).float()


def hit_features(fields: dict[str, torch.Tensor], cu_seqlens: torch.Tensor,
                 geometry_ids: Sequence[str], log_e_mean: float = LOG_E_MEAN,
                 log_e_std: float = LOG_E_STD) -> torch.Tensor:
    """(N, 7) float32 ``HIT_FEATURES`` of packed hits (``hit_x/y/z`` cm, ``hit_edep`` GeV).

    ``geometry_ids`` (length B) names each event's geometry (``load_geometry``); it is
    read only for events with hits, so object-only events may name any geometry.
    """
    has_hits = (cu_seqlens[1:] > cu_seqlens[:-1]).tolist()
    scales = []
    for geometry_id, present in zip(geometry_ids, has_hits, strict=True):
        geo = load_geometry(geometry_id) if present else None
        scales.append((geo.r_max, geo.z_max) if geo is not None else (1.0, 1.0))
    event = event_index(cu_seqlens)
    x, y, z = (fields[f"hit_{c}"].float() for c in "xyz")
    r_max, z_max = torch.tensor(scales, dtype=torch.float32, device=x.device)[event].unbind(1)
    eta, phi, r = cylindrical(x, y, z)
    energy, missing = _log_feature(fields["hit_edep"].float(), log_e_mean, log_e_std)
    return torch.stack([eta.clamp(-ETA_MAX, ETA_MAX) / ETA_MAX, torch.cos(phi), torch.sin(phi),
                        (r / r_max).clamp(0, POSITION_CLIP),
                        (z / z_max).clamp(-POSITION_CLIP, POSITION_CLIP), energy, missing], 1)


def hit_position(features: torch.Tensor) -> torch.Tensor:
    """(N, 3) (eta / ETA_MAX, phi / pi, r / r_max) of ``hit_features`` rows."""
    phi = torch.atan2(features[:, 2], features[:, 1]) / math.pi
    return torch.stack([features[:, 0], phi, features[:, 3]], 1)


def _impact(fields: dict[str, torch.Tensor], name: str, like: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled impact parameter ``name`` (cm; see the module docstring) and its missing flag."""
    value = fields[name].float() if name in fields else torch.full_like(like, torch.nan)
    present = torch.isfinite(value)
    scaled = torch.asinh(torch.where(present, value, 0) / IMPACT_SCALE_CM)
    return scaled / math.asinh(1 / IMPACT_SCALE_CM), (~present).float()


def object_features(fields: dict[str, torch.Tensor], log_pt_mean: float = LOG_PT_MEAN,
                    log_pt_std: float = LOG_PT_STD) -> torch.Tensor:
    """(N, 9) float32 ``OBJECT_FEATURES`` from ``object_px/py/pz/mass`` (GeV), ``charge``
    (e) and, where loaded, ``object_d0/z0`` (cm); see the module docstring."""
    px, py, pz = (fields[f"object_{c}"].float() for c in ("px", "py", "pz"))
    eta, phi, pt = cylindrical(px, py, pz)
    log_pt, _ = _log_feature(pt, log_pt_mean, log_pt_std)
    mass = torch.nan_to_num(fields["object_mass"].float()).clamp_min(0)
    charge = torch.nan_to_num(fields["object_charge"].float()).clamp(-1, 1)
    d0, d0_missing = _impact(fields, "object_d0", px)
    z0, z0_missing = _impact(fields, "object_z0", px)
    return torch.stack([eta.clamp(-ETA_MAX, ETA_MAX) / ETA_MAX, phi / math.pi, log_pt,
                        torch.log10(1 + mass), charge, d0, z0, d0_missing, z0_missing], 1)


class FourierEncoding(nn.Module):
    """Fixed random NeRF-style encoding: (N, dim) -> (N, 2 * dim * n_frequencies)."""

    frequencies: torch.Tensor

    def __init__(self, dim: int, n_frequencies: int = 10, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        jitter = 1 + torch.rand(dim, n_frequencies, generator=gen)
        octaves = 2.0 ** torch.arange(n_frequencies, dtype=torch.float32)
        self.register_buffer("frequencies", math.pi * octaves * jitter)
        self.out_dim = 2 * dim * n_frequencies

    def forward(self, position: torch.Tensor) -> torch.Tensor:
        angle = (position.unsqueeze(-1) * self.frequencies).flatten(1)
        return torch.cat([torch.sin(angle), torch.cos(angle)], 1)


def sampling_pitch_cm(geometry_id: str) -> float:
    """Mean radial gap (cm) between consecutive distinct barrel-layer radii of a geometry:
    the spacing of hits along a track, below which a position encoding only aliases.
    ``r_max / 50`` where the geometry has fewer than two barrel radii."""
    geo = load_geometry(geometry_id)
    radii = np.unique(geo.layers.radius[~geo.layers.is_disk])
    return float(np.diff(radii).mean()) if len(radii) > 1 else geo.r_max / 50


def geometry_frequencies(geometry_id: str, n_frequencies: int) -> torch.Tensor:
    """(4, n) angular frequencies for (eta, phi rad, r cm, z cm) of one geometry.

    Per coordinate, a geometric ladder from one period over its range (eta: 2 ETA_MAX,
    phi: 2 pi, r: r_max, z: 2 z_max) to one period per sampling pitch p
    (``sampling_pitch_cm``; as an angle or pseudorapidity, p / r_max). Azimuthal
    frequencies are rounded to whole harmonics, so the encoding is 2 pi-periodic.
    """
    geo = load_geometry(geometry_id)
    pitch = sampling_pitch_cm(geometry_id)
    ranges = torch.tensor([2 * ETA_MAX, 2 * math.pi, geo.r_max, 2 * geo.z_max],
                          dtype=torch.float64)
    pitches = torch.tensor([pitch / geo.r_max, pitch / geo.r_max, pitch, pitch],
                           dtype=torch.float64)
    ratio = (ranges / pitches).clamp_min(1)
    steps = torch.arange(n_frequencies, dtype=torch.float64) / max(n_frequencies - 1, 1)
    freq = 2 * math.pi / ranges[:, None] * ratio[:, None] ** steps[None]
    freq[1] = freq[1].round().clamp_min(1)
    return freq.float()


class GeometryFourier(nn.Module):
    """Fixed Fourier encoding of hit positions with per-geometry frequencies.

    forward(position (N, 4) as (eta, phi rad, r cm, z cm), geometry_ids (B), event (N))
    -> (N, 8 n): sin and cos of each coordinate times each of its ``n`` frequencies
    (``frequencies(geometry_id, n)``, by default ``geometry_frequencies``, of the hit's
    event's geometry). Nothing is trained.
    """

    def __init__(self, n_frequencies: int = 10,
                 frequencies: Callable[[str, int], torch.Tensor] = geometry_frequencies
                 ) -> None:
        super().__init__()
        self.n_frequencies, self.frequencies = n_frequencies, frequencies
        self.out_dim = 8 * n_frequencies
        self._tables: dict[str, torch.Tensor] = {}

    def table(self, geometry_ids: Sequence[str | None]) -> torch.Tensor:
        """(B, 4, n) frequencies of each event's geometry (cached per geometry; zeros for
        ``None``, an event without hits)."""
        for g in {g for g in geometry_ids if g is not None} - set(self._tables):
            self._tables[g] = self.frequencies(g, self.n_frequencies)
        empty = torch.zeros(4, self.n_frequencies)
        return torch.stack([empty if g is None else self._tables[g] for g in geometry_ids])

    def forward(self, position: torch.Tensor, geometry_ids: Sequence[str | None],
                event: torch.Tensor) -> torch.Tensor:
        freq = self.table(geometry_ids).to(position.device)[event]
        angle = (position.unsqueeze(-1) * freq).flatten(1)
        return torch.cat([torch.sin(angle), torch.cos(angle)], 1)


class _EventContext(nn.Module):
    """Learned embeddings of each event's detector (geometry) and data level, per element.

    Geometry ids match shipped geometries case-insensitively (the ALEPH archive's
    ``ALEPH`` is ``aleph``); others (YAML paths) share one extra "other" index.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.geometries = list_geometries()
        self.levels = vocabulary.names("data_levels")
        self.detector = nn.Embedding(len(self.geometries) + 1, d_model)
        self.level = nn.Embedding(len(self.levels), d_model)

    def forward(self, cu_seqlens: torch.Tensor, geometry_ids: Sequence[str],
                data_levels: Sequence[str]) -> torch.Tensor:
        if not len(geometry_ids) == len(data_levels) == len(cu_seqlens) - 1:
            raise ValueError(f"{len(cu_seqlens) - 1} events, {len(geometry_ids)} geometry ids "
                             f"and {len(data_levels)} data levels")
        other = len(self.geometries)
        known = {name.lower(): i for i, name in enumerate(self.geometries)}
        det = [known.get(str(g).lower(), other) for g in geometry_ids]
        lev = [vocabulary.code("data_levels", name) for name in data_levels]
        event = event_index(cu_seqlens)
        device = self.detector.weight.device
        return (self.detector(torch.tensor(det, device=device))[event]
                + self.level(torch.tensor(lev, device=device))[event])


def _event_metadata(batch: PackedBatch, geometry_ids: Sequence[str] | None,
                    data_levels: Sequence[str] | None) -> tuple[Sequence[str], Sequence[str]]:
    """Explicit per-event geometry ids and data levels, else the batch's event fields."""
    try:
        geometry_ids = batch.event_fields["geometry_id"] if geometry_ids is None else geometry_ids
        data_levels = batch.event_fields["data_level"] if data_levels is None else data_levels
    except KeyError as missing:
        raise ValueError(f"no {missing} given: pass it, or load it with EventLoader("
                         "event_columns=[\"geometry_id\", \"data_level\"])") from None
    return geometry_ids, data_levels


def _codes(values: torch.Tensor, size: int) -> torch.Tensor:
    """Vocabulary codes with out-of-range ones (nulls: -100) mapped to ``size`` (unknown)."""
    return torch.where((values >= 0) & (values < size), values, torch.full_like(values, size))


class HitTokenizer(nn.Module):
    """(N, d_model) hit embeddings of a ``PackedBatch``.

    MLP(GeometryFourier(eta, phi, r, z)) + linear(eta, cos_phi, sin_phi, r, z)
    + linear(energy, energy_missing) + subsystem + detector + data-level embeddings.
    Subsystem codes come from ``vocabulary.yaml`` (null or unknown codes share one extra
    row).
    """

    def __init__(self, d_model: int, n_frequencies: int = 10,
                 log_e_mean: float = LOG_E_MEAN, log_e_std: float = LOG_E_STD) -> None:
        super().__init__()
        self.log_e_mean, self.log_e_std = log_e_mean, log_e_std
        self.fourier = GeometryFourier(n_frequencies)
        self.position = nn.Sequential(nn.Linear(self.fourier.out_dim, 2 * d_model), nn.GELU(),
                                      nn.Linear(2 * d_model, d_model))
        self.linear = nn.Linear(POSITION_FEATURES, d_model)
        self.energy = nn.Linear(2, d_model)
        self.n_subsystems = len(vocabulary.names("subsystems"))
        self.subsystem = nn.Embedding(self.n_subsystems + 1, d_model)
        self.context = _EventContext(d_model)

    def forward(self, batch: PackedBatch, geometry_ids: Sequence[str] | None = None,
                data_levels: Sequence[str] | None = None) -> torch.Tensor:
        """Tokens of ``batch``'s hits; one geometry id and data-level name per event
        (default: ``batch.event_fields["geometry_id"]`` and ``["data_level"]``)."""
        fields, cu_seqlens = batch.fields, batch.cu_seqlens
        geometry_ids, data_levels = _event_metadata(batch, geometry_ids, data_levels)
        feats = hit_features(fields, cu_seqlens, geometry_ids, self.log_e_mean, self.log_e_std)
        feats = feats.to(self.linear.weight.device)
        x, y, z = (fields[f"hit_{c}"].float().to(feats.device) for c in "xyz")
        eta, phi, r = cylindrical(x, y, z)
        position = torch.stack([eta.clamp(-ETA_MAX, ETA_MAX), phi, r, z], 1)
        present = (cu_seqlens[1:] > cu_seqlens[:-1]).tolist()
        frequency_ids = [g if p else None for g, p in zip(geometry_ids, present, strict=True)]
        encoded = self.fourier(position, frequency_ids, event_index(cu_seqlens).to(feats.device))
        sub = _codes(fields["hit_subsystem"].to(feats.device), self.n_subsystems)
        return (self.position(encoded) + self.linear(feats[:, :POSITION_FEATURES])
                + self.energy(feats[:, POSITION_FEATURES:]) + self.subsystem(sub)
                + self.context(cu_seqlens, geometry_ids, data_levels))


class ObjectTokenizer(nn.Module):
    """(N, d_model) embeddings of reconstructed objects (``EventLoader(group="object")``).

    projection(Fourier(eta, phi, log_pt)) + projection(log_mass, charge, d0, z0 and
    their missing flags) + object-type + detector + data-level embeddings.
    """

    def __init__(self, d_model: int, n_frequencies: int = 10, seed: int = 0) -> None:
        super().__init__()
        self.fourier = FourierEncoding(3, n_frequencies, seed)
        self.position = nn.Linear(self.fourier.out_dim, d_model)
        self.properties = nn.Linear(len(OBJECT_FEATURES) - 3, d_model)
        self.n_types = len(vocabulary.names("object_types"))
        self.object_type = nn.Embedding(self.n_types + 1, d_model)
        self.context = _EventContext(d_model)

    def forward(self, batch: PackedBatch, geometry_ids: Sequence[str] | None = None,
                data_levels: Sequence[str] | None = None) -> torch.Tensor:
        """Tokens of ``batch``'s objects; one geometry id and data-level name per event
        (default: ``batch.event_fields["geometry_id"]`` and ``["data_level"]``)."""
        fields, cu_seqlens = batch.fields, batch.cu_seqlens
        geometry_ids, data_levels = _event_metadata(batch, geometry_ids, data_levels)
        feats = object_features(fields).to(self.position.weight.device)
        kind = _codes(fields["object_type"].to(feats.device), self.n_types)
        return (self.position(self.fourier(feats[:, :3])) + self.properties(feats[:, 3:])
                + self.object_type(kind) + self.context(cu_seqlens, geometry_ids, data_levels))
