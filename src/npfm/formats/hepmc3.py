"""HepMC3 ASCII files <-> ``GeneratedEvent``, through pyhepmc (HepMC3 3.2).

Format (HepMC3 ASCII v3; A. Buckley et al., Comput. Phys. Commun. 260 (2021) 107310):
``HepMC::Version``, ``HepMC::Asciiv3-START_EVENT_LISTING``, then per event
``E number n_vertices n_particles [@ x y z t]``, ``U`` (momentum and length units), ``W``,
``A`` (attributes), ``P id vertex pdg px py pz e m status`` and
``V id status [incoming] @ x y z t``; ``HepMC::Asciiv3-END_EVENT_LISTING`` closes the
file. Momenta in GeV or MeV; positions in mm or cm, times as c*t in the same unit.

Reading hands each event block to pyhepmc on its own: pyhepmc's iterator stops silently at
a damaged event, so blocks are counted here and an error names the event and its line.
``parent`` is the first incoming particle of the production vertex, ``final`` is status 1,
and ``primary`` is False for decay products of particles with c*tau0 > 1e-3 mm and their
descendants, as for Pythia events (``npfm.physics.pythia_source``). Charges and tau0 come
from Pythia's particle data (HepMC3 stores neither).

Writing builds each vertex from both sides (``add_particle_in`` and ``add_particle_out``):
HepMC3 cannot read back parent-only links, nor vertices without incoming particles, so
parentless particles are roots (status 4 unless final; others 1 final, 2 decayed). Units are
GeV and mm. Where the vertices cannot tell a particle's production point (roots, children
produced elsewhere than their siblings) the particle attribute ``npfm_position`` holds it;
``info`` goes to event attributes ``npfm_<key>``. Particles are written parents first
(HepMC3 reads a vertex only after its incoming particles); where that reorders them, the
event attribute ``npfm_particle_order`` lets the reader restore npfm's order.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyhepmc
import pythia8mc
from pyhepmc.io import ReaderAscii, UnparsedAttribute, pyiostream

from npfm.detectors import Geometry, load_geometry, simulate_events
from npfm.events.errors import NpfmError
from npfm.events.schema import BY_NAME
from npfm.physics.pythia_source import DISPLACED_TAU0_MM
from npfm.physics.record import INFO_KEYS, GeneratedEvent

_MM_PER_NS = 299.792458  # c in mm/ns (exact, SI definition of the metre)
_MM_PER_CM = 10.0
_START = b"HepMC::Asciiv3-START_EVENT_LISTING"
_END = b"HepMC::Asciiv3-END_EVENT_LISTING"
_POSITION_ATTR, _INFO_PREFIX = "npfm_position", "npfm_"
#: Event attribute with the writer's particle order, where parents had to come first.
_ORDER_ATTR = "npfm_particle_order"
_FIX_FILE = "give a HepMC3 ASCII file (HepMC::Asciiv3), complete as written"


@cache
def _particle_data() -> Any:
    return pythia8mc.Pythia("", False).particleData


def _blocks(path: Path, progress: Callable[[int], None] | None
            ) -> Iterator[tuple[int, int, bytes, list[bytes]]]:
    """(event index, line of its E record, header, event lines) of each event, streamed."""
    if not path.is_file():
        raise NpfmError(str(path), "file not found", "check the path")
    opener = gzip.open if path.suffix == ".gz" else open
    header: list[bytes] = []
    block: list[bytes] = []
    index, start, ended, started = -1, 0, False, False
    with opener(path, "rb") as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if progress:
                    progress(len(line))
                if number == 1 and not line.startswith(b"HepMC::"):
                    raise NpfmError(f"{path} line 1", "not a HepMC3 ASCII file", _FIX_FILE)
                if ended and line.strip():
                    raise NpfmError(f"{path} line {number}", "content after the end of the "
                                    "event listing", "remove the trailing lines")
                if line.startswith((b"E ", _END)) and block:
                    yield index, start, b"".join(header), block
                    block = []
                if line.startswith(_START):
                    started = True
                elif line.startswith(b"E "):
                    if not started:
                        raise NpfmError(f"{path} line {number}", "event before the "
                                        "Asciiv3 start line (not HepMC3 ASCII)", _FIX_FILE)
                    index, start = index + 1, number
                elif line.startswith(_END):
                    ended = True
                    continue
                (block if block or line.startswith(b"E ") else header).append(line)
        except (OSError, EOFError) as exc:  # damaged gzip stream
            raise NpfmError(str(path), f"cannot be read ({exc})", _FIX_FILE) from None
    if not ended:
        where = f"{path} event {index} (line {start})" if index >= 0 else str(path)
        raise NpfmError(where, "file ends before HepMC::Asciiv3-END_EVENT_LISTING "
                        "(truncated)", "restore the complete file")


def _parse(header: bytes, lines: list[bytes], where: str) -> pyhepmc.GenEvent:
    """One event block through pyhepmc; the counts of its E record must be met."""
    try:
        n_vertices, n_particles = (int(v) for v in lines[0].split()[2:4])
    except ValueError:
        raise NpfmError(where, "malformed E record", _FIX_FILE) from None
    reader = ReaderAscii(pyiostream(io.BytesIO(header + b"".join(lines) + _END + b"\n")))
    event = pyhepmc.GenEvent()
    ok = reader.read_event(event) and not reader.failed()
    reader.close()
    if not ok or (len(event.vertices), len(event.particles)) != (n_vertices, n_particles):
        raise NpfmError(where, f"damaged event: read {len(event.particles)} particles and "
                        f"{len(event.vertices)} vertices of {n_particles} and {n_vertices}",
                        _FIX_FILE)
    return event


def _text(value: Any) -> str:
    return value.astype(str) if isinstance(value, UnparsedAttribute) else str(value)


def _positions(event: pyhepmc.GenEvent) -> np.ndarray:
    """Production point (x, y, z, c*t in the file's length unit) of each particle: attribute
    ``npfm_position``, else its production vertex, else (roots) its end vertex, else the
    event position."""
    origin = list(event.event_pos())
    out = np.empty((len(event.particles), 4))
    for i, p in enumerate(event.particles):
        prod, end = p.production_vertex, p.end_vertex
        if _POSITION_ATTR in p.attributes:
            out[i] = [float(v) for v in _text(p.attributes[_POSITION_ATTR]).split()]
        elif prod is not None and prod.id != 0:
            out[i] = list(prod.position)
        else:
            out[i] = list(end.position) if end is not None else origin
    return out


def _from_genevent(event: pyhepmc.GenEvent, where: str) -> GeneratedEvent:
    mom = 1.0 if event.momentum_unit == pyhepmc.Units.GEV else 1e-3
    to_mm = 1.0 if event.length_unit == pyhepmc.Units.MM else _MM_PER_CM
    parts = event.particles
    arr = event.numpy.particles
    index = {p.id: i for i, p in enumerate(parts)}
    parent = np.array([index[p.production_vertex.particles_in[0].id]
                       if p.production_vertex is not None and p.production_vertex.particles_in
                       else -1 for p in parts], np.int32)
    start = _positions(event) * to_mm
    p4 = np.column_stack([arr.px, arr.py, arr.pz, arr.e]) * mom
    if not (np.isfinite(p4).all() and np.isfinite(start).all()):
        raise NpfmError(where, "non-finite momentum or position", _FIX_FILE)
    mass = np.where(arr.is_generated_mass_set, arr.generated_mass * mom,
                    np.sqrt(np.maximum(p4[:, 3] ** 2 - (p4[:, :3] ** 2).sum(axis=1), 0.0)))
    pdg = np.asarray(arr.pid, np.int32)
    codes, inverse = np.unique(pdg, return_inverse=True)
    charge = np.array([_particle_data().charge(int(c)) for c in codes], np.float32)[inverse]
    tau0 = np.array([_particle_data().tau0(int(c)) for c in codes])[inverse]
    has_parent = parent >= 0
    displaced = has_parent & (tau0[parent] > DISPLACED_TAU0_MM)
    while not np.array_equal(nxt := displaced | (has_parent & displaced[parent]), displaced):
        displaced = nxt
    info: dict[str, Any] = {}
    for name in event.attributes:
        key = name.removeprefix(_INFO_PREFIX)
        if name.startswith(_INFO_PREFIX) and key in INFO_KEYS:
            kind = BY_NAME[key].arrow_type
            cast = str if kind.equals("string") else int if "int" in str(kind) else float
            info[key] = cast(_text(event.attributes[name]))
    vertex = list(event.vertices[0].position) if event.vertices else list(event.event_pos())
    for axis, value in zip("xyz", vertex[:3], strict=False):
        info.setdefault(f"vertex_{axis}", value * to_mm / _MM_PER_CM)
    read = GeneratedEvent(
        pdg=pdg, charge=charge, px=p4[:, 0], py=p4[:, 1], pz=p4[:, 2], energy=p4[:, 3],
        mass=mass, vx=start[:, 0] / _MM_PER_CM, vy=start[:, 1] / _MM_PER_CM,
        vz=start[:, 2] / _MM_PER_CM, vt=start[:, 3] / _MM_PER_NS, parent=parent,
        primary=~displaced, final=np.asarray(arr.status) == 1, info=info)
    if _ORDER_ATTR not in event.attributes:
        return read
    order = np.array(_text(event.attributes[_ORDER_ATTR]).split(), np.int64)
    if sorted(order.tolist()) != list(range(len(read))):
        raise NpfmError(where, f"attribute {_ORDER_ATTR} is not a permutation of the "
                        f"{len(read)} particles", _FIX_FILE)
    return _restore_order(read, order)


def read_hepmc3(path: Path | str, progress: Callable[[int], None] | None = None
                ) -> Iterator[GeneratedEvent]:
    """Stream the events of a HepMC3 ASCII file (``.gz`` too); ``progress(bytes)``.

    Converted to GeV, cm and ns; errors name the file, the event index and its line.
    """
    path = Path(path)
    for index, line, header, lines in _blocks(path, progress):
        where = f"{path} event {index} (line {line})"
        yield _from_genevent(_parse(header, lines, where), where)


_FIELDS = ("pdg", "charge", "px", "py", "pz", "energy", "mass", "vx", "vy", "vz", "vt",
           "parent", "primary", "final")


def parents_first(parent: np.ndarray) -> np.ndarray:
    """An order of the particles with every parent before its children (stable, by
    generation): HepMC3 reads a vertex only after its incoming particles. Pythia's record
    can list a mother after her daughters."""
    depth = np.zeros(len(parent), np.int64)
    has = parent >= 0
    for _ in range(len(parent)):
        nxt = np.where(has, depth[np.maximum(parent, 0)] + 1, 0)
        if np.array_equal(nxt, depth):
            return np.argsort(depth, kind="stable")
        depth = nxt
    raise ValueError("particle parent links form a cycle")


def _restore_order(ev: GeneratedEvent, order: np.ndarray) -> GeneratedEvent:
    """``ev`` (particles in file order) back in the order ``order`` was taken from."""
    out = {name: np.empty_like(getattr(ev, name)) for name in _FIELDS}
    for name in _FIELDS:
        out[name][order] = getattr(ev, name)
    out["parent"] = np.where(out["parent"] >= 0, order[np.maximum(out["parent"], 0)], -1
                             ).astype(np.int32)
    return GeneratedEvent(**out, info=ev.info)


def _to_genevent(ev: GeneratedEvent, number: int,
                 attributes: Mapping[str, np.ndarray] | None = None) -> pyhepmc.GenEvent:
    event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    event.event_number = number
    status = np.where(ev.final, 1, np.where(ev.parent < 0, 4, 2))
    order = parents_first(ev.parent)
    parts: list[Any] = [None] * len(ev)
    for i in order:
        p = pyhepmc.GenParticle(pyhepmc.FourVector(ev.px[i], ev.py[i], ev.pz[i],
                                                   ev.energy[i]), int(ev.pdg[i]), int(status[i]))
        p.generated_mass = float(ev.mass[i])
        event.add_particle(p)
        parts[i] = p
    if not np.array_equal(order, np.arange(len(ev))):
        event.attributes[_ORDER_ATTR] = " ".join(map(str, order.tolist()))
    point = np.column_stack([ev.vx * _MM_PER_CM, ev.vy * _MM_PER_CM, ev.vz * _MM_PER_CM,
                             ev.vt * _MM_PER_NS])
    children = np.flatnonzero(ev.parent >= 0)
    children = children[np.argsort(ev.parent[children], kind="stable")]
    for mother, group in itertools.groupby(children, key=lambda c: int(ev.parent[c])):
        kids = list(group)
        vertex = pyhepmc.GenVertex(pyhepmc.FourVector(*point[kids[0]]))
        vertex.add_particle_in(parts[mother])
        for kid in kids:
            vertex.add_particle_out(parts[kid])
        event.add_vertex(vertex)
    implied = np.empty_like(point)
    implied[order] = _positions(event)  # rows in the order particles were added
    for k in np.flatnonzero((implied != point).any(axis=1)):
        parts[k].attributes[_POSITION_ATTR] = " ".join(repr(float(v)) for v in point[k])
    for key, value in ev.info.items():
        if value is not None:  # as text: str() of a float round-trips exactly
            event.attributes[_INFO_PREFIX + key] = str(value)
    for name, values in (attributes or {}).items():
        for part, whole in zip(parts, values, strict=True):
            if whole is not None:
                part.attributes[name] = int(whole)
    return event


def write_hepmc3(events: Iterable[GeneratedEvent], path: Path | str, *, first_event: int = 0,
                 attributes: Iterable[Mapping[str, Any]] | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write events as HepMC3 ASCII (GeV, mm; ``.gz`` compresses); returns the count.

    Event numbers start at ``first_event``; ``attributes``: per event, name -> one whole
    number (or None: no attribute) per particle, written as integer particle attributes
    (npfm's extension columns). ``progress(1)`` follows each event. The file appears
    atomically.
    """
    extra = iter(attributes) if attributes is not None else None
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    count = 0
    try:
        with pyhepmc.open(tmp, "w") as out:
            for count, ev in enumerate(events, start=1):
                out.write(_to_genevent(ev, first_event + count - 1,
                                       next(extra) if extra is not None else None))
                if progress:
                    progress(1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def simulate_hepmc3(path: Path | str, detector: Geometry | str, seed: int, *,
                    batch_events: int = 100, run: int = 0, first_event: int = 0,
                    progress: Callable[[int], None] | None = None, **options: Any
                    ) -> Iterator[dict[str, Any]]:
    """Event-model mappings of a HepMC3 file's events passed through the fast simulation.

    Events go through ``npfm.detectors.simulate_events`` in batches of ``batch_events``
    with one random stream seeded by ``seed``; ``options`` are ``SimOptions`` fields;
    ``progress(bytes)`` reports reading.
    """
    geometry = load_geometry(detector) if isinstance(detector, str) else detector
    rng = np.random.default_rng(seed)
    stream = read_hepmc3(path, progress)
    done = 0
    while batch := list(itertools.islice(stream, batch_events)):
        yield from simulate_events(batch, geometry, rng, run=run, first_event=first_event + done,
                                   **options)
        done += len(batch)
