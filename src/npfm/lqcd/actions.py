"""Ensembles produced elsewhere: record ILDG files of clover, HISQ or domain-wall ensembles
(with their gauge action, beta, masses and volume) in the QCDml-inspired ``ensemble.json``.

ILDG files are action independent (the format stores only SU(3) links), so any ILDG file
reads; the action is metadata given by the user, checked for the parameters that define
it. Parameter names follow the usual conventions (lattice units):

- clover (Sheikholeslami-Wohlert, Nucl. Phys. B 259 (1985) 572): ``csw`` and per-flavour
  hopping parameters ``kappa`` or bare masses ``am0``;
- HISQ (Follana et al., HPQCD, Phys. Rev. D 75 (2007) 054502): per-flavour bare masses
  ``am`` and the Naik-term coefficient ``epsilon_naik`` of the charm quark;
- domain-wall (Kaplan, Phys. Lett. B 288 (1992) 342; Shamir, Nucl. Phys. B 406 (1993) 90;
  Möbius: Brower, Neff and Orginos, arXiv:1206.5214): fifth-dimension extent ``Ls``,
  domain-wall height ``M5``, per-flavour ``am``, optional Möbius ``b5``, ``c5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.lqcd import ildg, observables
from npfm.lqcd.metadata import (
    ENSEMBLE_FILE,
    configuration_entry,
    ensemble_record,
    load_ensemble,
    now,
)

#: kind -> (QCDml-style action name, required parameters, mass conventions allowed)
ACTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "clover": ("cloverWilson", ("csw",), ("kappa", "am0")),
    "hisq": ("hisq", ("epsilon_naik",), ("am",)),
    "domain-wall": ("domainWall", ("Ls", "M5"), ("am",)),
}


def quark_action(kind: str, flavours: str, masses: dict[str, float],
                 params: dict[str, float], mass_convention: str | None = None
                 ) -> dict[str, Any]:
    """The ``physics.action.quark`` entry; ``flavours`` like ``2+1+1``, ``masses`` per
    flavour (l, s, c), ``params`` the action's parameters."""
    if kind not in ACTIONS:
        raise NpfmError("quark action", f"unknown action {kind!r}",
                        f"use one of {', '.join(ACTIONS)}")
    name, required, conventions = ACTIONS[kind]
    missing = [p for p in required if p not in params]
    if missing:
        raise NpfmError(f"{kind} action", f"missing parameter(s) {', '.join(missing)}",
                        "give them as --param NAME=VALUE")
    convention = mass_convention or conventions[0]
    if convention not in conventions:
        raise NpfmError(f"{kind} action", f"mass convention {convention!r}",
                        f"use {' or '.join(conventions)}")
    try:
        counts = [int(n) for n in flavours.split("+")]
    except ValueError:
        counts = []
    if not counts or len(counts) != len(masses) or min(counts) < 1:
        raise NpfmError(f"{kind} action", f"flavours {flavours!r} with masses "
                        f"{sorted(masses)}", "give one mass per flavour group, e.g. "
                        "--flavours 2+1 --mass l=0.01 --mass s=0.04")
    return {"name": name, "kind": kind, "flavourContent": flavours,
            "nFlavours": sum(counts), "masses": dict(masses),
            "massConvention": convention, "parameters": dict(params)}


def import_ensemble(directory: Path, quark: dict[str, Any], beta: float, gluon: str,
                    command: str = "") -> dict[str, Any]:
    """Read every ``*.lime`` under ``directory`` (checksums verified, one lattice size) and
    write its ``ensemble.json``; trajectories come from ``<trajectory>`` in the file XML,
    else the file order."""
    directory = Path(directory)
    files = sorted(directory.rglob("*.lime"))
    if not files:
        raise NpfmError(str(directory), "no ILDG (.lime) files", "point at the ensemble")
    first = ildg.read_config(files[0])
    record = ensemble_record(directory.resolve().name, first.lattice, beta,
                             {"name": "imported", "source": "ILDG files produced elsewhere"},
                             command, gluon=gluon, quark=quark)
    plaquettes = []
    for index, path in enumerate(files):
        config = first if index == 0 else ildg.read_config(path, expected=first.lattice)
        plaq = observables.plaquette(config.u)
        poly = observables.polyakov_loop(config.u)
        plaquettes.append(plaq)
        record["configurations"].append(configuration_entry(
            path, directory, _trajectory(config, index), config.lfn, config.suma,
            config.sumb, {"plaquette": plaq, "polyakov_loop": [poly.real, poly.imag],
                          "checksum_verified": config.checksum_verified,
                          "precision": config.precision}))
    record["observables"] = {"plaquette": {"mean": sum(plaquettes) / len(plaquettes)},
                             "units": "plaquette: Re tr U_P / 3"}
    record["finished"] = now()
    atomic_write_json(directory / ENSEMBLE_FILE, record)
    return load_ensemble(directory)


def _trajectory(config: ildg.GaugeConfig, index: int) -> int:
    for xml in (config.record_xml, config.file_xml):
        value = ildg._xml_text(xml, "trajectory") if xml else None
        if value is not None and value.strip().isdigit():
            return int(value)
    return index


def describe(record: dict[str, Any]) -> dict[str, Any]:
    """What a catalog entry needs from an ensemble record: title, keywords and the physics
    summary (action, masses, beta, volume, configurations)."""
    physics = record["physics"]
    size, action = physics["size"], physics["action"]
    dims = f"{size['lx']}x{size['ly']}x{size['lz']}x{size['lt']}"
    quark = action.get("quark")
    sea = (f"N_f = {quark['flavourContent']} {quark['kind']}" if quark else "quenched")
    keywords = ["lattice QCD", "ILDG", "gauge configurations",
                quark["kind"] if quark else "quenched"]
    return {"title": f"SU(3) ensemble {record['name']}: {action['gluon']['name']} gauge "
                     f"action, beta {action['gluon']['beta']}, {sea}, {dims}",
            "keywords": keywords, "lattice": dims, "beta": action["gluon"]["beta"],
            "gauge_action": action["gluon"]["name"], "quark_action": quark,
            "configurations": len(record["configurations"]),
            "trajectories": [c["trajectory"] for c in record["configurations"]]}
