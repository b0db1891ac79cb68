"""Pretraining on a mixed simulated corpus: the loss falls, and a killed run resumes onto
exactly the same loss curve."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from npfm.detectors.production import SimulationJob, run_jobs
from npfm.events.errors import NpfmError
from npfm.train.config import load_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "mixed"
    jobs = [SimulationJob("sphenix", "pp200", 48, seed=1, shard_events=24),
            SimulationJob("aleph", "ee_z", 48, seed=2, shard_events=24),
            SimulationJob("zeus", "ep_hera", 48, seed=3, shard_events=24)]
    run_jobs(jobs, out)
    return out


def _config(tmp: Path, corpus: Path, **extra: object) -> Path:
    body = {"corpora": [{"path": str(corpus), "name": "mixed"}], "size": "tiny",
            "objective": "knnn_leakfree", "k": 6, "batch_events": 4, "steps": 60,
            "lr": 3.0e-3, "min_lr": 3.0e-4, "warmup": 5, "checkpoint_every": 20,
            "max_hits": 400, **extra}
    path = tmp / "config.yaml"
    path.write_text(json.dumps(body))
    return path


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "npfm", *args], env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "npfm", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.mark.slow
def test_loss_falls_and_checkpoint_is_safetensors(tmp_path: Path, corpus: Path) -> None:
    run = tmp_path / "run"
    _run("pretrain", str(_config(tmp_path, corpus)), "--out", str(run))
    losses = _losses(run)
    assert len(losses) == 60
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.85 * first, (first, last)  # standardised relative targets: ~1 at start
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert last < sum(m["knnn_copy_loss"] for m in lines[-10:]) / 10  # beats copying
    latest = run / "checkpoints" / (run / "checkpoints/latest").read_text()
    weights = load_file(str(latest / "model.safetensors"))
    assert any(k.startswith("backbone.") for k in weights)
    assert json.loads((latest / "config.json").read_text())["objective"] == "knnn_leakfree"


@pytest.mark.slow
def test_killed_run_resumes_onto_the_same_loss_curve(tmp_path: Path, corpus: Path) -> None:
    config = _config(tmp_path, corpus, steps=30, checkpoint_every=8)
    _run("pretrain", str(config), "--out", str(tmp_path / "whole"))
    killed = tmp_path / "killed"
    proc = _start("pretrain", str(config), "--out", str(killed))
    log, deadline = killed / "metrics.jsonl", time.monotonic() + 300
    while time.monotonic() < deadline:  # kill between two checkpoints
        if log.exists() and len(log.read_text().splitlines()) >= 11:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "checkpoints/latest").read_text() == "step-0000008"
    assert not (killed / "checkpoints/step-0000030").exists()
    _run("pretrain", str(config), "--out", str(killed))
    assert _losses(killed) == _losses(tmp_path / "whole")


def test_config_errors_name_the_key(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(NpfmError, match=r"\['lerning_rate'\]: unknown key"):
        load_config(_config(tmp_path, corpus, lerning_rate=1))
    with pytest.raises(NpfmError, match="objective: unknown objective 'mlm'"):
        load_config(_config(tmp_path, corpus, objective="mlm"))


@pytest.mark.parametrize(("backbone", "objective", "order"), [
    ("attention", "masked", "hilbert"), ("mamba2", "knnn", "radial"),
    ("mamba2", "two_view", "raster")])
def test_other_backbones_objectives_and_orders_train(tmp_path: Path, corpus: Path,
                                                     backbone: str, objective: str,
                                                     order: str) -> None:
    from npfm.train.loop import pretrain

    config = load_config(_config(tmp_path, corpus, backbone=backbone, objective=objective,
                                 order=order, steps=4, checkpoint_every=4))
    metrics = pretrain(config, tmp_path / "run")
    assert metrics["step"] == 4
    assert metrics["loss"] > 0 if objective != "two_view" else -1 <= metrics["loss"] <= 2
    assert len(_losses(tmp_path / "run")) == 4


def test_runs_from_before_a_vocabulary_grew_still_load(tmp_path: Path) -> None:
    import torch

    from npfm.model.foundation import FoundationModel
    from npfm.train import checkpoint
    from npfm.train.config import PretrainConfig

    torch.manual_seed(0)
    config = PretrainConfig(corpora=({"path": "x", "name": "x"},), size="tiny")
    old = FoundationModel(config)
    table = old.tokenizer.subsystem.weight
    n = table.shape[0]
    with torch.no_grad():  # the same run as it was with three fewer subsystem names
        weights = {k: v.clone() for k, v in old.state_dict().items()}
        weights["tokenizer.subsystem.weight"] = torch.cat([table[:n - 4], table[-1:]])
    optimizer = torch.optim.AdamW(old.parameters())
    checkpoint.save(tmp_path, 1, old, optimizer, {}, {}, weights=weights)
    torch.manual_seed(1)
    new = FoundationModel(config)
    checkpoint.load(tmp_path / "checkpoints" / "step-0000001", new)
    loaded = new.tokenizer.subsystem.weight
    assert torch.equal(loaded[:n - 4], table[:n - 4])
    assert torch.equal(loaded[-1], table[-1])
    assert not torch.equal(loaded[n - 4:n - 1], table[n - 4:n - 1])  # new names: own init
    for key, value in old.state_dict().items():
        if key != "tokenizer.subsystem.weight":
            assert torch.equal(new.state_dict()[key], value), key


def test_runs_from_before_a_geometry_was_added_keep_their_detector_rows(
        tmp_path: Path) -> None:
    """A checkpoint written before a geometry file was added (its rows in the order of the
    geometries it knew, no geometries.json) loads with every known row in place."""
    import torch

    from npfm.model.foundation import FoundationModel
    from npfm.train import checkpoint
    from npfm.train.config import PretrainConfig

    torch.manual_seed(0)
    config = PretrainConfig(corpora=({"path": "x", "name": "x"},), size="tiny")
    old = FoundationModel(config)
    names = old.tokenizer.context.geometries
    assert set(checkpoint.LEGACY_GEOMETRIES) < set(names)  # one was added since
    table = old.tokenizer.context.detector.weight
    legacy = [names.index(g) for g in checkpoint.LEGACY_GEOMETRIES] + [len(names)]
    with torch.no_grad():
        weights = {k: v.clone() for k, v in old.state_dict().items()}
        for key in weights:
            if key.endswith("context.detector.weight"):
                weights[key] = weights[key][legacy]
    checkpoint.save(tmp_path, 1, old, torch.optim.AdamW(old.parameters()), {}, {},
                    weights=weights)
    step = tmp_path / "checkpoints" / "step-0000001"
    assert checkpoint.saved_geometries(step) == names
    (step / checkpoint.GEOMETRIES_FILE).unlink()  # as written before the file existed
    torch.manual_seed(1)
    new = FoundationModel(config)
    checkpoint.load(step, new)
    loaded = new.tokenizer.context.detector.weight
    for g in checkpoint.LEGACY_GEOMETRIES:
        assert torch.equal(loaded[names.index(g)], table[names.index(g)]), g
    assert torch.equal(loaded[-1], table[-1])  # "other"
    added = [names.index(g) for g in names if g not in checkpoint.LEGACY_GEOMETRIES]
    assert not torch.equal(loaded[added], table[added])  # their own initial rows
