"""``npfm lqcd measure`` with nucleon 3-point functions and gauge-fixed wall sources on a
tiny 2^3 x 8 ensemble: records, exports, plot, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import mlcroissant as mlc
import numpy as np
import pytest
from typer.testing import CliRunner

from npfm.cli import app

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lqcd-n") / "ens"
    _ok(["lqcd", "generate", "--out", str(out), "--lattice", "2x2x2x8", "--beta", "6.0",
         "--configs", "2", "--therm", "4", "--separation", "2", "--over-relaxation", "1",
         "--seed", "7"])
    return out


@pytest.mark.filterwarnings("ignore")  # mlcroissant's own deprecation warnings
def test_measure_nucleon_charges_mass_and_plot(ensemble: Path, tmp_path: Path) -> None:
    out = tmp_path / "meas"
    output = _ok(["lqcd", "measure", str(ensemble), "--out", str(out), "--mass", "1.0",
                  "--t-sink", "3", "--momenta", "1", "--tol", "1e-9"])
    assert "nucleon: a m_N" in output
    nucleon = json.loads((out / "measurements.json").read_text())["summary"]["nucleon"]
    assert nucleon["t_sink"] == 3
    assert set(nucleon["ratios"]) == {"gV_conserved", "gV_local", "gA_local", "V4_q100"}
    # conserved charge: 1 up to states wrapping around the 8-slice time extent
    conserved = nucleon["ratios"]["gV_conserved"]["plateau"]
    assert conserved["value"] == pytest.approx(1.0, abs=0.02)
    local = nucleon["ratios"]["gV_local"]["plateau"]
    assert 0.3 < local["value"] < 1.0  # 1/Z_V, about 1/(1 + m0) at this heavy mass
    assert local["error"] > 0
    fit = nucleon["mass_fit"]
    assert fit is not None
    assert 2.0 < fit["mass"] < 4.0  # three heavy quarks: 3 ln(1 + m0) = 2.08 when free
    assert (out / "nucleon.png").stat().st_size > 1000
    with h5py.File(out / "correlators.h5") as h5:
        assert h5["correlators/nucleon"].shape == (2, 8)
        assert h5["correlators/nucleon_3pt_gV_conserved"].shape == (2, 4)
        np.testing.assert_allclose(h5["correlators/nucleon"][:].mean(axis=0),
                                   nucleon["correlator"])
        c3 = h5["correlators/nucleon_3pt_gV_conserved"][:]
    croissant = str(out / "correlators.croissant.json")
    records = list(mlc.Dataset(croissant).records("correlators"))
    np.testing.assert_allclose([r["correlators/nucleon_3pt_gV_conserved"] for r in records], c3)
    long = list(mlc.Dataset(croissant).records("correlator_records"))
    names = {r["correlator_records/observable"].decode() for r in long}
    assert {"pion", "rho", "nucleon", "nucleon_3pt_gA_local"} <= names
    assert len(long) == 2 * len(names)  # configurations x observables, one source
    row = next(r for r in long if r["correlator_records/observable"] == b"nucleon_3pt_"
               b"gV_conserved" and r["correlator_records/trajectory"] == records[1][
                   "correlators/trajectory"])
    np.testing.assert_allclose(row["correlator_records/values"], c3[1])
    assert row["correlator_records/source"] == b"point at the origin"


def test_wall_source_is_measured_in_coulomb_gauge(ensemble: Path, tmp_path: Path) -> None:
    out = tmp_path / "wall"
    _ok(["lqcd", "measure", str(ensemble), "--out", str(out), "--mass", "1.0",
         "--source", "wall", "--gauge-tol", "1e-10"])
    result = json.loads((out / "measurements.json").read_text())
    assert result["valence"]["gauge"] == "coulomb"
    fixing = result["configurations"][0]["gauge_fixing"]
    assert fixing["converged"]
    assert fixing["theta"] < 1e-10
    assert fixing["theta_history"][0] > fixing["theta"]
    result = runner.invoke(app, ["lqcd", "measure", str(ensemble), "--out", str(out),
                                 "--source", "wall", "--gauge", "none"])
    assert result.exit_code == 2
    assert "a wall source needs a fixed gauge" in result.output
    result = runner.invoke(app, ["lqcd", "measure", str(ensemble), "--out", str(out),
                                 "--t-sink", "8"])
    assert result.exit_code == 2
    assert "t_sink 8 >= lt 8" in result.output
