"""Quality checks of event tables: one rejection reason (or None) per event.

Checks, in order: the schema-v1 value checks of ``npfm.events.checks`` (NaN/inf,
vocabularies, list lengths, indices), empty events, hits outside the detector envelope,
duplicate content, and labels inconsistent with the truth particles.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.detectors import list_geometries, load_geometry
from npfm.events.checks import check_table, flat_with_rows
from npfm.events.errors import NpfmError
from npfm.events.labels import hit_labels

#: Relative margin on the geometry's outer radius and half-length (resolution, noise).
ENVELOPE_MARGIN = 0.02


def _values(table: pa.Table, column: str, fill: float) -> tuple[np.ndarray, np.ndarray]:
    values, rows = flat_with_rows(table.column(column).combine_chunks())
    return np.asarray(values.fill_null(fill)), rows


def schema_reasons(table: pa.Table) -> list[str | None]:
    """Rows failing the schema-v1 value checks, found one at a time."""
    reasons: list[str | None] = [None] * table.num_rows
    good = np.arange(table.num_rows)
    while len(good):
        try:
            check_table(table.take(pa.array(good)), "event")
            break
        except NpfmError as err:
            where = err.where.split()
            row = int(where[where.index("row") + 1])
            column = where[where.index("column") + 1] if "column" in where else "event"
            reasons[int(good[row])] = f"schema: {column}: {err.problem}"
            good = np.delete(good, row)
    return reasons


def empty_reasons(table: pa.Table) -> list[str | None]:
    has = [np.asarray(pc.fill_null(pc.greater(pc.list_value_length(table.column(c)), 0),
                                   False)) for c in ("hit_x", "object_px", "particle_pdg")]
    empty = ~(has[0] | has[1] | has[2])
    return ["empty event: no hits, objects or particles" if e else None for e in empty]


def envelope_reasons(table: pa.Table) -> list[str | None]:
    """Hits beyond the outer radius or half-length of the event's geometry file (its
    tracking volume and imaging layers)."""
    reasons: list[str | None] = [None] * table.num_rows
    x, rows = _values(table, "hit_x", 0.0)
    if not len(x):
        return reasons
    y, _ = _values(table, "hit_y", 0.0)
    z, _ = _values(table, "hit_z", 0.0)
    geometry_ids = table.column("geometry_id").to_pylist()
    known = set(list_geometries())
    r = np.hypot(x, y)
    for gid in set(geometry_ids) & known:
        geo = load_geometry(gid)
        r_max, z_max = (v * (1 + ENVELOPE_MARGIN) for v in geo.hit_extent)
        mine = np.array([g == gid for g in geometry_ids])[rows]
        outside = mine & ((r > r_max) | (np.abs(z) > z_max))
        for i in np.flatnonzero(outside):
            if reasons[rows[i]] is None:
                reasons[rows[i]] = (f"hit outside the {gid} envelope: r = {r[i]:.1f} cm, "
                                    f"z = {z[i]:.1f} cm (limits {r_max:.1f}, {z_max:.1f} cm; "
                                    "units wrong?)")
    return reasons


def label_reasons(table: pa.Table) -> list[str | None]:
    """Hits whose PID class or noise tag disagrees with their truth particle (events
    that carry hit_particle, hit_pid_class and hit_noise)."""
    labelled = np.ones(table.num_rows, bool)
    for column in ("hit_particle", "hit_pid_class", "hit_noise"):
        labelled &= np.asarray(table.column(column).is_valid())
    if not labelled.all():
        reasons: list[str | None] = [None] * table.num_rows
        if labelled.any():
            rows = np.flatnonzero(labelled)
            for row, reason in zip(rows, label_reasons(table.take(pa.array(rows))),
                                   strict=True):
                reasons[int(row)] = reason
        return reasons
    reasons = [None] * table.num_rows
    particle, rows = _values(table, "hit_particle", -2)
    if not len(particle):
        return reasons
    pid, _ = _values(table, "hit_pid_class", -1)
    noise, _ = _values(table, "hit_noise", False)
    pdg, prow = _values(table, "particle_pdg", 0)
    px, _ = _values(table, "particle_px", 0.0)
    py, _ = _values(table, "particle_py", 0.0)
    first = np.searchsorted(prow, np.arange(table.num_rows))  # first particle of each row
    checkable = (particle >= -1) & (pid >= 0)
    index = np.where(particle >= 0, first[rows] + particle, -1)
    want_pid, want_noise = hit_labels(index[checkable], pdg, px, py)
    bad = np.zeros(len(particle), bool)
    bad[checkable] = (want_pid != pid[checkable]) | (want_noise != noise[checkable])
    for row, n in zip(*np.unique(rows[bad], return_counts=True), strict=True):
        reasons[row] = f"labels: {n} hit(s) whose PID class or noise tag contradicts the truth"
    return reasons


def first_reason(*columns: list[str | None]) -> list[str | None]:
    """Per row, the first non-None reason across checks."""
    return [next((r for r in rs if r is not None), None) for rs in zip(*columns, strict=True)]
