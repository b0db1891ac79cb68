"""`npfm simulate`: every detector x physics pair, determinism, workers, Dask, kill/resume."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from dask.distributed import Client, LocalCluster

from npfm.detectors import list_geometries, load_geometry, simulate_events
from npfm.detectors.production import SimulationJob, run_job
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.writer import CorpusWriter
from npfm.physics import generate, list_configs


def _sums(manifest: dict) -> list[str]:
    return [s["sha256"] for s in manifest["shards"]]


def _events(corpus: Path) -> list[int]:
    return sorted(int(e) for s in sorted((corpus / "shards").glob("*.parquet"))
                  for e in pq.read_table(s, columns=["event"]).column("event").to_pylist())


@pytest.mark.slow
def test_every_detector_physics_pair_writes_a_valid_corpus(tmp_path: Path) -> None:
    detectors = list_geometries()
    assert set(detectors) == {"sphenix", "aleph", "delphi", "opal", "zeus", "epic", "alice",
                              "clas12"}
    for physics in list_configs():
        generated = list(generate(physics, 1 if physics in ("auau200", "pbpb5020") else 2, seed=3))
        for detector in detectors:
            events = simulate_events(generated, load_geometry(detector),
                                     np.random.default_rng(0))
            out = tmp_path / f"{detector}-{physics}"
            with CorpusWriter(out, name=out.name, citation=Citation(title=out.name),
                              provenance=Provenance(command="pytest")) as writer:
                writer.write(events_to_table(events, source=out.name), source=out.name)
            totals = Corpus.open(out).validate()
            assert totals["events"] == len(generated)
            assert totals["particles"] > 0, out.name


def test_same_corpus_whatever_the_workers(tmp_path: Path) -> None:
    job = SimulationJob("aleph", "ee_z", 30, seed=7, shard_events=10)
    one = run_job(job, tmp_path / "one", workers=1)
    two = run_job(job, tmp_path / "two", workers=2)
    assert _sums(one) == _sums(two)
    assert _events(tmp_path / "two") == list(range(30))
    other = run_job(SimulationJob("aleph", "ee_z", 30, seed=8, shard_events=10),
                    tmp_path / "other")
    assert _sums(other) != _sums(one)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_corpus(tmp_path: Path) -> None:
    job = SimulationJob("zeus", "ep_hera", 20, seed=5, shard_events=5)
    reference = run_job(job, tmp_path / "local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        remote = run_job(job, tmp_path / "dask", scheduler=client)
    assert _sums(remote) == _sums(reference)
    assert Corpus.open(tmp_path / "dask").validate()["events"] == 20


def test_killed_run_resumes_without_duplicates(tmp_path: Path,
                                               kill_after_shards: Callable[..., Path]) -> None:
    args = [sys.executable, "-m", "npfm", "simulate", "--detector", "aleph", "--physics",
            "ee_z", "--events", "80", "--shard-events", "10", "--seed", "11"]
    out = tmp_path / "killed"
    progress = kill_after_shards(args[3:], out)
    done_before = len(json.loads(progress.read_text())["shards"])
    assert 2 <= done_before < 8

    resumed = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run([*args, "--out", str(tmp_path / "whole")], capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert _sums(manifest) == _sums(json.loads((tmp_path / "whole/manifest.json").read_text()))
    assert _events(out) == list(range(80))  # none missing, none twice


def test_bad_job_options_fail_cleanly(tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match="unknown configuration 'pp500'"):
        SimulationJob("sphenix", "pp500", 10)
    with pytest.raises(NpfmError, match=r"physics options \['q2min'\]: not options of ep_hera"):
        SimulationJob("zeus", "ep_hera", 10, physics_options={"q2min": 5})
    with pytest.raises(NpfmError, match="unknown"):
        SimulationJob("zeus", "ep_hera", 10, sim_options={"noize": False})
    result = subprocess.run([sys.executable, "-m", "npfm", "simulate", "--detector", "cms",
                             "--physics", "pp200", "--events", "5", "--out",
                             str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("npfm: error: ")
    assert "cms" in result.stderr


def test_validate_physics_report(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "npfm", "validate-physics", "--out",
                             str(tmp_path), "--scale", "0.5"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert {c["name"] for c in report} == {"multiplicity", "hits", "curvature", "dedx",
                                           "clas12_dis", "clas12_dc", "calo_resolution",
                                           "calo_profile", "bic_resolution", "bic_profile",
                                           "bic_z", "hi_auau200", "hi_pbpb5020"}
    assert all(c["passed"] for c in report)
    assert (tmp_path / "physics-validation.png").stat().st_size > 20_000
    assert (tmp_path / "clas12-validation.png").stat().st_size > 10_000
    assert (tmp_path / "calo-validation.png").stat().st_size > 10_000
    assert (tmp_path / "bic-validation.png").stat().st_size > 10_000
    assert (tmp_path / "heavy-ion-validation.png").stat().st_size > 10_000
    assert "| multiplicity | PASS |" in (tmp_path / "report.md").read_text()
