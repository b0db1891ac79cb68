"""Generate a quenched ensemble: thermalise, then save every ``separation``-th sweep.

An ensemble directory holds ``configs/cfg-NNNNNN.lime`` (ILDG, NNNNNN the sweep number)
and ``ensemble.json``: the QCDml-inspired record with the plaquette history of every
sweep, the thermalisation cut, and the plaquette mean with its autocorrelation-corrected
error and integrated autocorrelation time (in sweeps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.lqcd import heatbath, ildg, observables
from npfm.lqcd.metadata import ENSEMBLE_FILE, configuration_entry, ensemble_record, now
from npfm.lqcd.statistics import estimate
from npfm.lqcd.su3 import random_field, unit_field

DTYPES = {"complex128": torch.complex128, "complex64": torch.complex64}


@dataclass(frozen=True)
class GenerateSpec:
    """What ``npfm lqcd generate`` makes; lattice is (lx, ly, lz, lt)."""

    lattice: tuple[int, int, int, int]
    beta: float
    configs: int
    therm: int = 50
    separation: int = 5
    over_relaxation: int = 4
    seed: int = 1
    start: str = "cold"  # or "hot"
    precision: int = 64  # ILDG file precision, bits
    dtype: str = "complex128"  # arithmetic

    def check(self) -> None:
        """Reject specs that cannot make an ensemble, with the field to fix."""
        problems = [
            ("lattice", any(n < 2 or n % 2 for n in self.lattice),
             "every extent must be even and >= 2 (checkerboard updates)"),
            ("beta", not self.beta > 0, "beta must be positive"),
            ("configs", self.configs < 1, "at least one configuration"),
            ("therm", self.therm < 0, "thermalisation sweeps must be >= 0"),
            ("separation", self.separation < 1, "separation must be >= 1 sweep"),
            ("over_relaxation", self.over_relaxation < 0, "over-relaxation steps must be >= 0"),
            ("start", self.start not in ("cold", "hot"), "start must be cold or hot"),
            ("precision", self.precision not in (32, 64), "precision must be 32 or 64"),
            ("dtype", self.dtype not in DTYPES, f"dtype must be one of {sorted(DTYPES)}"),
        ]
        for name, bad, fix in problems:
            if bad:
                raise NpfmError(f"generate option {name}", f"invalid value "
                                f"{getattr(self, name)!r}", fix)


def lattice_from_text(text: str) -> tuple[int, int, int, int]:
    """``'8x8x8x16'`` (lx x ly x lz x lt) or ``'8'`` (8^4) as a tuple."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 4
    if len(parts) != 4:
        raise NpfmError(f"lattice {text!r}", "not LXxLYxLZxLT or L",
                        "write e.g. 8x8x8x16, or 8 for 8^4")
    return parts[0], parts[1], parts[2], parts[3]


def generate(out: Path, spec: GenerateSpec, command: str = "",
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run the Markov chain, write the configurations and ``ensemble.json``; returns it."""
    spec.check()
    out = Path(out)
    generator = torch.Generator().manual_seed(spec.seed)
    dtype = DTYPES[spec.dtype]
    u = (unit_field(spec.lattice, dtype) if spec.start == "cold"
         else random_field(spec.lattice, generator, dtype))
    name = out.resolve().name
    algorithm = {"name": "Cabibbo-Marinari heat-bath + over-relaxation",
                 "su2HeatBath": "Kennedy-Pendleton", "checkerboard": True,
                 **{k: v for k, v in asdict(spec).items() if k not in ("lattice", "beta")}}
    record = ensemble_record(name, spec.lattice, spec.beta, algorithm, command)
    history: list[float] = []
    total = spec.therm + spec.configs * spec.separation
    for sweep_no in range(1, total + 1):
        u = heatbath.sweep(u, spec.beta, generator, spec.over_relaxation)
        history.append(observables.plaquette(u))
        if progress is not None:
            progress(1)
        if sweep_no > spec.therm and (sweep_no - spec.therm) % spec.separation == 0:
            record["configurations"].append(_save(out, u, sweep_no, name, spec, history[-1]))
    measured = history[spec.therm:]
    record["thermalisation"] = {"sweeps": spec.therm, "start": spec.start,
                                **_drift(measured)}
    record["plaquette_history"] = history
    record["observables"] = {
        "plaquette": estimate(measured).as_dict() if len(measured) >= 4 else
        {"mean": sum(measured) / len(measured)},
        "units": "plaquette: Re tr U_P / 3; tau_int in sweeps"}
    record["finished"] = now()
    atomic_write_json(out / ENSEMBLE_FILE, record)
    return record


def _drift(series: list[float]) -> dict[str, Any]:
    """First-half vs second-half means of the kept chain: a check that it is thermalised."""
    if len(series) < 8:
        return {"equilibrated_check": "too few sweeps to test"}
    half = len(series) // 2
    first, second = estimate(series[:half]), estimate(series[half:])
    sigma = (first.error ** 2 + second.error ** 2) ** 0.5
    pull = (second.mean - first.mean) / sigma if sigma > 0 else 0.0
    return {"first_half_mean": first.mean, "second_half_mean": second.mean,
            "drift_sigma": pull, "equilibrated": abs(pull) < 3.0}


def _save(out: Path, u: torch.Tensor, sweep_no: int, name: str, spec: GenerateSpec,
          plaq: float) -> dict[str, Any]:
    path = out / "configs" / f"cfg-{sweep_no:06d}.lime"
    lfn = f"lfn://npfm/lqcd/{name}/{path.name}"
    poly = observables.polyakov_loop(u)
    xml = (f"<?xml version=\"1.0\"?><info><ensemble>{name}</ensemble><beta>{spec.beta}</beta>"
           f"<trajectory>{sweep_no}</trajectory><plaquette>{plaq:.16g}</plaquette></info>")
    checksum = ildg.write_config(path, u, precision=spec.precision, lfn=lfn, file_xml=xml,
                                 record_xml=xml, date=now())
    return configuration_entry(path, out, sweep_no, lfn, checksum.suma, checksum.sumb,
                               {"plaquette": plaq, "polyakov_loop": [poly.real, poly.imag]})
