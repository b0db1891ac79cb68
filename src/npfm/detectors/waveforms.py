"""Cell readout: photo-statistics of calorimeter cells, and two-ended SiPM waveforms of
fibre calorimeters (a calorimeter entry with a ``waveforms`` block).

Tower calorimeters: Poisson photo-statistics at ``photoelectrons_per_gev``.

Fibre calorimeters (fibres along z, SiPMs at z_end0 and z_end1):
- light: a deposit of visible energy E (electromagnetic scale) at z gives Poisson
  photo-electron counts N_j with means E Y exp(-d_j / lambda_att) at the two ends, d_j the
  distance to end j (Y photo-electrons per GeV and end without attenuation), so the end
  asymmetry ln(N_0 / N_1) = (d_1 - d_0) / lambda_att encodes z;
- energy: the geometric mean sqrt(N_0 N_1) / (Y exp(-L / 2 lambda_att)) does not depend on
  z (L = z_end1 - z_end0); a cell with an empty end reads 0 (a two-end coincidence);
- pulse: each end's photo-electrons arrive at t_cell + d_j / v (v: signal speed in the
  fibre) with the difference-of-exponentials shape
  p(t) = (exp(-t / tau_fall) - exp(-t / tau_rise)) / (tau_fall - tau_rise), unit integral;
- digitisation: each sample integrates the pulse over its period (an integrating ADC), so
  the pedestal-subtracted samples add up to gain x N_j (up to the tail beyond the window);
  plus the pedestal, Gaussian electronic noise per sample, rounding, and saturation at
  2^bits - 1.

The cell energy is the photo-electron estimate (before the electronics);
``waveform_energy`` reconstructs it from the samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from npfm.detectors.tables import Calorimeter, FibreReadout

if TYPE_CHECKING:
    from npfm.detectors.geometry_reader import GeometryReader

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_KEYS = {"fibre_ends_z_cm", "attenuation_length_cm", "signal_speed_cm_ns", "pulse_rise_ns",
         "pulse_fall_ns", "samples", "period_ns", "window_start_ns", "pedestal_adc",
         "gain_adc_per_pe", "noise_adc", "adc_bits", "source"}


def parse_fibre(r: GeometryReader, sources: set[str], pe_per_gev: float) -> FibreReadout:
    """The ``waveforms`` block of a calorimeter entry; ``pe_per_gev`` (the entry's
    ``photoelectrons_per_gev``) counts both ends for a deposit at the fibre centre."""
    r.check_keys(_KEYS)
    r.check_sources(sources)
    ends = r.numbers("fibre_ends_z_cm", low=-np.inf)
    if len(ends) != 2 or ends[0] >= ends[1]:
        raise r.fail("fibre_ends_z_cm", "expected [z_end0, z_end1] with z_end0 < z_end1",
                     "give the z (cm) of the two fibre ends")
    rise, fall = r.number("pulse_rise_ns"), r.number("pulse_fall_ns")
    if rise >= fall:
        raise r.fail("pulse_rise_ns", "not below pulse_fall_ns", "give rise < fall")
    att = r.number("attenuation_length_cm")
    half = 0.5 * (ends[1] - ends[0])
    return FibreReadout(
        z_end0=float(ends[0]), z_end1=float(ends[1]), attenuation=att,
        speed=r.number("signal_speed_cm_ns"),
        pe_per_gev_end=pe_per_gev / (2.0 * np.exp(-half / att)), rise=rise, fall=fall,
        n_samples=int(r.number("samples", low=1, strict=False)),
        period=r.number("period_ns"), window_start=r.number("window_start_ns", low=-np.inf),
        pedestal=r.number("pedestal_adc", strict=False), gain=r.number("gain_adc_per_pe"),
        noise=r.number("noise_adc", strict=False),
        adc_bits=int(r.number("adc_bits", low=1, high=15, strict=False)))


def _fibre_param(calos: tuple[Calorimeter, ...], calo: Ints, name: str) -> Array:
    """Per-cell value of a FibreReadout field (NaN for tower calorimeters)."""
    values = np.array([getattr(c.waveform, name) if c.waveform else np.nan for c in calos])
    return np.asarray(values[calo])


def end_distances(z: Array, calos: tuple[Calorimeter, ...], calo: Ints) -> Array:
    """(n, 2) distances (cm) of deposits at ``z`` to the two fibre ends."""
    z0, z1 = _fibre_param(calos, calo, "z_end0"), _fibre_param(calos, calo, "z_end1")
    return np.column_stack([z - z0, z1 - z])


def photostatistics(visible: Array, z: Array, calo: Ints, calos: tuple[Calorimeter, ...],
                    rng: np.random.Generator) -> tuple[Array, Array]:
    """Cell energies (GeV) after photo-statistics, and the (n, 2) photo-electron counts at
    the two ends (0 for tower calorimeters); ``z``: energy-weighted z of each cell."""
    visible = np.maximum(visible, 0.0)
    fibre = np.array([c.waveform is not None for c in calos])[calo]
    pe_tower = np.array([c.photoelectrons_per_gev for c in calos])[calo]
    energy = np.zeros(len(visible))
    t = ~fibre
    energy[t] = rng.poisson(visible[t] * pe_tower[t]) / pe_tower[t]
    counts = np.zeros((len(visible), 2))
    if fibre.any():
        c = calo[fibre]
        att = _fibre_param(calos, c, "attenuation")[:, None]
        y = _fibre_param(calos, c, "pe_per_gev_end")
        d = end_distances(z[fibre], calos, c)
        counts[fibre] = rng.poisson(visible[fibre, None] * y[:, None] * np.exp(-d / att))
        energy[fibre] = two_end_energy(counts[fibre], calos, c)
    return energy, counts


def two_end_energy(counts: Array, calos: tuple[Calorimeter, ...], calo: Ints) -> Array:
    """Energy (GeV) from the photo-electrons (n, 2) of the two ends (geometric mean)."""
    length = _fibre_param(calos, calo, "z_end1") - _fibre_param(calos, calo, "z_end0")
    centre = _fibre_param(calos, calo, "pe_per_gev_end") * np.exp(
        -0.5 * length / _fibre_param(calos, calo, "attenuation"))
    return np.asarray(np.sqrt(np.maximum(counts[:, 0] * counts[:, 1], 0.0)) / centre)


def pulse_cdf(t: Array, rise: Array | float, fall: Array | float) -> Array:
    """Integral of the unit-area pulse from its start to ``t`` (ns); 0 before it."""
    x = np.maximum(t, 0.0)
    return np.asarray(1.0 - (fall * np.exp(-x / fall) - rise * np.exp(-x / rise))
                      / (fall - rise))


def digitise(counts: Array, time: Array, z: Array, calo: Ints,
             calos: tuple[Calorimeter, ...], rng: np.random.Generator) -> dict[str, Any]:
    """Waveforms of the fibre cells among the given cells, in (cell, end) order: keys
    ``cell`` (index into the given cells), ``end``, ``n_samples``, ``period``,
    ``pedestal``, ``gain`` (one per waveform) and ``samples`` (int16, concatenated)."""
    cell = np.flatnonzero(np.array([c.waveform is not None for c in calos])[calo])
    cell2 = np.repeat(cell, 2)
    end = np.tile(np.array([0, 1]), len(cell))
    c = calo[cell2]

    def par(name: str) -> Array:
        return _fibre_param(calos, c, name)

    n_samples = par("n_samples").astype(np.int64)
    arrival = time[cell2] + end_distances(z[cell], calos, calo[cell]).ravel() / par("speed")
    width = int(n_samples.max()) if len(cell) else 0
    edges = par("window_start")[:, None] + par("period")[:, None] * np.arange(width + 1)
    cdf = pulse_cdf(edges - arrival[:, None], par("rise")[:, None], par("fall")[:, None])
    charge = par("gain")[:, None] * counts[cell, :].ravel()[:, None] * np.diff(cdf, axis=1)
    raw = par("pedestal")[:, None] + charge + par("noise")[:, None] * rng.standard_normal(
        charge.shape)
    top = 2.0 ** par("adc_bits")[:, None] - 1.0
    samples = np.clip(np.rint(raw), 0.0, top).astype(np.int16)
    inside = np.arange(width)[None, :] < n_samples[:, None]
    return {"cell": cell2, "end": end, "n_samples": n_samples, "period": par("period"),
            "pedestal": par("pedestal"), "gain": par("gain"), "samples": samples[inside]}


def waveform_energy(samples: npt.NDArray[np.int16], n_samples: Ints, pedestal: Array,
                    gain: Array) -> Array:
    """Photo-electrons of each waveform: pedestal-subtracted sample sum over the gain."""
    bounds = np.concatenate([[0], np.cumsum(n_samples)])
    sums = np.add.reduceat(samples.astype(np.float64), bounds[:-1]) if len(samples) else \
        np.zeros(0)
    return np.asarray((sums - pedestal * n_samples) / gain)
