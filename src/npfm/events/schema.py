"""Event-model schema version 3: one Parquet row per event, list columns per hit,
truth particle, reconstructed object, calorimeter cell (with its truth contributions) and
readout waveform (with its samples).

Version 2 added the ``cell``, ``cell_truth``, ``waveform`` and ``sample`` groups
(``Column.since`` = 2); a version-1 shard reads unchanged, its missing columns null.
Version 3 adds extension columns: optional integer lists ``hit_ext_<name>`` and
``particle_ext_<name>`` (one value per hit or particle) that keep a source's own integer
fields (TrackML ``volume_id``, ALEPH truth ``pwflag``) uninterpreted; each carries its
description in the Arrow field metadata and is declared in the manifest. Older shards
have none and read unchanged.

Units: length cm, time ns, energy and momentum GeV (GeV/c), magnetic field tesla.
A field that was not measured is null (a null list for a whole event, or a null
element), never zero. ``docs/event-model.md`` describes every column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 3
#: Versions this npfm reads (older ones through ``migrate``: missing columns are null).
READABLE_VERSIONS = (1, 2, 3)
SCHEMA_METADATA_KEY = b"npfm.schema_version"
#: Extension columns (schema 3): ``<group>_ext_<name>``, name lower-case, at most 32
#: characters; values int64, one per element of the group.
EXTENSION_GROUPS = ("hit", "particle")
EXTENSION_PATTERN = re.compile(r"^(hit|particle)_ext_([a-z][a-z0-9_]{0,31})$")
EXTENSION_SINCE = 3
#: Arrow field-metadata key of an extension column's description.
DESCRIPTION_KEY = b"npfm.description"
#: Reserved key of an event mapping (``build.events_to_table``): {column: description}
#: of the extension columns the mapping holds.
EXTENSIONS_KEY = "extensions"

#: Groups of list columns; within one event, every non-null list of a group has the
#: same length (the number of hits, particles, objects, cells, ...).
GROUPS = ("hit", "particle", "object", "cell", "cell_truth", "waveform", "sample")


@dataclass(frozen=True)
class Column:
    """One column of the event table."""

    name: str
    type: pa.DataType
    level: str  # "event" or one of GROUPS
    unit: str  # "" for dimensionless
    doc: str
    required: bool = False  # non-null in every row
    vocabulary: str | None = None  # controlled vocabulary of the values
    since: int = 1  # schema version that introduced the column

    @property
    def arrow_type(self) -> pa.DataType:
        """Storage type: list columns wrap the element type."""
        return self.type if self.level == "event" else pa.list_(self.type)


_f32, _f64, _i16, _i32, _i64 = pa.float32(), pa.float64(), pa.int16(), pa.int32(), pa.int64()
_str, _bool, _i8 = pa.string(), pa.bool_(), pa.int8()
_counts = pa.list_(pa.int16())  # hits per subsystem, aligned with the event's `subsystems`

COLUMNS: tuple[Column, ...] = (
    # --- event ---
    Column("facility", _str, "event", "", "accelerator facility: RHIC, LEP, HERA, EIC, LHC",
           required=True),
    Column("experiment", _str, "event", "", "experiment: sPHENIX, ALEPH, DELPHI, OPAL, ZEUS, "
           "ePIC, ALICE", required=True),
    Column("geometry_id", _str, "event", "", "detector geometry identifier"),
    Column("geometry_version", _str, "event", "", "version of the geometry description"),
    Column("beam1_pdg", _i32, "event", "", "PDG id of beam 1 (travelling to +z)"),
    Column("beam2_pdg", _i32, "event", "", "PDG id of beam 2 (travelling to -z)"),
    Column("beam1_energy", _f64, "event", "GeV", "energy of beam 1"),
    Column("beam2_energy", _f64, "event", "GeV", "energy of beam 2"),
    Column("sqrt_s", _f64, "event", "GeV", "centre-of-mass energy"),
    Column("process", _str, "event", "", "physics process label, e.g. pp200-minbias, ee-Z"),
    Column("generator", _str, "event", "", "event generator, e.g. Pythia"),
    Column("generator_version", _str, "event", "", "generator version"),
    Column("generator_tune", _str, "event", "", "generator tune"),
    Column("generator_seed", _i64, "event", "", "generator random seed"),
    Column("run", _i64, "event", "", "run number", required=True),
    Column("event", _i64, "event", "", "event number within the run", required=True),
    Column("magnetic_field", _f32, "event", "T", "solenoid field on the axis"),
    Column("data_level", _str, "event", "", "simulated, real or real-archived", required=True,
           vocabulary="data_levels"),
    Column("split", _str, "event", "", "train, validation or test; null if unassigned",
           vocabulary="splits"),
    Column("vertex_x", _f32, "event", "cm", "primary vertex x"),
    Column("vertex_y", _f32, "event", "cm", "primary vertex y"),
    Column("vertex_z", _f32, "event", "cm", "primary vertex z"),
    Column("subsystems", pa.list_(_str), "event", "", "order of the per-subsystem hit counts "
           "in particle_nhits and object_nhits", vocabulary="subsystems"),
    Column("truth_x", _f64, "event", "", "DIS Bjorken x (ep events)"),
    Column("truth_q2", _f64, "event", "GeV^2", "DIS photon virtuality Q^2 (ep events)"),
    Column("truth_y", _f64, "event", "", "DIS inelasticity y (ep events)"),
    Column("truth_scattered_lepton", _i32, "event", "", "particle index of the scattered "
           "lepton (ep events)"),
    Column("truth_quark_flavour", _i8, "event", "", "primary quark flavour 1..5 = d,u,s,c,b "
           "(e+e- events)"),
    # --- hits ---
    Column("hit_x", _f32, "hit", "cm", "hit position x"),
    Column("hit_y", _f32, "hit", "cm", "hit position y"),
    Column("hit_z", _f32, "hit", "cm", "hit position z"),
    Column("hit_t", _f32, "hit", "ns", "hit time"),
    Column("hit_edep", _f32, "hit", "GeV", "energy deposit"),
    Column("hit_adc", _i32, "hit", "", "digitised charge (ADC counts)"),
    Column("hit_subsystem", _str, "hit", "", "subsystem name", vocabulary="subsystems"),
    Column("hit_layer", _i16, "hit", "", "layer within the subsystem, from 0 inwards-out"),
    Column("hit_module", _i32, "hit", "", "module / stave / ladder / sensor id"),
    Column("hit_cell_row", _i32, "hit", "", "readout cell row (pixel row, pad row)"),
    Column("hit_cell_col", _i32, "hit", "", "readout cell column (pixel col, strip, pad)"),
    Column("hit_particle", _i32, "hit", "", "index into the particle lists; -1 for noise"),
    Column("hit_track_id", _i32, "hit", "", "track label (truth track the hit belongs to); "
           "-1 for noise"),
    Column("hit_pid_class", _i8, "hit", "", "FM4NPP PID class: 0 other, 1 pi, 2 K, 3 p, 4 e",
           vocabulary="pid_classes"),
    Column("hit_noise", _bool, "hit", "", "FM4NPP low-momentum tag: particle pT < 0.06 GeV"),
    Column("hit_weight", _f32, "hit", "", "scoring weight the data give the hit (the official "
           "TrackML truth weight); null where the data give none", since=2),
    # --- truth particles ---
    Column("particle_pdg", _i32, "particle", "", "PDG particle id"),
    Column("particle_charge", _f32, "particle", "e", "electric charge"),
    Column("particle_px", _f32, "particle", "GeV", "momentum x"),
    Column("particle_py", _f32, "particle", "GeV", "momentum y"),
    Column("particle_pz", _f32, "particle", "GeV", "momentum z"),
    Column("particle_vx", _f32, "particle", "cm", "production vertex x"),
    Column("particle_vy", _f32, "particle", "cm", "production vertex y"),
    Column("particle_vz", _f32, "particle", "cm", "production vertex z"),
    Column("particle_vt", _f32, "particle", "ns", "production time"),
    Column("particle_parent", _i32, "particle", "", "index of the parent particle; -1 if none"),
    Column("particle_primary", _bool, "particle", "", "produced at the primary interaction"),
    Column("particle_nhits", _counts, "particle", "", "hits per subsystem, in the order of "
           "`subsystems`"),
    Column("particle_mass", _f32, "particle", "GeV", "mass as the record gives it", since=2),
    # --- reconstructed objects ---
    Column("object_px", _f32, "object", "GeV", "momentum x"),
    Column("object_py", _f32, "object", "GeV", "momentum y"),
    Column("object_pz", _f32, "object", "GeV", "momentum z"),
    Column("object_mass", _f32, "object", "GeV", "mass hypothesis"),
    Column("object_charge", _f32, "object", "e", "electric charge"),
    Column("object_type", _str, "object", "", "charged_track, electron, muon, v0, photon, "
           "neutral_hadron", vocabulary="object_types"),
    Column("object_d0", _f32, "object", "cm", "transverse impact parameter"),
    Column("object_z0", _f32, "object", "cm", "longitudinal impact parameter"),
    Column("object_nhits", _counts, "object", "", "hits per subsystem, in the order of "
           "`subsystems`"),
    # --- calorimeter cells (schema 2) ---
    Column("cell_id", _i64, "cell", "", "cell (tower) id, unique within the subsystem",
           since=2),
    Column("cell_subsystem", _str, "cell", "", "calorimeter name", vocabulary="subsystems",
           since=2),
    Column("cell_layer", _i16, "cell", "", "longitudinal layer within the subsystem, 0 "
           "innermost", since=2),
    Column("cell_x", _f32, "cell", "cm", "cell centre x", since=2),
    Column("cell_y", _f32, "cell", "cm", "cell centre y", since=2),
    Column("cell_z", _f32, "cell", "cm", "cell centre z", since=2),
    Column("cell_energy", _f32, "cell", "GeV", "reconstructed cell energy on the "
           "electromagnetic scale (visible energy / sampling fraction)", since=2),
    Column("cell_time", _f32, "cell", "ns", "cell time", since=2),
    # --- truth contributions of cells (schema 2) ---
    Column("cell_truth_cell", _i32, "cell_truth", "", "index into the event's cells",
           since=2),
    Column("cell_truth_particle", _i32, "cell_truth", "", "index into the particle lists",
           since=2),
    Column("cell_truth_fraction", _f32, "cell_truth", "", "fraction of the cell's true "
           "deposit from this particle; a cell's fractions sum to 1", since=2),
    # --- per-channel waveforms (schema 2) ---
    Column("waveform_cell", _i32, "waveform", "", "index into the event's cells", since=2),
    Column("waveform_end", _i8, "waveform", "", "readout end: 0 (or single-ended) or 1 "
           "(two-ended readout)", since=2),
    Column("waveform_n_samples", _i16, "waveform", "", "samples of this waveform in "
           "sample_adc", since=2),
    Column("waveform_period_ns", _f32, "waveform", "ns", "sampling period", since=2),
    Column("waveform_pedestal", _f32, "waveform", "", "pedestal (ADC counts)", since=2),
    Column("waveform_gain", _f32, "waveform", "", "ADC counts per photo-electron", since=2),
    Column("sample_adc", _i16, "sample", "", "ADC samples of all waveforms, concatenated "
           "in waveform order", since=2),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

#: Per group, the columns that must be non-null whenever the group is present; the
#: first one's list length is the group's size (hits, particles or objects) in an event.
ANCHORS: dict[str, tuple[str, ...]] = {
    "hit": ("hit_x", "hit_y", "hit_z"),
    "particle": ("particle_pdg",),
    "object": ("object_px", "object_py", "object_pz"),
    "cell": ("cell_energy",),
    "cell_truth": ("cell_truth_cell",),
    "waveform": ("waveform_cell",),
    "sample": ("sample_adc",),
}


def group_columns(group: str) -> tuple[Column, ...]:
    """List columns holding one value per hit, particle or object."""
    return tuple(c for c in COLUMNS if c.level == group)


def is_extension(name: str) -> bool:
    """Whether ``name`` is a well-formed extension column name."""
    return EXTENSION_PATTERN.fullmatch(name) is not None


def extension_column(name: str, description: str = "") -> Column:
    """The ``Column`` of extension ``name`` (int64 per hit or particle)."""
    found = EXTENSION_PATTERN.fullmatch(name)
    assert found is not None, f"{name!r} is not an extension column name"
    return Column(name, pa.int64(), found[1], "", description or "extension column",
                  since=EXTENSION_SINCE)


def column(name: str) -> Column:
    """A schema column or an extension column by name (KeyError for neither)."""
    if name in BY_NAME:
        return BY_NAME[name]
    if is_extension(name):
        return extension_column(name)
    raise KeyError(name)


def extensions_in(names: list[str]) -> list[str]:
    """The extension column names among ``names``, sorted."""
    return sorted(n for n in names if is_extension(n))


def descriptions(schema: pa.Schema) -> dict[str, str]:
    """Extension column -> description, from a table's field metadata."""
    return {n: (schema.field(n).metadata or {}).get(DESCRIPTION_KEY, b"").decode()
            for n in extensions_in(schema.names)}


