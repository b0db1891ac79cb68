"""``npfm lqcd generate|inspect|measure|convert`` end to end on a 4^4 lattice, the HDF5 +
Croissant exports, and catalog registration of the ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import mlcroissant as mlc
import numpy as np
import pytest
import torch
from sqlalchemy import func, select
from typer.testing import CliRunner

from npfm.catalog.lqcd_ensembles import register_ensemble
from npfm.catalog.models import Dataset, File, Replica, open_catalog
from npfm.cli import app
from npfm.events.shards import sha256_file
from npfm.lqcd import ildg

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # undo the console's line wrapping


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lqcd") / "ens-b6"
    output = _ok(["lqcd", "generate", "--out", str(out), "--lattice", "4", "--beta", "6.0",
                  "--configs", "3", "--therm", "6", "--separation", "2",
                  "--over-relaxation", "1", "--seed", "5"])
    assert "3 configurations" in output
    assert "<plaquette>" in output
    return out


def test_generate_writes_ildg_files_and_qcdml_record(ensemble: Path) -> None:
    record = json.loads((ensemble / "ensemble.json").read_text())
    assert record["physics"]["action"]["gluon"]["beta"] == 6.0
    assert record["physics"]["size"] == {"lx": 4, "ly": 4, "lz": 4, "lt": 4}
    assert record["algorithm"]["seed"] == 5
    assert record["algorithm"]["over_relaxation"] == 1
    assert len(record["plaquette_history"]) == 6 + 3 * 2
    assert record["thermalisation"]["sweeps"] == 6
    plaq = record["observables"]["plaquette"]
    assert plaq["tau_int"] >= 0.5
    assert plaq["error"] > 0
    assert [c["trajectory"] for c in record["configurations"]] == [8, 10, 12]
    for entry in record["configurations"]:
        path = ensemble / entry["file"]
        config = ildg.read_config(path, expected=(4, 4, 4, 4))
        assert config.checksum_verified
        assert f"{config.suma:x}" == entry["scidac_checksum"]["suma"]
        assert sha256_file(path) == entry["sha256"]
        assert abs(entry["plaquette"] - record["plaquette_history"][entry["trajectory"] - 1]) \
            < 1e-15
        assert entry["lfn"] == config.lfn


def test_generate_is_reproducible(ensemble: Path, tmp_path: Path) -> None:
    again = tmp_path / "ens-b6"
    _ok(["lqcd", "generate", "--out", str(again), "--lattice", "4", "--configs", "1",
         "--therm", "6", "--separation", "2", "--over-relaxation", "1", "--seed", "5"])
    name = "configs/cfg-000008.lime"
    first, second = (ildg.read_config(d / name) for d in (ensemble, again))
    assert torch.equal(first.u, second.u)  # identical links (the record dates differ)
    assert (first.suma, first.sumb) == (second.suma, second.sumb)


def test_inspect_file_and_ensemble(ensemble: Path) -> None:
    output = _ok(["lqcd", "inspect", str(ensemble / "configs/cfg-000008.lime")])
    assert "ildg-binary-data" in output
    assert "checksum verified" in output
    assert "4x4x4x4" in _ok(["lqcd", "inspect", str(ensemble)])


@pytest.mark.filterwarnings("ignore")  # mlcroissant's own deprecation warnings
def test_measure_writes_correlators_plot_and_croissant(ensemble: Path, tmp_path: Path
                                                       ) -> None:
    out = tmp_path / "meas"
    _ok(["lqcd", "measure", str(ensemble), "--out", str(out), "--mass", "0.5",
         "--csw", "1.0", "--tol", "1e-8"])
    result = json.loads((out / "measurements.json").read_text())
    assert result["valence"]["action"] == "Wilson-clover"
    assert len(result["configurations"]) == 3
    pion = np.array(result["summary"]["pion"]["correlator"])
    assert pion.shape == (4,)
    assert np.all(pion > 0)
    assert all(m is None or m > 0 for m in result["summary"]["pion"]["effective_mass"])
    assert (out / "effective-mass.png").stat().st_size > 1000
    with h5py.File(out / "correlators.h5") as h5:
        np.testing.assert_allclose(h5["correlators/pion"][:].mean(axis=0), pion)
        assert list(h5["trajectory"][:]) == [8, 10, 12]
    croissant = json.loads((out / "correlators.croissant.json").read_text())
    assert croissant["distribution"][0]["sha256"] == sha256_file(out / "correlators.h5")
    records = list(mlc.Dataset(str(out / "correlators.croissant.json")).records("correlators"))
    assert [r["correlators/trajectory"] for r in records] == [8, 10, 12]
    np.testing.assert_allclose(np.mean([r["correlators/pion"] for r in records], axis=0), pion)


@pytest.mark.filterwarnings("ignore")  # mlcroissant's own deprecation warnings
def test_convert_to_hdf5_and_to_single_precision(ensemble: Path, tmp_path: Path) -> None:
    h5_path = tmp_path / "configs.h5"
    _ok(["lqcd", "convert", str(ensemble), "--out", str(h5_path)])
    first = ensemble / "configs/cfg-000008.lime"
    config = ildg.read_config(first)
    with h5py.File(h5_path) as h5:
        links = h5["configs"][0]
        assert h5["configs"].shape == (3, 4, 4, 4, 4, 4, 3, 3, 2)
        assert h5["sha256"][0].decode() == sha256_file(first)
    expected = torch.view_as_real(config.u).permute(1, 2, 3, 4, 0, 5, 6, 7).numpy()
    assert np.array_equal(links, expected)
    croissant = json.loads(h5_path.with_suffix(".croissant.json").read_text())
    assert croissant["distribution"][0]["encodingFormat"] == "application/x-hdf5"
    assert croissant["distribution"][0]["sha256"] == sha256_file(h5_path)
    metadata = mlc.Dataset(str(h5_path.with_suffix(".croissant.json"))).metadata
    assert [f.name for f in metadata.record_sets[0].fields] == ["links", "trajectory",
                                                                  "source_sha256"]
    single = tmp_path / "single.lime"
    _ok(["lqcd", "convert", str(first), "--out", str(single), "--precision", "32"])
    assert ildg.read_config(single).precision == 32


def test_bad_input_gives_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lime"
    bad.write_bytes(b"\0" * 200)
    result = runner.invoke(app, ["lqcd", "inspect", str(bad)])
    assert result.exit_code == 2
    assert "npfm: error:" in result.output
    assert "bad LIME magic" in result.output
    result = runner.invoke(app, ["lqcd", "generate", "--out", str(tmp_path / "x"),
                                 "--lattice", "5x4x4x4"])
    assert result.exit_code == 2
    assert "generate option lattice" in result.output


def test_register_ensemble_in_catalog(ensemble: Path, tmp_path: Path) -> None:
    make_session = open_catalog(f"sqlite:///{tmp_path}/catalog.sqlite")
    with make_session() as session:
        messages = register_ensemble(ensemble, session)
        session.commit()
        assert "3 configuration(s)" in messages[0]
        dataset = session.scalars(select(Dataset)).one()
        assert dataset.source == "ildg"
        assert dataset.data_level == "gauge-configurations"
        assert dataset.facility == "lattice"
        assert dataset.events == 3
        assert dataset.hits == 0
        assert dataset.manifest_sha256 == sha256_file(ensemble / "ensemble.json")
        assert dataset.record["physics"]["action"]["gluon"]["beta"] == 6.0
        files = {f.path: f for f in dataset.files}
        path = "configs/cfg-000010.lime"
        assert files[path].sha256 == sha256_file(ensemble / path)
        assert files[path].bytes == (ensemble / path).stat().st_size
        assert files[path].replicas[0].site == "local"
        again = register_ensemble(ensemble, session)
        session.commit()
        assert "already registered" in again[0]
        assert session.scalar(select(func.count()).select_from(File)) == 3
        assert session.scalar(select(func.count()).select_from(Replica)) == 3
