"""Small real inputs for task tests: simulated sPHENIX p+p and ZEUS ep corpora, and a
tiny pretraining run on both (a few steps: a trained, not a good, backbone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from npfm.detectors.production import SimulationJob, run_job
from npfm.train.config import PretrainConfig
from npfm.train.loop import pretrain


@pytest.fixture(scope="session")
def sim_corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sPHENIX pp200 (60 events), ZEUS ep_hera (40) and ALEPH ee_z (80) corpora."""
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for name, detector, physics, n, seed in (("sphenix", "sphenix", "pp200", 60, 11),
                                             ("zeus", "zeus", "ep_hera", 40, 12),
                                             ("aleph", "aleph", "ee_z", 80, 13)):
        run_job(SimulationJob(detector, physics, n, seed=seed, shard_events=n, run=seed),
                root / name)
        out[name] = root / name
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, sim_corpora: dict[str, Path]) -> Path:
    """A tiny Mamba-2 pretrained for 12 steps on both corpora."""
    run = tmp_path_factory.mktemp("run")
    config = PretrainConfig(corpora=tuple({"path": str(sim_corpora[n]), "name": n}
                                          for n in ("sphenix", "zeus")),
                            size="tiny", objective="knnn_leakfree", k=4, batch_events=4,
                            steps=12, warmup=2, lr=2e-3, checkpoint_every=12, max_hits=600)
    pretrain(config, run)
    return run
