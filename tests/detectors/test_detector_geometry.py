"""Geometry data files: every shipped file loads and validates; bad files fail clearly."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import yaml

from npfm.detectors import GeometryError, list_geometries, load_geometry
from npfm.detectors.geometry import parse_geometry
from npfm.events import vocabulary

SHIPPED = ("aleph", "alice", "clas12", "delphi", "epic", "opal", "sphenix", "zeus")


def test_list_geometries() -> None:
    assert tuple(list_geometries()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_geometry_is_valid(name: str) -> None:
    geo = load_geometry(name)
    lay = geo.layers
    assert geo.id == name
    assert geo.field_tesla > 0
    assert geo.sources
    assert set(geo.subsystems) <= set(vocabulary.names("subsystems"))
    sensitive = lay.sensitive
    assert sensitive.any()
    assert (lay.subsystem[sensitive] >= 0).all()
    assert (lay.radius[~lay.is_disk] > 0).all()
    assert (lay.half_length[~lay.is_disk] > 0).all()
    assert (lay.r_max[lay.is_disk] > lay.r_min[lay.is_disk]).all()
    assert ((lay.efficiency[sensitive] > 0) & (lay.efficiency[sensitive] <= 1)).all()
    assert (lay.x_over_x0 >= 0).all()
    assert (lay.thickness[sensitive] > 0).all()
    # layers are numbered 0.. within each subsystem
    for s in range(len(geo.subsystems)):
        assert list(lay.layer[lay.subsystem == s]) == list(range(np.sum(lay.subsystem == s)))
    assert not lay.radius.flags.writeable


def test_sphenix_figures() -> None:
    lay = load_geometry("sphenix").layers
    tpc = lay.subsystem == 2
    assert np.sum(tpc) == 48
    assert lay.radius[lay.subsystem == 0] == pytest.approx([2.523, 3.336, 4.148])
    assert list(lay.modules[lay.subsystem == 0]) == [12, 16, 20]
    assert lay.radius[tpc].min() > 31.1
    assert lay.radius[tpc].max() < 75.9
    assert lay.drift_velocity[tpc] == pytest.approx(8e-3)  # 8 cm/us in cm/ns


def test_opal_alice_pad_rows() -> None:
    assert np.sum(load_geometry("opal").layers.subsystem == 2) == 159
    alice = load_geometry("alice")
    assert np.sum(alice.layers.subsystem == alice.subsystems.index("TPC")) == 159
    assert np.sum(load_geometry("zeus").layers.subsystem == 1) == 72


def _raw(name: str = "sphenix") -> dict:
    """The parsed YAML of a shipped geometry file."""
    return yaml.safe_load(files("npfm.detectors").joinpath("geometries", f"{name}.yaml")
                          .read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict, name: str = "sphenix") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_file_copy_loads(tmp_path: Path) -> None:
    geo = load_geometry(_write(tmp_path, _raw()))
    assert geo.subsystems == ("MVTX", "INTT", "TPC")
    assert geo.path.endswith("sphenix.yaml")


def test_unknown_subsystem(tmp_path: Path) -> None:
    raw = _raw()
    raw["layers"][1]["subsystem"] = "NOPE"
    path = _write(tmp_path, raw)
    with pytest.raises(GeometryError, match=r"sphenix\.yaml: layers\[1\]\.subsystem: unknown "
                                            r"subsystem 'NOPE'"):
        load_geometry(path)


def test_missing_key(tmp_path: Path) -> None:
    raw = _raw()
    del raw["layers"][0]["readout"]["pitch_z_um"]
    with pytest.raises(GeometryError, match=r"sphenix\.yaml: layers\[0\]\.readout\.pitch_z_um: "
                                            r"missing key"):
        load_geometry(_write(tmp_path, raw))
    raw = _raw()
    del raw["field_tesla"]
    with pytest.raises(GeometryError, match=r"sphenix\.yaml: field_tesla: missing key"):
        load_geometry(_write(tmp_path, raw))


def test_negative_radius_and_bad_values() -> None:
    raw = _raw()
    raw["layers"][0]["radius_cm"] = [2.5, -3.3, 4.1]
    with pytest.raises(GeometryError, match=r"test\.yaml: layers\[0\]\.radius_cm: value -3\.3 "
                                            r"is not positive"):
        parse_geometry(raw, "test.yaml")
    raw = _raw()
    raw["layers"][1]["efficiency"] = 1.5
    with pytest.raises(GeometryError, match=r"layers\[1\]\.efficiency: value 1\.5 is not in"):
        parse_geometry(raw, "test.yaml")
    raw = _raw()
    raw["layers"][0]["readout"]["modules"] = [12, 16]
    with pytest.raises(GeometryError, match=r"readout\.modules: 2 values for 3 layers"):
        parse_geometry(raw, "test.yaml")


def test_other_errors(tmp_path: Path) -> None:
    cases = [
        (("layers", 0, "material"), "unobtainium", r"unknown material 'unobtainium'"),
        (("layers", 0, "shape"), "cone", r"unknown shape 'cone'"),
        (("layers", 0, "readout", "type"), "hologram", r"unknown readout type 'hologram'"),
        (("layers", 0, "source"), "nowhere", r"unknown source key 'nowhere'"),
        (("layers", 0, "colour"), "red", r"layers\[0\]\.colour: unknown key"),
    ]
    for keys, value, message in cases:
        raw = _raw()
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        with pytest.raises(GeometryError, match=message):
            parse_geometry(raw, "x.yaml")
    raw = _raw()
    raw["id"] = "other"
    with pytest.raises(GeometryError, match=r"id 'other' differs from the file name"):
        load_geometry(_write(tmp_path, raw))
    with pytest.raises(GeometryError, match="no such geometry"):
        load_geometry(str(tmp_path / "missing.yaml"))
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(GeometryError, match="not valid YAML"):
        load_geometry(str(tmp_path / "broken.yaml"))
