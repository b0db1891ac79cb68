"""The representation probe: ridge R^2, same-track k-NN purity, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from npfm.cli import app
from npfm.tasks.probe import knn_purity, probe, ridge_r2
from npfm.tasks.selection import HeadCollapsed, check_collapse


def test_ridge_r2_recovers_linear_targets_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    train = np.arange(400) % 2 == 0
    linear = x @ rng.normal(size=6) + 0.01 * rng.normal(size=400)
    assert ridge_r2(x, linear, train) > 0.99
    assert ridge_r2(x, rng.normal(size=400), train) < 0.05
    missing = linear.copy()
    missing[::3] = np.nan  # hits without a truth particle are left out, not zeroed
    assert ridge_r2(x, missing, train) > 0.99


def test_knn_purity_separates_clustered_from_random_features() -> None:
    rng = np.random.default_rng(1)
    tracks = np.repeat(np.arange(8), 15)
    tracks = np.concatenate([tracks, tracks])  # two events
    centres = rng.normal(scale=5, size=(8, 3))
    clustered = centres[tracks] + 0.1 * rng.normal(size=(240, 3))
    offsets = [0, 120, 240]
    good = knn_purity(clustered, tracks, offsets, k=10)
    bad = knn_purity(rng.normal(size=(240, 3)), tracks, offsets, k=10)
    assert good["value"] > 0.95
    assert bad["value"] < 0.3  # chance: 14 of 119 others share the track
    assert good["lo"] <= good["value"] <= good["hi"]
    noise = tracks.copy()
    noise[:60] = -1  # noise hits are neither queries nor neighbours
    assert knn_purity(clustered, noise, offsets, k=10)["value"] > 0.95


def test_collapsed_condensation_head_is_refused() -> None:
    cu = torch.tensor([0, 4, 8])
    labels = torch.full((8,), -1)
    with pytest.raises(HeadCollapsed, match="collapsed"):
        check_collapse("silicon_tracking", "adapter_only", torch.full((8,), 1e-3), labels, cu)
    alive = check_collapse("silicon_tracking", "frozen", torch.linspace(0.1, 0.9, 8),
                           torch.tensor([0, 0, 1, -1, 0, 1, 1, 2]), cu)
    assert alive == {"max_beta_median": pytest.approx((0.4429 + 0.9) / 2, abs=1e-3),
                     "tracks_per_event": 2.5}


@pytest.mark.slow
def test_probe_of_a_run(tiny_run: Path, sim_corpora: dict[str, Path], tmp_path: Path) -> None:
    result = probe(tiny_run, sim_corpora["sphenix"], split="train", n_events=12)
    reps = result["linear_probe"]
    assert list(reps)[:3] == ["raw", "random_embedder", "embedding"]
    assert {"block_1", "block_2", "mix"} <= set(reps)
    # Raw features hold the hit position exactly (eta, cos/sin phi, r, z are in them).
    assert all(reps["raw"][t] > 0.98 for t in ("eta", "cos_phi", "sin_phi", "r_cm"))
    # The periodic position encoding keeps the azimuth in the embedding.
    assert reps["embedding"]["cos_phi"] > 0.8
    assert reps["embedding"]["sin_phi"] > 0.8
    for rep in reps:
        purity = result["knn_purity"][rep]
        assert 0 < purity["lo"] <= purity["value"] <= purity["hi"] <= 1
    loss = result["pretraining_loss"]
    assert loss["knnn_mean_loss"] <= loss["knnn_copy_loss"]
    assert np.isfinite(loss["knnn_loss"])
    out = tmp_path / "probe.json"
    cli = CliRunner().invoke(app, ["probe", str(tiny_run), "--corpus",
                                   str(sim_corpora["sphenix"]), "--split", "train",
                                   "--events", "8", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert "purity" in cli.output
    assert json.loads(out.read_text())["n_events"] == 8
    kept = json.loads((tiny_run / "probe.json").read_text())  # the run's latest probe
    assert kept["n_events"] == 8
    assert kept["checkpoint_sha256"] == result["checkpoint_sha256"]
    bad = CliRunner().invoke(app, ["probe", str(tmp_path), "--corpus",
                                   str(sim_corpora["sphenix"])])
    assert bad.exit_code == 2
    assert "no checkpoint" in bad.output