def columns_of(version: int) -> tuple[Column, ...]:
    """The columns a shard of schema ``version`` holds."""
    return tuple(c for c in COLUMNS if c.since <= version)


def arrow_schema(version: int = SCHEMA_VERSION,
                 extensions: Mapping[str, str] | None = None) -> pa.Schema:
    """The Parquet/Arrow schema of a shard, with the schema version in its metadata;
    ``extensions``: extension column -> description, appended in name order."""
    fields = [pa.field(c.name, c.arrow_type, nullable=not c.required)
              for c in columns_of(version)]
    fields += [pa.field(n, extension_column(n).arrow_type,
                        metadata={DESCRIPTION_KEY: (extensions or {})[n].encode()})
               for n in sorted(extensions or {})]
    return pa.schema(fields, metadata={SCHEMA_METADATA_KEY: str(version).encode()})


def migrate(table: pa.Table, columns: list[str] | None = None) -> pa.Table:
    """A table read from an older shard with the missing (newer) columns added as nulls,
    in schema order; ``columns``: the selection read (default every column, with the
    table's extension columns after them). An extension a shard lacks reads as null."""
    wanted = [c.name for c in COLUMNS] + extensions_in(table.column_names) \
        if columns is None else columns
    missing = [n for n in wanted if n not in table.column_names]
    if not missing:
        return table
    for name in missing:
        table = table.append_column(pa.field(name, column(name).arrow_type),
                                    pa.nulls(table.num_rows, column(name).arrow_type))
    return table.select(wanted)


def length_column(group: str) -> str:
    """The column whose list length is the group's size in an event."""
    return ANCHORS[group][0]
