"""Validated detector description: per-layer arrays for the simulation.

Built by ``npfm.detectors.geometry`` from a YAML file. Lengths in cm, times in ns,
energies in GeV; on a surface, u runs along r-phi and v along z (cylinders) or r (disks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class FibreReadout:
    """Fibres along z read out by SiPMs at both ends (z_end0 < z_end1, cm), sampled.

    ``pe_per_gev_end``: photo-electrons per GeV (electromagnetic scale) at each end for a
    deposit at the end itself (no attenuation); pulse: difference of exponentials with
    ``rise``/``fall`` time constants (ns); ``gain``: summed ADC counts per photo-electron.
    """

    z_end0: float
    z_end1: float
    attenuation: float  # cm
    speed: float  # cm/ns, signal speed along the fibre
    pe_per_gev_end: float
    rise: float
    fall: float
    n_samples: int
    period: float  # ns
    window_start: float  # ns, time of the first sample's start
    pedestal: float  # ADC counts
    gain: float  # ADC counts (summed over samples) per photo-electron
    noise: float  # ADC counts per sample
    adc_bits: int


@dataclass(frozen=True)
class ImagingLayers:
    """Silicon pixel layers at radii ``radius`` (cm) among the calorimeters: hits from
    the charged particles of showers (``npfm.detectors.imaging``)."""

    subsystem: str
    radius: npt.NDArray[np.float64]
    z_min: float
    z_max: float
    pitch: float  # cm, square pixels
    modules: int  # phi staves per layer
    mip_gev: float  # deposit of one minimum-ionising crossing
    adc_bits: int
    adc_gev: float


@dataclass(frozen=True)
class LayerTable:
    """Per-layer arrays (one entry per surface; passive surfaces have subsystem -1).

    Lengths in cm, times in ns, energies in GeV; ``v`` is z on cylinders and r on disks.
    """

    subsystem: npt.NDArray[np.int64]  # index into Geometry.subsystems; -1 passive
    layer: npt.NDArray[np.int64]  # position within its subsystem
    is_disk: npt.NDArray[np.bool_]
    radius: npt.NDArray[np.float64]  # cylinders (0 on disks)
    half_length: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]  # disks (0 on cylinders)
    r_min: npt.NDArray[np.float64]
    r_max: npt.NDArray[np.float64]
    x_over_x0: npt.NDArray[np.float64]
    material_thickness: npt.NDArray[np.float64]  # x/X0 * X0 / density (cm)
    sensitive: npt.NDArray[np.bool_]
    absorber: npt.NDArray[np.bool_]  # passive surfaces that stop the particles reaching them
    thickness: npt.NDArray[np.float64]  # sensitive path at normal incidence (cm)
    z_over_a: npt.NDArray[np.float64]
    density: npt.NDArray[np.float64]
    mean_excitation_mev: npt.NDArray[np.float64]
    x0_g_cm2: npt.NDArray[np.float64]
    # gas ionisation spectrum (material.collision_deposit); collision_min_mev 0: Landau
    collision_min_mev: npt.NDArray[np.float64]
    collision_max_mev: npt.NDArray[np.float64]
    collision_exponent: npt.NDArray[np.float64]
    efficiency: npt.NDArray[np.float64]
    noise_hits: npt.NDArray[np.float64]  # mean noise hits per event
    res_u: npt.NDArray[np.float64]  # single-hit resolution along u, v (cm)
    res_v: npt.NDArray[np.float64]
    readout: npt.NDArray[np.int64]  # geometry.READOUT_CODES; 0 passive
    modules: npt.NDArray[np.int64]  # phi sectors (staves, ladders, TPC sectors, cells)
    pitch_u: npt.NDArray[np.float64]  # cell pitch along u, v (cm); pitch_v of a strip is
    pitch_v: npt.NDArray[np.float64]  # its length; 0 where not segmented
    drift_velocity: npt.NDArray[np.float64]  # TPC (cm/ns)
    diffusion_t2: npt.NDArray[np.float64]  # D^2 / N_e: cluster variance per cm of drift (cm)
    diffusion_l2: npt.NDArray[np.float64]
    adc_bits: npt.NDArray[np.int64]
    adc_gev: npt.NDArray[np.float64]  # GeV per ADC count

    def __len__(self) -> int:
        return len(self.subsystem)


@dataclass(frozen=True)
class Resolution:
    """sigma(pT)/pT = pt_a pT (+) pt_b (+) pt_c / pT; sigma(d0|z0) = a (+) b/(p sin^1.5 theta)
    (cm, cm GeV); tracks need ``min_hits`` hits; calorimeters (eta_max, stochastic, constant)."""

    min_hits: int
    pt_a: float
    pt_b: float
    pt_c: float
    d0_a: float
    d0_b: float
    z0_a: float
    z0_b: float
    em: tuple[float, float, float] | None
    hadron: tuple[float, float, float] | None


@dataclass(frozen=True)
class Calorimeter:
    """One barrel calorimeter: projective towers in (eta, phi) between two radii.

    Lengths in cm, energies in GeV; ``x0``, ``lambda_i`` and ``moliere`` are the
    effective radiation length, nuclear interaction length and Moliere radius of the
    absorber/active mixture. Resolutions: sigma(E)/E = stochastic / sqrt(E) (+) constant.
    """

    subsystem: str
    r_inner: float  # front face of the absorber
    r_outer: float
    eta_max: float
    n_eta: int
    n_phi: int
    x0: float
    lambda_i: float
    moliere: float
    z_eff: float  # effective atomic number (Grindhammer-Peters profiles)
    critical_energy: float
    sampling_fraction: float  # visible / deposited energy of electromagnetic showers
    photoelectrons_per_gev: float  # per GeV on the electromagnetic scale
    em_stochastic: float
    em_constant: float
    hadron_stochastic: float
    hadron_constant: float
    e_over_h: float
    mip_gev_per_cm: float  # electromagnetic-scale signal of a MIP per cm of path
    noise: float  # per-cell noise (GeV)
    threshold: float  # zero suppression (GeV)
    time_resolution: float  # ns
    #: two-ended fibre readout with waveforms (``npfm.detectors.waveforms``); None: towers
    waveform: FibreReadout | None = None

    def depth(self, units: str) -> float:
        """Thickness in radiation (``x0``) or interaction (``lambda_i``) lengths."""
        return (self.r_outer - self.r_inner) / float(getattr(self, units))


@dataclass(frozen=True)
class Geometry:
    """A validated detector description with per-layer arrays for the simulation."""

    id: str
    version: str
    experiment: str
    facility: str
    field_tesla: float
    field_half_length: float  # cm; the solenoid field ends at |z| = this (inf: nowhere)
    sources: tuple[tuple[str, str], ...]
    subsystems: tuple[str, ...]
    layers: LayerTable
    resolution: Resolution
    path: str
    calorimeters: tuple[Calorimeter, ...] = ()  # inner to outer
    imaging: tuple[ImagingLayers, ...] = ()  # silicon layers among the calorimeters

    @property
    def cylinder_order(self) -> npt.NDArray[np.int64]:
        """Indices of cylinder layers sorted by radius."""
        cyl = np.flatnonzero(~self.layers.is_disk)
        return cyl[np.argsort(self.layers.radius[cyl], kind="stable")]

    @property
    def disk_order(self) -> npt.NDArray[np.int64]:
        """Indices of disk layers sorted by z."""
        disk = np.flatnonzero(self.layers.is_disk)
        return disk[np.argsort(self.layers.z[disk], kind="stable")]

    @property
    def z_max(self) -> float:
        """Half-length of the tracking volume (cm): the particle is stopped beyond it."""
        lay = self.layers
        return float(max(lay.half_length.max(), np.abs(lay.z).max()))

    @property
    def r_max(self) -> float:
        """Radius of the outermost cylinder (cm)."""
        return float(self.layers.radius.max())

    @property
    def hit_extent(self) -> tuple[float, float]:
        """Largest hit radius and |z| (cm): the tracking volume and the imaging layers."""
        r, z = self.r_max, self.z_max
        for g in self.imaging:
            r, z = max(r, float(g.radius.max())), max(z, abs(g.z_min), abs(g.z_max))
        return r, z


