"""Bad importer input ends in one bounded line naming the file, line and field."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from npfm.cli import app
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats import aleph_text, hit_table
from npfm.formats.hit_table import read_hit_table

OBJECT = "px= 1.0 py= 0.1 pz= 0.2 m= 0.140 charge 1.0 pwflag 0"


def _aleph(path: Path, header: str = "MC_RECO RUN = 1 EVENT 1 ECM = 91.2 GEV",
           line: str = OBJECT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{header}\n{line}\nEND_EVENT\nEND_FILE\n")
    return path


def _message(path: Path) -> str:
    with pytest.raises(NpfmError) as err:
        list(aleph_text.read_aleph(path))
    return str(err.value)


def test_a_huge_token_is_neither_echoed_nor_read_whole(tmp_path: Path) -> None:
    path = _aleph(tmp_path / "a.aleph", line="px= " + "9" * 20_000_000 + " py= 0.1")
    tracemalloc.start()
    try:
        message = _message(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"{path} line 2: line longer than 4096 characters")
    assert len(message) < 300
    assert peak < 2_000_000  # bytes: the 20 MB line is never held


@pytest.mark.parametrize("token", ["x" * 5000, "1.0.0" * 100, "abc" * 30])
def test_bad_tokens_are_echoed_at_most_80_characters(tmp_path: Path, token: str) -> None:
    path = _aleph(tmp_path / "a.aleph", line=f"px= {token[:4000]} py= 0.1 pz= 0.2 m= 0.1 "
                  "charge 1.0 pwflag 0")
    message = _message(path)
    assert message.startswith(f"{path} line 2: cannot parse object line (px ")
    assert len(message) < len(str(path)) + 250
    assert "…" in message or len(token) <= 80


def test_huge_run_number_is_one_line_naming_file_field_and_range(tmp_path: Path) -> None:
    path = _aleph(tmp_path / "d/a.aleph",
                  header="MC_RECO RUN = 99999999999999999999999 EVENT 1 ECM = 91.2 GEV")
    assert _message(path) == (
        f"{path} line 1 RUN: 99999999999999999999999 is outside the valid range "
        "-9223372036854775807..9223372036854775807; fix: restore the header from the "
        "archive (a damaged number?)")
    result = CliRunner().invoke(app, ["import-aleph", str(path.parent), "--out",
                                      str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "OverflowError" not in result.output


def test_event_table_refuses_values_outside_the_storage_type() -> None:
    base = {"facility": "LEP", "experiment": "ALEPH", "data_level": "simulated", "run": 1,
            "event": 1}
    hits = {"hit_x": [1.0], "hit_y": [0.0], "hit_z": [0.0]}
    cases = [({**base, "run": 10**23}, r"src column run: value out of the int64 range "
              r"\[-9223372036854775808, 9223372036854775807\]"),
             ({**base, **hits, "hit_layer": np.array([40_000])},
              r"column hit_layer: value out of the int16 range \[-32768, 32767\]"),
             ({**base, **hits, "hit_layer": np.array([np.inf])},
              r"column hit_layer: value out of the int16 range")]
    for event, message in cases:  # before: OverflowError, or a silent wrap-around
        with pytest.raises(NpfmError, match=message):
            events_to_table([event], source="src")
    # a float beyond float32 becomes inf, which the value checks name (and curation
    # quarantines)
    table = events_to_table([{**base, **hits, "hit_x": [1e300]}], source="src")
    with pytest.raises(NpfmError, match=r"src row 0 column hit_x: non-finite value inf"):
        check_table(table, "src")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])
def test_non_finite_values_name_file_and_line(tmp_path: Path, value: str) -> None:
    path = _aleph(tmp_path / "d/a.aleph", line=OBJECT.replace("pz= 0.2", f"pz= {value}"))
    with pytest.raises(NpfmError) as err:
        list(aleph_text.read_archive([path], finite=True))
    assert str(err.value) == (f"{path} line 2 field pz = {float(value):g}: not a finite "
                              "number within +-3.403e+38; fix: restore the line from the "
                              "archive (store unmeasured values as -999)")
    result = CliRunner().invoke(app, ["import-aleph", str(path.parent), "--out",
                                      str(tmp_path / "c")])
    assert result.exit_code == 2
    assert f"{path} line 2 field pz" in result.output
    (event,) = aleph_text.read_archive([path])  # curation: kept, for the quarantine
    assert not np.isfinite(event["object_pz"][0]) or event["object_pz"][0] > 3.4e38
    ecm = _aleph(tmp_path / "e.aleph", header=f"MC_RECO RUN = 1 EVENT 1 ECM = {value} GEV")
    with pytest.raises(NpfmError, match=rf"{ecm} line 1 field ECM = "):
        list(aleph_text.read_archive([ecm], finite=True))
    with pytest.raises(NpfmError, match=rf"{ecm} line 1 ECM: ECM 'x' is not a number"):
        list(aleph_text.read_aleph(_aleph(ecm, header="MC_RECO RUN = 1 EVENT 1 ECM = x GEV")))


def test_cleaned_numeric_layout_is_named(tmp_path: Path) -> None:
    path = tmp_path / "clean.aleph"
    path.write_text(" -0.204  0.120 -0.160  0.140 -1.0  0\n  1.0 2.0 3.0 0.1 1.0 0\n")
    assert "the cleaned numeric-only ALEPH layout" in _message(path)
    other = tmp_path / "other.aleph"
    other.write_text("hello world\n")
    assert _message(other).startswith(f"{other} line 1: object line outside an event")


def _table(tmp_path: Path, z: str, extra: str = "") -> Path:
    (tmp_path / "hits.csv").write_text(f"evt,hx,hy,hz\n0,1,2,3\n0,4,5,{z}\n")
    (tmp_path / "map.yaml").write_text(
        "hits:\n  file: hits.csv\n  columns: {event: evt, x: hx, y: hy, z: hz}\n"
        f"  units: {{x: m, y: m, z: m}}\n  subsystem: TPC\n{extra}"
        "event: {facility: LHC, experiment: TrackML, data_level: simulated}\n")
    return tmp_path / "map.yaml"


def test_hit_table_catches_a_unit_slip_for_any_geometry(tmp_path: Path) -> None:
    # 2955.5 mm declared as metres: |z| = 295,550 cm, and the geometry is not a known one
    with pytest.raises(NpfmError, match=r"hits.csv line 3 column hz: \|z\| = 295550 cm is "
                       r"beyond the maximum extent of 2500 cm \(a unit slip\?\); fix: check "
                       r"hits.units.z in .*map.yaml"):
        list(read_hit_table(_table(tmp_path, "2955.5")))
    assert hit_table.MAX_EXTENT_CM == 2500.0
    events = list(read_hit_table(_table(tmp_path, "24")))  # 24 m: inside the default
    assert events[0]["hit_z"][1] == pytest.approx(2400.0)
    with pytest.raises(NpfmError, match=r"\|z\| = 2400 cm is beyond the maximum extent of "
                       "1000 cm"):
        list(read_hit_table(_table(tmp_path, "24", "  max_extent_cm: 1000\n")))
    with pytest.raises(NpfmError, match=r"hits.max_extent_cm: 'big' is not a positive"):
        list(read_hit_table(_table(tmp_path, "24", "  max_extent_cm: big\n")))


def test_hit_table_refuses_inf_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match=r"hits.csv line 3 column hz: missing, NaN or "
                       "infinite value"):
        list(read_hit_table(_table(tmp_path, "inf")))


def test_geant3_codes_map_to_pdg(tmp_path: Path) -> None:
    lines = [OBJECT + f" pid {code} pname {name}" for code, name in (
        (34, "tau-"), (35, "D+"), (41, "Lamc+"), (44, "Z0"))] + [
        OBJECT + " pid 38", OBJECT + " pid 4 pname nu", OBJECT + " pid 999"]
    path = tmp_path / "t.aleph"
    path.write_text("MC_TRUE_AFTER_CUT RUN = 1 EVENT 1 ECM = 91.2 GEV\n" + "\n".join(lines)
                    + "\nEND_EVENT\nEND_FILE\n")
    (block,) = aleph_text.read_aleph(path)
    # GEANT User's Guide CONS300: 34 tau-, 35 D+, 41 Lambda_c+, 44 Z0, 38 anti-D0;
    # 4 is a neutrino of unstated flavour: no PDG id
    assert aleph_text.to_event(None, block)["particle_pdg"] == [15, 411, 4122, 23, -421,
                                                                None, None]
