"""HepMC3 ASCII through pyhepmc: Pythia events out and back, simulation, damaged files."""

from pathlib import Path

import numpy as np
import pyhepmc
import pytest

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats.hepmc3 import read_hepmc3, simulate_hepmc3, write_hepmc3
from npfm.physics import generate
from npfm.physics.record import GeneratedEvent

EXACT = ("pdg", "charge", "parent", "final", "primary")
FLOATS = ("px", "py", "pz", "energy", "mass", "vx", "vy", "vz", "vt")


@pytest.fixture(scope="module")
def ee_z() -> list[GeneratedEvent]:
    return list(generate("ee_z", 3, seed=1))


@pytest.fixture(scope="module")
def ee_z_file(tmp_path_factory: pytest.TempPathFactory, ee_z: list[GeneratedEvent]) -> Path:
    path = tmp_path_factory.mktemp("hepmc3") / "ee_z.hepmc3"
    assert write_hepmc3(ee_z, path) == 3
    return path


def assert_same(a: GeneratedEvent, b: GeneratedEvent) -> None:
    for name in EXACT:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in FLOATS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                   atol=1e-15, err_msg=name)
    assert a.info == b.info


def test_pythia_round_trip(ee_z: list[GeneratedEvent], ee_z_file: Path) -> None:
    seen: list[int] = []
    back = list(read_hepmc3(ee_z_file, progress=seen.append))
    assert sum(seen) == ee_z_file.stat().st_size
    assert len(back) == 3
    for a, b in zip(ee_z, back, strict=True):
        assert_same(a, b)
    assert (~back[1].primary).sum() > 0  # a b-quark event: displaced B decays survive


def test_file_has_child_links_and_units(ee_z: list[GeneratedEvent], ee_z_file: Path) -> None:
    with pyhepmc.open(ee_z_file) as f:  # HepMC3's own reader, without npfm's bookkeeping
        events = list(f)
    assert len(events) == 3
    first = events[0]
    assert (first.momentum_unit, first.length_unit) == (pyhepmc.Units.GEV, pyhepmc.Units.MM)
    decayed = [p for p in first.particles if p.end_vertex is not None]
    assert decayed
    assert all(p.children for p in decayed)
    assert len(first.particles) == len(ee_z[0])


def test_roots_pileup_and_gzip(tmp_path: Path) -> None:
    """Gun particles (roots off the origin) and pileup with a beam spot keep their points."""
    events = [*generate("gun", 1, seed=1, count=3, vertex=(0.1, -0.2, 3.0)),
              *generate("ee_z", 2, seed=2, pileup_mean=2.0, pileup_config="gun",
                        vertex_sigma_z=5.0, vertex_sigma_t=0.1)]
    path = tmp_path / "mixed.hepmc3.gz"
    write_hepmc3(events, path, first_event=100)
    back = list(read_hepmc3(path))
    for a, b in zip(events, back, strict=True):
        assert_same(a, b)
    with pyhepmc.open(path) as f:
        assert [e.event_number for e in f] == [100, 101, 102]


def test_simulate_hepmc3_is_schema_valid(ee_z_file: Path) -> None:
    events = list(simulate_hepmc3(ee_z_file, "aleph", seed=5, batch_events=2, run=3))
    assert [(e["run"], e["event"]) for e in events] == [(3, 0), (3, 1), (3, 2)]
    check_table(events_to_table(events), "hepmc3 simulation")
    assert all(len(e["hit_x"]) > 0 for e in events)
    assert events[0]["process"] == "ee-Z"
    again = list(simulate_hepmc3(ee_z_file, "aleph", seed=5, batch_events=2, run=3))
    np.testing.assert_array_equal(events[2]["hit_x"], again[2]["hit_x"])


def test_foreign_units_mev_cm(tmp_path: Path) -> None:
    event = pyhepmc.GenEvent(pyhepmc.Units.MEV, pyhepmc.Units.CM)
    beam = pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, 1000, 1000), 11, 4)
    vertex = pyhepmc.GenVertex(pyhepmc.FourVector(1.0, 2.0, 3.0, 29.9792458))
    vertex.add_particle_in(beam)
    pion = pyhepmc.GenParticle(pyhepmc.FourVector(300, 400, 0, 520), 211, 1)
    vertex.add_particle_out(pion)
    event.add_vertex(vertex)
    with pyhepmc.open(tmp_path / "mev.hepmc3", "w") as f:
        f.write(event)
    ev = next(read_hepmc3(tmp_path / "mev.hepmc3"))
    assert ev.pdg.tolist() == [11, 211]
    np.testing.assert_allclose([ev.px[1], ev.py[1], ev.energy[1]], [0.3, 0.4, 0.52])
    np.testing.assert_allclose([ev.vx[1], ev.vz[1], ev.vt[1]], [1.0, 3.0, 1.0])
    np.testing.assert_allclose(ev.mass[1], np.sqrt(0.52**2 - 0.25))
    assert ev.parent.tolist() == [-1, 0]
    assert ev.final.tolist() == [False, True]
    assert ev.charge.tolist() == [-1.0, 1.0]
    np.testing.assert_allclose([ev.info["vertex_x"], ev.info["vertex_z"]], [1.0, 3.0])


def test_bad_files(tmp_path: Path, ee_z: list[GeneratedEvent], ee_z_file: Path) -> None:
    text = ee_z_file.read_text()
    lines = text.splitlines(keepends=True)
    second = [i for i, line in enumerate(lines) if line.startswith("E ")][1]
    truncated = tmp_path / "truncated.hepmc3"
    truncated.write_text("".join(lines[: second + 5]))
    damaged = tmp_path / "damaged.hepmc3"
    damaged.write_text("".join([*lines[:second + 20], *lines[second + 24:]]))
    garbage = tmp_path / "garbage.hepmc3"
    garbage.write_bytes(np.random.default_rng(0).bytes(2000))
    hepmc2 = tmp_path / "old.hepmc"
    hepmc2.write_text("HepMC::Version 2.06.09\nHepMC::IO_GenEvent-START_EVENT_LISTING\n"
                      "E 0 -1 -1 -1 -1 0 0 0 0 0\n")
    cases = [
        (tmp_path / "missing.hepmc3", "missing.hepmc3: file not found"),
        (truncated, rf"truncated.hepmc3 event 1 \(line {second + 1}\): file ends before"),
        (damaged, rf"damaged.hepmc3 event 1 \(line {second + 1}\): damaged event"),
        (garbage, "garbage.hepmc3 line 1: not a HepMC3 ASCII file"),
        (hepmc2, "old.hepmc line 3: event before the Asciiv3 start line"),
        (tmp_path / "empty.hepmc3", "empty.hepmc3: file ends before"),
    ]
    (tmp_path / "empty.hepmc3").write_text("")
    for path, message in cases:
        with pytest.raises(NpfmError, match=message):
            list(read_hepmc3(path))
    assert_same(next(read_hepmc3(truncated)), ee_z[0])  # events before the damage stream
