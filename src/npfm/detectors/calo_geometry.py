"""The ``calorimeters`` section of a geometry file: barrel calorimeters, inner to outer.

Each entry (units in the key names; every number cites ``source``):

- ``subsystem`` (a vocabulary name), ``r_inner_cm`` / ``r_outer_cm`` (absorber front and
  back), ``eta_max`` (towers cover |eta| < eta_max), ``towers_eta`` x ``towers_phi``
  (projective towers of equal size in eta and phi);
- the absorber mixture: ``x0_cm``, ``lambda_cm``, ``moliere_cm``, ``z_eff`` and
  ``critical_energy_mev`` (electromagnetic profiles of Grindhammer and Peters);
- the response: ``sampling_fraction``, ``photoelectrons_per_gev`` (per GeV on the
  electromagnetic scale), ``em_resolution`` and ``hadron_resolution`` ``{stochastic,
  constant}`` for sigma(E)/E = stochastic / sqrt(E/GeV) (+) constant, ``e_over_h``,
  ``mip_mev_per_cm`` (electromagnetic-scale signal of a minimum-ionising particle);
- the readout: ``noise_mev`` per cell, ``threshold_mev`` (zero suppression) and
  ``time_resolution_ns``; optionally ``waveforms``: fibres along z read out at both ends
  with sampled SiPM waveforms (keys in ``npfm.detectors.waveforms``; cells then span the
  fibre length in z, and ``photoelectrons_per_gev`` counts both ends for a deposit at the
  fibre centre).

Several entries of one subsystem are its longitudinal layers (``cell_layer`` 0, 1, ...
inner to outer); its resolution terms apply to the subsystem's total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from npfm.detectors.tables import Calorimeter
from npfm.detectors.waveforms import parse_fibre

if TYPE_CHECKING:
    from npfm.detectors.geometry_reader import GeometryReader

_KEYS = {"subsystem", "r_inner_cm", "r_outer_cm", "eta_max", "towers_eta", "towers_phi",
         "x0_cm", "lambda_cm", "moliere_cm", "z_eff", "critical_energy_mev",
         "sampling_fraction", "photoelectrons_per_gev", "em_resolution", "hadron_resolution",
         "e_over_h", "mip_mev_per_cm", "noise_mev", "threshold_mev", "time_resolution_ns",
         "source", "waveforms"}


def parse_calorimeters(entries: list[GeometryReader], sources: set[str]) -> tuple[Calorimeter, ...]:
    """Validated calorimeters, ordered and non-overlapping in radius."""
    out: list[Calorimeter] = []
    for c in entries:
        name = c.detector_entry(_KEYS, sources, "calorimeter")
        r_in, r_out = c.number("r_inner_cm"), c.number("r_outer_cm")
        if r_out <= r_in or (out and r_in < out[-1].r_outer):
            raise c.fail("r_outer_cm", "radii must increase and not overlap the previous "
                         "calorimeter", "list calorimeters inner to outer")
        em, had = c.sub("em_resolution"), c.sub("hadron_resolution")
        for r in (em, had):
            r.check_keys({"stochastic", "constant"})
        pe = c.number("photoelectrons_per_gev")
        fibre = parse_fibre(c.sub("waveforms"), sources, pe) if "waveforms" in c.raw else None
        out.append(Calorimeter(
            subsystem=name, r_inner=r_in, r_outer=r_out, eta_max=c.number("eta_max"),
            n_eta=int(c.number("towers_eta", low=1, strict=False)),
            n_phi=int(c.number("towers_phi", low=1, strict=False)),
            x0=c.number("x0_cm"), lambda_i=c.number("lambda_cm"),
            moliere=c.number("moliere_cm"), z_eff=c.number("z_eff"),
            critical_energy=c.number("critical_energy_mev") * 1e-3,
            sampling_fraction=c.number("sampling_fraction", high=1.0),
            photoelectrons_per_gev=pe,
            em_stochastic=em.number("stochastic"), em_constant=em.number("constant",
                                                                          strict=False),
            hadron_stochastic=had.number("stochastic"),
            hadron_constant=had.number("constant", strict=False),
            e_over_h=c.number("e_over_h"), mip_gev_per_cm=c.number("mip_mev_per_cm") * 1e-3,
            noise=c.number("noise_mev", strict=False) * 1e-3,
            threshold=c.number("threshold_mev", strict=False) * 1e-3,
            time_resolution=c.number("time_resolution_ns", strict=False), waveform=fibre))
    return tuple(out)
