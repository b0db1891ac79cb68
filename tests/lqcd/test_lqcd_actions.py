"""ILDG files of clover, HISQ and domain-wall ensembles recorded in ensemble.json through
``npfm lqcd import``; bad action metadata gives one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import select
from typer.testing import CliRunner

from npfm.catalog.lqcd_ensembles import register_ensemble
from npfm.catalog.models import Dataset, open_catalog
from npfm.cli import app
from npfm.events.errors import NpfmError
from npfm.events.shards import sha256_file
from npfm.lqcd import ildg, observables
from npfm.lqcd.actions import describe, quark_action
from npfm.lqcd.su3 import random_field

runner = CliRunner()
VARIANTS = {
    "clover": (["--flavours", "2+1", "--mass", "l=0.13770", "--mass", "s=0.13640",
                "--param", "csw=1.715", "--mass-convention", "kappa",
                "--gluon", "Iwasaki"], 1.9),
    "hisq": (["--flavours", "2+1+1", "--mass", "l=0.0026", "--mass", "s=0.0130",
              "--mass", "c=0.1550", "--param", "epsilon_naik=-0.0345",
              "--gluon", "Symanzik one-loop"], 6.3),
    "domain-wall": (["--flavours", "2+1", "--mass", "l=0.005", "--mass", "s=0.0362",
                     "--param", "Ls=16", "--param", "M5=1.8", "--gluon", "Iwasaki"], 2.13),
}


def _write_ensemble(directory: Path, lattice: tuple[int, int, int, int]) -> list[Path]:
    """Two ILDG files as another code might write them (32-bit, trajectory in the XML)."""
    gen = torch.Generator().manual_seed(9)
    paths = []
    for traj in (100, 110):
        path = directory / "cfgs" / f"conf.{traj}.lime"
        xml = f"<info><trajectory>{traj}</trajectory></info>"
        ildg.write_config(path, random_field(lattice, gen), precision=32,
                          lfn=f"lfn://elsewhere/{traj}", record_xml=xml)
        paths.append(path)
    return paths


@pytest.mark.parametrize("kind", list(VARIANTS))
def test_import_records_the_action_and_every_file(kind: str, tmp_path: Path) -> None:
    directory = tmp_path / f"ens-{kind}"
    paths = _write_ensemble(directory, (2, 2, 2, 4))
    args, beta = VARIANTS[kind]
    result = runner.invoke(app, ["lqcd", "import", str(directory), "--action", kind,
                                 "--beta", str(beta), *args])
    assert result.exit_code == 0, result.output
    record = json.loads((directory / "ensemble.json").read_text())
    action = record["physics"]["action"]
    assert action["gluon"]["beta"] == beta
    assert action["quark"]["kind"] == kind
    assert action["nFlavours"] == sum(int(n) for n in args[1].split("+"))
    assert record["physics"]["size"] == {"lx": 2, "ly": 2, "lz": 2, "lt": 4}
    entries = record["configurations"]
    assert [e["trajectory"] for e in entries] == [100, 110]
    assert entries[0]["sha256"] == sha256_file(paths[0])
    assert entries[0]["lfn"] == "lfn://elsewhere/100"
    assert entries[0]["checksum_verified"]
    assert entries[0]["precision"] == 32
    u = ildg.read_config(paths[1]).u
    assert entries[1]["plaquette"] == pytest.approx(observables.plaquette(u))
    info = describe(record)
    assert kind in info["keywords"]
    assert f"N_f = {args[1]}" in info["title"]
    assert info["trajectories"] == [100, 110]
    with open_catalog(f"sqlite:///{tmp_path}/catalog.sqlite")() as session:
        register_ensemble(directory, session)
        dataset = session.scalars(select(Dataset)).one()
        assert dataset.title == info["title"]
        assert kind in dataset.keywords
        assert "quenched" not in dataset.keywords


def test_bad_action_metadata_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match="missing parameter"):
        quark_action("domain-wall", "2+1", {"l": 0.01, "s": 0.04}, {"Ls": 16})
    with pytest.raises(NpfmError, match="one mass per flavour group"):
        quark_action("hisq", "2+1+1", {"l": 0.01}, {"epsilon_naik": 0.0})
    with pytest.raises(NpfmError, match="unknown action"):
        quark_action("twisted", "2", {"l": 0.01}, {})
    result = runner.invoke(app, ["lqcd", "import", str(tmp_path), "--action", "clover",
                                 "--beta", "5.3", "--flavours", "2", "--mass", "l=0.1",
                                 "--param", "csw"])
    assert result.exit_code == 2
    assert "not NAME=NUMBER" in result.output
