"""Event tables: round trip, nulls, and every kind of bad value."""

import numpy as np
import pyarrow as pa
import pytest

from npfm.events.build import events_to_table
from npfm.events.checks import check_schema, check_table
from npfm.events.errors import NpfmError
from npfm.events.sample import sample_events


def _events(n: int = 3) -> list[dict]:
    return sample_events(n, seed=1)


def _check(events: list[dict]) -> None:
    table = events_to_table(events)
    check_schema(table.schema, "input")
    check_table(table, "input")


def test_round_trip_keeps_values_and_nulls() -> None:
    events = _events()
    table = events_to_table(events)
    _check(events)
    assert table.num_rows == 3
    np.testing.assert_array_equal(table.column("hit_x")[1].values.to_numpy(),
                                  events[1]["hit_x"].astype(np.float32))
    assert table.column("hit_subsystem")[0].values.to_pylist()[:3] == \
        list(events[0]["hit_subsystem"][:3])
    # hit_t was not measured: null, not zeros; objects absent: null lists.
    assert table.column("hit_t").null_count == 3
    assert table.column("object_px").null_count == 3
    assert table.column("truth_x").null_count == 3
    nhits = table.column("particle_nhits")[0].as_py()
    assert [sum(r) for r in nhits][:3] == [int((events[0]["hit_particle"] == i).sum())
                                           for i in range(3)]


def test_element_level_nulls_are_kept() -> None:
    events = _events(1)
    d0 = [0.1, None]
    events[0].update(object_px=[1.0, 2.0], object_py=[0.0, 0.0], object_pz=[0.0, 1.0],
                     object_type=["charged_track", "photon"], object_d0=d0)
    _check(events)
    assert events_to_table(events).column("object_d0")[0].as_py() == pytest.approx(d0)


@pytest.mark.parametrize(("change", "message"), [
    ({"hit_x": "nan"}, r"row 1 column hit_x: non-finite value nan"),
    ({"hit_edep": "inf"}, r"row 1 column hit_edep: non-finite value inf"),
    ({"hit_subsystem": "HCAL"}, r"row 1 column hit_subsystem: unknown subsystem 'HCAL'"),
    ({"hit_layer": "short"}, r"row 1 column hit_layer: hit list length differs"),
    ({"hit_y": None}, r"row 1 column hit_y: is null where hit_x is not"),
    ({"hit_particle": 10_000}, r"row 1 column hit_particle: index 10000 outside \[-1, \d+\)"),
    ({"hit_pid_class": 7}, r"row 1 column hit_pid_class: unknown PID class 7"),
    ({"data_level": "guessed"}, r"row 1 column data_level: unknown data level 'guessed'"),
    ({"run": None}, r"row 1 column run: required value is null"),
    ({"particle_nhits": "wide"}, r"row 1 column particle_nhits: per-subsystem counts"),
])
def test_bad_values_name_row_and_column(change: dict, message: str) -> None:
    events = _events()
    ev = events[1]
    for key, how in change.items():
        if how in ("nan", "inf"):
            ev[key] = ev[key].copy()
            ev[key][5] = np.nan if how == "nan" else np.inf
        elif how == "HCAL":
            ev[key] = ev[key].copy()
            ev[key][2] = "HCAL"
        elif how == "short":
            ev[key] = ev[key][:-1]
        elif how == "wide":
            ev[key] = np.pad(ev[key], ((0, 0), (0, 1)))
        elif key in ("hit_particle", "hit_pid_class"):
            ev[key] = ev[key].copy()
            ev[key][0] = how
        else:
            ev[key] = how
    with pytest.raises(NpfmError, match=message) as info:
        _check(events)
    assert "\n" not in str(info.value)
    assert "fix:" in str(info.value)


def test_unknown_field_is_rejected() -> None:
    events = _events(1)
    events[0]["hit_energy"] = [1.0]
    with pytest.raises(NpfmError, match=r"unknown field\(s\) \['hit_energy'\]"):
        events_to_table(events)


def test_schema_checks_version_missing_column_and_type() -> None:
    table = events_to_table(_events(1))
    with pytest.raises(NpfmError, match="schema version 4 but this npfm reads version 1 or 2 or 3"):
        check_schema(table.schema.with_metadata({b"npfm.schema_version": b"4"}), "f.parquet")
    with pytest.raises(NpfmError, match="column hit_x: column missing"):
        check_schema(table.drop_columns(["hit_x"]).schema, "f.parquet")
    retyped = table.set_column(table.schema.get_field_index("run"), "run",
                               table.column("run").cast(pa.int32()))
    with pytest.raises(NpfmError, match="column run: type int32, expected int64"):
        check_schema(retyped.schema, "f.parquet")
