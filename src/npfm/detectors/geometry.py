"""Detector geometries: one YAML data file per detector in ``geometries/``, and their loader.

Adding a detector means adding a file; the format (units are part of the key names):

- ``id`` (the file name stem), ``version``, ``experiment``, ``facility``, ``field_tesla``,
  optionally ``field_half_length_cm`` (a hard-edged solenoid: no field beyond |z| = L, see
  ``npfm.detectors.field``);
- ``sources``: ``[{key, ref}]``, cited by key from the ``source`` entries below;
- ``materials``: ``{name: {z_over_a, density_g_cm3, mean_excitation_ev, x0_g_cm2}}``;
  a gas may add its primary-ionisation spectrum ``ionisation_min_ev`` (first ionisation
  potential), ``ionisation_max_kev`` (largest transfer kept in the hit) and
  ``ionisation_exponent`` (dN/dE ~ E^-n), all three together: its layers then get energy
  deposits from individual collisions (``npfm.detectors.material.collision_deposit``)
  instead of Landau fluctuations;
- ``tracking``: ``min_hits``, ``pt_resolution {a_per_gev, b, c_gev}`` for
  sigma(pT)/pT = a pT (+) b (+) c/pT, ``d0_resolution_um`` and ``z0_resolution_um``
  ``{a, b_gev}`` for sigma = a (+) b / (p sin^(3/2) theta);
- ``calorimetry``: ``em`` and optionally ``hadron``: ``{eta_max, stochastic, constant}``
  for sigma(E)/E = stochastic / sqrt(E) (+) constant;
- ``calorimeters`` (optional): barrel calorimeters for cells, inner to outer (see
  ``npfm.detectors.calo_geometry``); ``imaging_layers`` (optional): silicon pixel layers
  among them, hit by the showers (see ``npfm.detectors.imaging``; their subsystems follow
  the trackers' in ``subsystems``);
- ``passive`` (optional): material-only surfaces (beam pipe, field cages); one with
  ``absorber: true`` stops every particle reaching it within its extent (e.g. a magnet
  cryostat closing the central tracking volume);
- ``layers``: groups of sensitive layers of one ``subsystem`` (a vocabulary name).

A surface group has ``shape`` ``cylinder`` (``radius_cm``, or ``radial_span_cm`` [lo, hi]
with ``count`` layers at the centres of equal slices; ``half_length_cm``) or ``disk``
(``z_cm``, ``r_min_cm``, ``r_max_cm``), a ``material`` and either ``x_over_x0`` or
``material_length_cm`` (path in the material at normal incidence). Sensitive groups add
``sensitive_thickness_cm`` (path for the energy deposit), ``efficiency``, ``noise_hits``
(mean noise hits per layer and event), ``resolution_um {rphi, z}`` (``{rphi, r}`` on disks),
``readout {type, modules, ...}`` and ``adc {bits, gev_per_count}``. Readout types:
``pixel`` / ``double_strip`` (``pitch_rphi_um``, ``pitch_z_um`` or ``pitch_r_um``),
``strip`` (``pitch_rphi_um``, ``strip_length_cm``), ``pad`` (TPC: ``pad_pitch_um``,
``drift_velocity_cm_us``, ``diffusion_t_um_sqrtcm``, ``diffusion_l_um_sqrtcm``,
``cluster_electrons``) and ``wire`` (drift-chamber cells). Any number in a group may be a
list with one value per layer. Layers are numbered within their subsystem in file order
(inner to outer, then disks). Materials, groups, ``tracking`` and each calorimeter cite
their numbers with ``source`` (key or keys of ``sources``); YAML anchors and merge keys
(``<<: *tpc``) may share settings between groups. Typed key access with errors naming the
file and key: ``npfm.detectors.geometry_reader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from npfm.detectors.calo_geometry import parse_calorimeters
from npfm.detectors.field import boundary_disks
from npfm.detectors.geometry_reader import GeometryError, GeometryReader
from npfm.detectors.imaging import parse_imaging
from npfm.detectors.tables import Geometry, LayerTable, Resolution
from npfm.events import vocabulary

#: Readout type -> digitisation code (double-sided strips digitise like pixels).
READOUT_CODES = {"pixel": 1, "double_strip": 1, "strip": 2, "pad": 3, "wire": 4}
_READOUT_KEYS = {
    "pixel": ("pitch_rphi_um", "pitch_v"), "double_strip": ("pitch_rphi_um", "pitch_v"),
    "strip": ("pitch_rphi_um", "strip_length_cm"),
    "pad": ("pad_pitch_um", "drift_velocity_cm_us", "diffusion_t_um_sqrtcm",
            "diffusion_l_um_sqrtcm", "cluster_electrons"),
    "wire": (),
}
_TOP = ("id", "version", "experiment", "facility", "field_tesla", "sources", "materials",
        "tracking", "calorimetry", "layers")
_SURFACE = {"shape", "radius_cm", "radial_span_cm", "count", "half_length_cm", "z_cm",
            "r_min_cm", "r_max_cm", "material", "x_over_x0", "material_length_cm", "source"}
_SENSITIVE = {"subsystem", "sensitive_thickness_cm", "efficiency", "noise_hits",
              "resolution_um", "readout", "adc"}
_UM = 1e-4  # cm per micrometre
_IONISATION = ("ionisation_min_ev", "ionisation_max_kev", "ionisation_exponent")


def _surfaces(group: GeometryReader, sensitive: bool, materials: Mapping[str, tuple[float, ...]],
              sources: set[str]) -> dict[str, Any]:
    """Per-layer arrays of one group (passive or sensitive)."""
    group.check_keys(_SURFACE | (_SENSITIVE if sensitive else {"name", "absorber"}))
    group.check_sources(sources)
    shape = group.text("shape")
    cols: dict[str, Any] = {}
    if shape == "cylinder":
        if "radial_span_cm" in group.raw:
            span = group.numbers("radial_span_cm")
            if len(span) != 2 or span[0] >= span[1]:
                raise group.fail("radial_span_cm", "expected [inner, outer] with inner < outer",
                                 "give two increasing radii")
            lo, hi = span
            count = int(group.number("count"))
            radius = lo + (hi - lo) / count * (np.arange(count) + 0.5)
        else:
            radius = group.numbers("radius_cm")
        n = len(radius)
        cols.update(radius=radius, half_length=group.numbers("half_length_cm", n),
                    is_disk=np.zeros(n, bool), z=np.zeros(n), r_min=np.zeros(n),
                    r_max=np.zeros(n))
    elif shape == "disk":
        z = group.numbers("z_cm", low=-np.inf)
        n = len(z)
        r_min, r_max = group.numbers("r_min_cm", n), group.numbers("r_max_cm", n)
        if (r_min >= r_max).any():
            raise group.fail("r_max_cm", "not above r_min_cm", "give r_min_cm < r_max_cm")
        cols.update(radius=np.zeros(n), half_length=np.zeros(n), is_disk=np.ones(n, bool),
                    z=z, r_min=r_min, r_max=r_max)
    else:
        raise group.fail("shape", f"unknown shape {shape!r}", "use cylinder or disk")
    name = group.text("material")
    if name not in materials:
        raise group.fail("material", f"unknown material {name!r}",
                         f"define it under materials: (known: {', '.join(materials)})")
    za, rho, ion, x0, e_min, e_max, expo = materials[name]
    if ("x_over_x0" in group.raw) == ("material_length_cm" in group.raw):
        raise group.fail("x_over_x0", "give exactly one of x_over_x0 and material_length_cm",
                         "x_over_x0 for supports, material_length_cm for gas volumes")
    xx0 = group.numbers("x_over_x0", n, strict=False) if "x_over_x0" in group.raw else \
        group.numbers("material_length_cm", n) * rho / x0
    cols.update(x_over_x0=xx0, material_thickness=xx0 * x0 / rho, z_over_a=np.full(n, za),
                density=np.full(n, rho), mean_excitation_mev=np.full(n, ion * 1e-6),
                x0_g_cm2=np.full(n, x0), collision_min_mev=np.full(n, e_min * 1e-6),
                collision_max_mev=np.full(n, e_max * 1e-3), collision_exponent=np.full(n, expo),
                sensitive=np.full(n, sensitive))
    return cols


def _readout(group: GeometryReader, n: int, is_disk: bool) -> dict[str, Any]:
    """Resolution, readout segmentation and ADC arrays of a sensitive group."""
    res, ro, adc = group.sub("resolution_um"), group.sub("readout"), group.sub("adc")
    kind = ro.text("type")
    if kind not in READOUT_CODES:
        raise ro.fail("type", f"unknown readout type {kind!r}",
                      f"use one of {', '.join(READOUT_CODES)}")
    v_key = "r" if is_disk else "z"
    res.check_keys({"rphi"} if kind == "strip" else {"rphi", v_key})  # strips: v from bins
    keys = [("pitch_r_um" if is_disk else "pitch_z_um") if k == "pitch_v" else k
            for k in _READOUT_KEYS[kind]]
    ro.check_keys({"type", "modules", *keys})
    values = {k: ro.numbers(k, n) for k in keys}
    res_v = np.zeros(n) if kind == "strip" else res.numbers(v_key, n) * _UM
    cols = {"res_u": res.numbers("rphi", n) * _UM, "res_v": res_v,
            "readout": np.full(n, READOUT_CODES[kind]),
            "modules": ro.numbers("modules", n).astype(np.int64),
            "pitch_u": np.zeros(n), "pitch_v": np.zeros(n), "drift_velocity": np.zeros(n),
            "diffusion_t2": np.zeros(n), "diffusion_l2": np.zeros(n)}
    if kind in ("pixel", "double_strip", "strip"):
        cols["pitch_u"] = values["pitch_rphi_um"] * _UM
        cols["pitch_v"] = values[keys[1]] * (1.0 if kind == "strip" else _UM)
    elif kind == "pad":
        electrons = values["cluster_electrons"]
        cols.update(pitch_u=values["pad_pitch_um"] * _UM,
                    drift_velocity=values["drift_velocity_cm_us"] * 1e-3,  # cm/us -> cm/ns
                    diffusion_t2=(values["diffusion_t_um_sqrtcm"] * _UM) ** 2 / electrons,
                    diffusion_l2=(values["diffusion_l_um_sqrtcm"] * _UM) ** 2 / electrons)
    adc.check_keys({"bits", "gev_per_count"})
    cols.update(adc_bits=adc.numbers("bits", n, high=31).astype(np.int64),
                adc_gev=adc.numbers("gev_per_count", n),
                thickness=group.numbers("sensitive_thickness_cm", n),
                efficiency=group.numbers("efficiency", n, high=1.0),
                noise_hits=group.numbers("noise_hits", n, strict=False))
    return cols


def _passive(n: int) -> dict[str, Any]:
    """Readout columns of material-only surfaces (no hits)."""
    zeros = ("thickness", "efficiency", "noise_hits", "res_u", "res_v", "pitch_u", "pitch_v",
             "drift_velocity", "diffusion_t2", "diffusion_l2")
    return {**{k: np.zeros(n) for k in zeros}, "subsystem": np.full(n, -1),
            "readout": np.zeros(n, np.int64), "modules": np.ones(n, np.int64),
            "adc_bits": np.ones(n, np.int64), "adc_gev": np.ones(n)}


def parse_geometry(raw: Any, path: str = "<mapping>") -> Geometry:
    """Validate a parsed geometry mapping; errors name ``path`` and the offending key."""
    top = GeometryReader(path, raw)
    for key in _TOP:
        top.get(key)
    top.check_keys({*_TOP, "passive", "field_half_length_cm", "calorimeters",
                    "imaging_layers"})
    if not isinstance(top.get("sources"), list):
        raise top.fail("sources", "expected a list", "give [{key, ref}, ...]")
    refs = [GeometryReader(path, s, f"sources[{i}]") for i, s in enumerate(top.get("sources"))]
    sources = {r.text("key") for r in refs}
    mats = top.sub("materials")
    materials = {}
    for name in mats.raw:
        m = mats.sub(str(name))
        m.check_keys({"z_over_a", "density_g_cm3", "mean_excitation_ev", "x0_g_cm2", "source",
                      *_IONISATION})
        m.check_sources(sources)
        spectrum = (0.0, 0.0, 0.0)
        given = [k for k in _IONISATION if k in m.raw]
        if given:
            if len(given) != len(_IONISATION):
                missing = next(k for k in _IONISATION if k not in m.raw)
                raise m.fail(missing, "missing key", f"give all of {', '.join(_IONISATION)}")
            spectrum = (m.number("ionisation_min_ev"), m.number("ionisation_max_kev"),
                        m.number("ionisation_exponent", low=1.0))
            if spectrum[1] * 1e3 <= spectrum[0]:
                raise m.fail("ionisation_max_kev", "not above ionisation_min_ev",
                             "give a cut-off above the first ionisation potential")
        materials[str(name)] = (m.number("z_over_a"), m.number("density_g_cm3"),
                                m.number("mean_excitation_ev"), m.number("x0_g_cm2"), *spectrum)
    known = vocabulary.names("subsystems")
    subsystems: list[str] = []
    groups: list[dict[str, Any]] = []
    for section, sensitive in (("passive", False), ("layers", True)):
        entries = top.raw.get(section, [])
        if not isinstance(entries, list) or (sensitive and not entries):
            raise top.fail(section, "expected a non-empty list", "list the surface groups")
        for i, entry in enumerate(entries):
            group = GeometryReader(path, entry, f"{section}[{i}]")
            cols = _surfaces(group, sensitive, materials, sources)
            n = len(cols["radius"])
            if not sensitive:
                group.text("name")
                absorber = group.raw.get("absorber", False)
                if not isinstance(absorber, bool):
                    raise group.fail("absorber", f"expected true or false, found {absorber!r}",
                                     "give a boolean")
                cols.update(_passive(n), absorber=np.full(n, absorber))
            else:
                name = group.text("subsystem")
                if name not in known:
                    raise group.fail("subsystem", f"unknown subsystem {name!r}",
                                     f"use one of {', '.join(known)} (or add it to "
                                     "npfm/events/vocabulary.yaml)")
                if name not in subsystems:
                    subsystems.append(name)
                cols.update(_readout(group, n, bool(cols["is_disk"][0])),
                            subsystem=np.full(n, subsystems.index(name)),
                            absorber=np.zeros(n, bool))
            groups.append(cols)
    half_length = top.number("field_half_length_cm") if "field_half_length_cm" in top.raw \
        else np.inf
    if np.isfinite(half_length):
        groups.insert(0, {**boundary_disks(half_length), **_passive(2),
                          "absorber": np.zeros(2, bool)})
    table = {f.name: np.concatenate([g[f.name] for g in groups])
             for f in fields(LayerTable) if f.name != "layer"}
    sub = table["subsystem"]
    table["layer"] = np.array([np.sum(sub[:i] == s) for i, s in enumerate(sub)], np.int64)
    for arr in table.values():
        arr.flags.writeable = False
    imaging = parse_imaging(top.entries("imaging_layers"), sources)
    subsystems += [g.subsystem for g in imaging if g.subsystem not in subsystems]
    return Geometry(id=top.text("id"), version=top.text("version"),
                    experiment=top.text("experiment"), facility=top.text("facility"),
                    field_tesla=top.number("field_tesla"), field_half_length=half_length,
                    sources=tuple((r.text("key"), r.text("ref")) for r in refs),
                    subsystems=tuple(subsystems), layers=LayerTable(**table),
                    resolution=_resolution(top, sources), path=path,
                    calorimeters=parse_calorimeters(top.entries("calorimeters"), sources),
                    imaging=imaging)


def _resolution(top: GeometryReader, sources: set[str]) -> Resolution:
    trk, calo = top.sub("tracking"), top.sub("calorimetry")
    trk.check_keys({"min_hits", "pt_resolution", "d0_resolution_um", "z0_resolution_um",
                    "source"})
    trk.check_sources(sources)
    pt, d0, z0 = trk.sub("pt_resolution"), trk.sub("d0_resolution_um"), \
        trk.sub("z0_resolution_um")
    pt.check_keys({"a_per_gev", "b", "c_gev"})
    for r in (d0, z0):
        r.check_keys({"a", "b_gev"})
    calo.check_keys({"em", "hadron"})

    def calorimeter(key: str) -> tuple[float, float, float] | None:
        if key not in calo.raw:
            return None
        c = calo.sub(key)
        c.check_keys({"eta_max", "stochastic", "constant", "source"})
        c.check_sources(sources)
        return c.number("eta_max"), c.number("stochastic"), c.number("constant", strict=False)

    return Resolution(
        min_hits=int(trk.number("min_hits")), pt_a=pt.number("a_per_gev", strict=False),
        pt_b=pt.number("b", strict=False), pt_c=pt.number("c_gev", strict=False),
        d0_a=d0.number("a") * _UM, d0_b=d0.number("b_gev", strict=False) * _UM,
        z0_a=z0.number("a") * _UM, z0_b=z0.number("b_gev", strict=False) * _UM,
        em=calorimeter("em"), hadron=calorimeter("hadron"))


def _geometry_dir() -> Any:
    return files("npfm.detectors").joinpath("geometries")


def list_geometries() -> list[str]:
    """Names (file stems) of the geometry files shipped with npfm."""
    return list(_shipped_names())


@cache
def _shipped_names() -> tuple[str, ...]:
    return tuple(sorted(p.name[:-5] for p in _geometry_dir().iterdir()
                        if p.name.endswith(".yaml")))


def load_geometry(name: str) -> Geometry:
    """A shipped geometry by name (see ``list_geometries``; cached) or a YAML file by path
    (read on every call)."""
    if name in _shipped_names():
        return _shipped(name)
    path = Path(name)
    if not path.is_file():
        raise GeometryError(name, "no such geometry",
                            f"use one of {', '.join(list_geometries())} or a YAML path")
    return _load(path.read_text(encoding="utf-8"), str(path), path.stem)


@cache
def _shipped(name: str) -> Geometry:
    text = _geometry_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return _load(text, f"geometries/{name}.yaml", name)


def _load(text: str, path: str, stem: str) -> Geometry:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GeometryError(path, f"not valid YAML ({' '.join(str(exc).split())})",
                            "fix the syntax") from None
    geometry = parse_geometry(raw, path)
    if geometry.id != stem:
        raise GeometryError(f"{path}: id", f"id {geometry.id!r} differs from the file name",
                            f"set id: {stem}")
    return geometry
