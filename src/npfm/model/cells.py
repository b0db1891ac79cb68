"""Calorimeter tokens: one embedding per cell, plus a learned encoding of its waveforms.

Cell features (``CELL_FEATURES``, float32, all finite), from ``EventLoader(group="cell")``:

- eta, cos_phi, sin_phi: of the cell centre, as for hits (``npfm.model.tokenize``);
- r: r / R, z: z / Z, clipped as hits are, where R is the outer radius of the event's
  outermost calorimeter and Z = max(z_max, R sinh(eta_max)) (``calo_scale``); the
  tracker's r_max and z_max where the geometry has no ``calorimeters:``;
- energy: (log10(E / GeV) - CELL_LOG_E_MEAN) / CELL_LOG_E_STD, clipped to +-ENERGY_CLIP,
  and its missing flag;
- time: (t - |x| / c) / TIME_SCALE_NS, the delay after a prompt photon from the origin,
  clipped to +-TIME_CLIP, and its missing flag.

``CellTokenizer``: MLP(GeometryFourier(eta, phi, r, z) with calorimeter frequencies,
``calo_frequencies``) + linear(position) + linear(energy, time and flags) + subsystem,
layer, detector and data-level embeddings, + the sum of the cell's waveform embeddings
(``WaveformEncoder``: one per readout channel, e.g. both ends of a fibre) where the
batch carries waveforms.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from npfm.detectors import load_geometry
from npfm.events import vocabulary
from npfm.events.loader import PackedBatch
from npfm.model.serialize import cylindrical, event_index
from npfm.model.tokenize import (
    ETA_MAX,
    POSITION_CLIP,
    GeometryFourier,
    _codes,
    _event_metadata,
    _EventContext,
    _log_feature,
    geometry_frequencies,
)

CELL_FEATURES = ("eta", "cos_phi", "sin_phi", "r", "z", "energy", "energy_missing", "time",
                 "time_missing")
#: log10(E / GeV) centre and spread of cells: zero-suppressed towers of ~10 MeV to ~10 GeV.
CELL_LOG_E_MEAN, CELL_LOG_E_STD = -1.0, 1.0
#: Time scale (ns): the order of the sPHENIX calorimeters' time resolution (0.5-1 ns,
#: geometries/sphenix.yaml), so a late (slow-hadron) deposit stands out.
TIME_SCALE_NS, TIME_CLIP = 1.0, 10.0
C_CM_PER_NS = 29.9792458
#: The cell columns ``CellTokenizer`` reads (``EventLoader(group="cell", columns=...)``).
CELL_COLUMNS = ("cell_x", "cell_y", "cell_z", "cell_energy", "cell_time", "cell_subsystem",
                "cell_layer")
#: Layer embeddings: layers 0..MAX_LAYERS-1; deeper or null layers share one extra row.
MAX_LAYERS = 64


def calo_scale(geometry_id: str) -> tuple[float, float]:
    """(R, Z) in cm: the cell position scales of a geometry (module docstring)."""
    geo = load_geometry(geometry_id)
    if not geo.calorimeters:
        return geo.r_max, geo.z_max
    r = max(c.r_outer for c in geo.calorimeters)
    return r, max(geo.z_max, r * math.sinh(max(c.eta_max for c in geo.calorimeters)))


def calo_frequencies(geometry_id: str, n_frequencies: int) -> torch.Tensor:
    """(4, n) angular frequencies for cell (eta, phi rad, r cm, z cm): per coordinate a
    geometric ladder from one period over its range (2 ETA_MAX, 2 pi, R, 2 Z) to one
    period per finest tower pitch (eta: 2 eta_max / n_eta, phi: 2 pi / n_phi, r: the
    thinnest calorimeter, z: the eta pitch times the innermost radius); azimuthal ones
    are whole harmonics. ``geometry_frequencies`` where the geometry has no calorimeter."""
    geo = load_geometry(geometry_id)
    if not geo.calorimeters:
        return geometry_frequencies(geometry_id, n_frequencies)
    calos = geo.calorimeters
    r_scale, z_scale = calo_scale(geometry_id)
    eta_pitch = min(2 * c.eta_max / c.n_eta for c in calos)
    pitches = torch.tensor([eta_pitch, min(2 * math.pi / c.n_phi for c in calos),
                            min(c.r_outer - c.r_inner for c in calos),
                            eta_pitch * min(c.r_inner for c in calos)], dtype=torch.float64)
    ranges = torch.tensor([2 * ETA_MAX, 2 * math.pi, r_scale, 2 * z_scale], dtype=torch.float64)
    ratio = (ranges / pitches).clamp_min(1)
    steps = torch.arange(n_frequencies, dtype=torch.float64) / max(n_frequencies - 1, 1)
    freq = 2 * math.pi / ranges[:, None] * ratio[:, None] ** steps[None]
    freq[1] = freq[1].round().clamp_min(1)
    return freq.float()


def cell_features(fields: dict[str, torch.Tensor], cu_seqlens: torch.Tensor,
                  geometry_ids: Sequence[str]) -> torch.Tensor:
    """(N, 9) float32 ``CELL_FEATURES`` of packed cells (``cell_x/y/z`` cm,
    ``cell_energy`` GeV, ``cell_time`` ns); geometries are read for events with cells."""
    has = (cu_seqlens[1:] > cu_seqlens[:-1]).tolist()
    scales = [calo_scale(g) if present else (1.0, 1.0)
              for g, present in zip(geometry_ids, has, strict=True)]
    x, y, z = (fields[f"cell_{c}"].float() for c in "xyz")
    r_scale, z_scale = torch.tensor(scales, dtype=torch.float32,
                                    device=x.device)[event_index(cu_seqlens)].unbind(1)
    eta, phi, r = cylindrical(x, y, z)
    energy, e_missing = _log_feature(fields["cell_energy"].float(), CELL_LOG_E_MEAN,
                                     CELL_LOG_E_STD)
    t = fields["cell_time"].float() if "cell_time" in fields else torch.full_like(x, math.nan)
    t_ok = torch.isfinite(t)
    delay = (t - torch.sqrt(x * x + y * y + z * z) / C_CM_PER_NS) / TIME_SCALE_NS
    delay = torch.where(t_ok, delay, 0).clamp(-TIME_CLIP, TIME_CLIP)
    return torch.stack([eta.clamp(-ETA_MAX, ETA_MAX) / ETA_MAX, torch.cos(phi), torch.sin(phi),
                        (r / r_scale).clamp(0, POSITION_CLIP),
                        (z / z_scale).clamp(-POSITION_CLIP, POSITION_CLIP), energy, e_missing,
                        delay, (~t_ok).float()], 1)


@dataclass
class Waveforms:
    """Packed readout waveforms of a cell batch (W waveforms).

    cell: (W,) int64 index into the cell batch; end: (W,) readout end (0 or 1);
    samples: (W, L) float32 ADC counts, zero beyond each waveform's ``n_samples`` (W,);
    period_ns, pedestal (ADC counts), gain (ADC counts per photo-electron): (W,) float32.
    """

    cell: torch.Tensor
    end: torch.Tensor
    samples: torch.Tensor
    n_samples: torch.Tensor
    period_ns: torch.Tensor
    pedestal: torch.Tensor
    gain: torch.Tensor

    @staticmethod
    def empty(device: torch.device | str = "cpu") -> Waveforms:
        z = torch.zeros(0, device=device)
        return Waveforms(z.long(), z.long(), torch.zeros(0, 1, device=device), z.long(), z, z,
                         z)

    def reindexed(self, source: torch.Tensor) -> Waveforms:
        """The same waveforms for the cells reordered so that new cell i is old cell
        ``source[i]`` (``source`` a permutation of the cell batch)."""
        new = torch.empty_like(source)
        new[source] = torch.arange(len(source), device=source.device)
        return dataclasses.replace(self, cell=new.to(self.cell.device)[self.cell])

    def of_cells(self, start: int, stop: int) -> Waveforms:
        """The waveforms of cells ``start:stop``, their cell index counted from ``start``."""
        keep = (self.cell >= start) & (self.cell < stop)
        return Waveforms(self.cell[keep] - start, self.end[keep], self.samples[keep],
                         self.n_samples[keep], self.period_ns[keep], self.pedestal[keep],
                         self.gain[keep])

    @staticmethod
    def concat(parts: Sequence[Waveforms], n_cells: Sequence[int]) -> Waveforms:
        """The waveforms of consecutive cell batches of ``n_cells`` cells each."""
        if len(parts) == 1:
            return parts[0]
        offsets = torch.cumsum(torch.tensor([0, *n_cells[:-1]]), 0).tolist()
        length = max(w.samples.shape[1] for w in parts)
        return Waveforms(
            torch.cat([w.cell + o for w, o in zip(parts, offsets, strict=True)]),
            torch.cat([w.end for w in parts]),
            torch.cat([torch.nn.functional.pad(w.samples, (0, length - w.samples.shape[1]))
                       for w in parts]),
            *(torch.cat([getattr(w, k) for w in parts])
              for k in ("n_samples", "period_ns", "pedestal", "gain")))


def waveforms_of(cells: PackedBatch, waveforms: PackedBatch, samples: PackedBatch
                 ) -> Waveforms:
    """``Waveforms`` from loader batches of the ``waveform`` and ``sample`` groups of the
    same events as ``cells`` (same corpus and loader settings; checked by run and event)."""
    for other, group in ((waveforms, "waveform"), (samples, "sample")):
        if not (torch.equal(cells.run, other.run) and torch.equal(cells.event, other.event)):
            raise ValueError(f"the cell and {group} batches hold different events; load "
                             "them with the same corpus, batch size and shuffle settings")
    f = waveforms.fields
    n = f["waveform_n_samples"].clamp_min(0)
    adc = samples.fields["sample_adc"].float()
    if int(n.sum()) != len(adc):
        raise ValueError(f"waveform_n_samples add up to {int(n.sum())} but the events hold "
                         f"{len(adc)} sample_adc values; the corpus's waveforms are corrupt")
    event = event_index(waveforms.cu_seqlens)
    cell = f["waveform_cell"] + cells.cu_seqlens[:-1][event]
    length = max(int(n.max()) if len(n) else 1, 1)
    start = torch.cumsum(n, 0) - n
    pos = torch.arange(len(adc)) - start.repeat_interleave(n)
    grid = torch.zeros(len(n), length)
    grid[torch.arange(len(n)).repeat_interleave(n), pos] = adc
    return Waveforms(cell, f["waveform_end"], grid, n, f["waveform_period_ns"].float(),
                     f["waveform_pedestal"].float(), f["waveform_gain"].float())


class WaveformEncoder(nn.Module):
    """(W, d_model) embeddings of waveforms: a small 1-D CNN over the pulse shape.

    Samples are pedestal-subtracted and divided by the gain (photo-electrons per sample),
    then divided by the pulse's peak so the convolutions see its shape; the size (log10
    of 1 + the summed photo-electrons), the peak time (ns / 100), the sampling period
    (ns / 10) and the readout end enter beside the pooled (mean and max over the valid
    samples) convolution channels.
    """

    def __init__(self, d_model: int, channels: int = 16, kernel: int = 5) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv: nn.Sequential = nn.Sequential(
            nn.Conv1d(1, channels, kernel, padding=pad), nn.GELU(),
                                  nn.Conv1d(channels, channels, kernel, padding=pad), nn.GELU())
        self.head = nn.Linear(2 * channels + 4, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, w: Waveforms) -> torch.Tensor:
        device = self.out.weight.device
        adc, n = w.samples.to(device), w.n_samples.to(device)
        valid = torch.arange(adc.shape[1], device=device)[None] < n[:, None]
        pe = torch.where(valid, (adc - w.pedestal.to(device)[:, None])
                         / w.gain.to(device).clamp_min(1e-6)[:, None], 0)
        peak = pe.abs().amax(1, keepdim=True).clamp_min(1.0)
        h = self.conv((pe / peak).unsqueeze(1))
        mean = (h * valid[:, None]).sum(2) / n.clamp_min(1)[:, None]
        top = h.masked_fill(~valid[:, None], -torch.inf).amax(2)
        top = torch.where(torch.isfinite(top), top, 0)
        period = w.period_ns.to(device)
        scalars = torch.stack([torch.log10(1 + pe.clamp_min(0).sum(1)),
                               pe.argmax(1).float() * period / 100, period / 10,
                               w.end.to(device).float()], 1)
        return self.out(torch.nn.functional.gelu(self.head(torch.cat([mean, top, scalars], 1))))


class CellTokenizer(nn.Module):
    """(N, d_model) calorimeter-cell embeddings of a ``PackedBatch`` of cells (module
    docstring); ``waveforms`` (``waveforms_of``), where given, add to their cells."""

    def __init__(self, d_model: int, n_frequencies: int = 10) -> None:
        super().__init__()
        self.fourier = GeometryFourier(n_frequencies, calo_frequencies)
        self.position = nn.Sequential(nn.Linear(self.fourier.out_dim, 2 * d_model), nn.GELU(),
                                      nn.Linear(2 * d_model, d_model))
        self.linear = nn.Linear(5, d_model)
        self.signal = nn.Linear(len(CELL_FEATURES) - 5, d_model)
        self.n_subsystems = len(vocabulary.names("subsystems"))
        self.subsystem = nn.Embedding(self.n_subsystems + 1, d_model)
        self.layer = nn.Embedding(MAX_LAYERS + 1, d_model)
        self.waveform = WaveformEncoder(d_model)
        self.context = _EventContext(d_model)

    def forward(self, cells: PackedBatch, geometry_ids: Sequence[str] | None = None,
                data_levels: Sequence[str] | None = None,
                waveforms: Waveforms | None = None) -> torch.Tensor:
        fields, cu = cells.fields, cells.cu_seqlens
        geometry_ids, data_levels = _event_metadata(cells, geometry_ids, data_levels)
        device = self.linear.weight.device
        feats = cell_features(fields, cu, geometry_ids).to(device)
        x, y, z = (fields[f"cell_{c}"].float().to(device) for c in "xyz")
        eta, phi, r = cylindrical(x, y, z)
        present = (cu[1:] > cu[:-1]).tolist()
        ids = [g if p else None for g, p in zip(geometry_ids, present, strict=True)]
        encoded = self.fourier(torch.stack([eta.clamp(-ETA_MAX, ETA_MAX), phi, r, z], 1), ids,
                               event_index(cu).to(device))
        sub = _codes(fields["cell_subsystem"].to(device), self.n_subsystems)
        layer = _codes(fields["cell_layer"].to(device), MAX_LAYERS) if "cell_layer" in fields \
            else torch.full_like(sub, MAX_LAYERS)
        tokens = (self.position(encoded) + self.linear(feats[:, :5]) + self.signal(feats[:, 5:])
                  + self.subsystem(sub) + self.layer(layer)
                  + self.context(cu, geometry_ids, data_levels))
        # Always run the encoder (on no waveform at all if none), so its parameters take
        # part in every backward pass (DDP needs that).
        w = waveforms if waveforms is not None else Waveforms.empty(device)
        per_wave = self.waveform(w)
        return tokens.index_add(0, w.cell.to(device), per_wave.to(tokens.dtype))
