"""Hit and object tokenisation: shapes, ranges, missing energies, gradients, geometries."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from npfm.detectors import load_geometry
from npfm.events.corpus import Corpus
from npfm.events.loader import EventLoader, PackedBatch
from npfm.model.tokenize import (
    ENERGY_CLIP,
    HIT_FEATURES,
    IMPACT_SCALE_CM,
    OBJECT_FEATURES,
    POSITION_CLIP,
    GeometryFourier,
    HitTokenizer,
    ObjectTokenizer,
    geometry_frequencies,
    hit_features,
    object_features,
    sampling_pitch_cm,
)


def _hits(x: list[float], y: list[float], z: list[float], edep: list[float],
          counts: list[int]) -> PackedBatch:
    cu = torch.cumsum(torch.tensor([0, *counts]), 0)
    fields = {"hit_x": torch.tensor(x), "hit_y": torch.tensor(y), "hit_z": torch.tensor(z),
              "hit_edep": torch.tensor(edep), "hit_subsystem": torch.tensor([2, -100, 0][:len(x)])}
    return PackedBatch(fields, cu, torch.zeros(len(counts), dtype=torch.int64),
                       torch.arange(len(counts)), {})


@pytest.fixture
def toy_batch(corpus_dir: Path) -> PackedBatch:
    return next(iter(EventLoader(Corpus.open(corpus_dir), batch_size=8)))


def test_shapes_and_dtypes(toy_batch: PackedBatch) -> None:
    model = HitTokenizer(32)
    n = len(toy_batch.fields["hit_x"])
    tokens = model(toy_batch, ["sphenix"] * 8, ["simulated"] * 8)
    assert tokens.shape == (n, 32)
    assert tokens.dtype == torch.float32
    feats = hit_features(toy_batch.fields, toy_batch.cu_seqlens, ["sphenix"] * 8)
    assert feats.shape == (n, len(HIT_FEATURES))
    assert feats.dtype == torch.float32


def test_features_within_documented_ranges(toy_batch: PackedBatch) -> None:
    feats = hit_features(toy_batch.fields, toy_batch.cu_seqlens, ["sphenix"] * 8)
    eta, cos_phi, sin_phi, r, z, energy, missing = feats.T
    assert torch.isfinite(feats).all()
    assert eta.abs().max() <= 1
    torch.testing.assert_close(cos_phi ** 2 + sin_phi ** 2, torch.ones_like(cos_phi))
    assert r.min() >= 0
    assert r.max() <= POSITION_CLIP
    assert z.abs().max() <= POSITION_CLIP
    assert energy.abs().max() <= ENERGY_CLIP
    assert set(missing.unique().tolist()) <= {0.0, 1.0}
    # Toy deposits (~2 keV) sit well inside the clip, and the toy TPC ends near sPHENIX r_max.
    assert energy.abs().max() < 2
    assert 0.9 < r.max() < 1.1


def test_geometry_fourier_follows_range_and_pitch() -> None:
    """Frequencies run from one period over each coordinate's range to one per sampling
    pitch of the geometry; azimuthal ones are whole harmonics (2 pi-periodic tokens)."""
    sphenix = load_geometry("sphenix")
    pitch = sampling_pitch_cm("sphenix")
    radii = sorted(set(sphenix.layers.radius[~sphenix.layers.is_disk].tolist()))
    assert pitch == pytest.approx((radii[-1] - radii[0]) / (len(radii) - 1))
    freq = geometry_frequencies("sphenix", 6)
    assert freq.shape == (4, 6)
    assert freq[2, 0].item() == pytest.approx(2 * math.pi / sphenix.r_max, rel=1e-5)
    assert freq[2, -1].item() == pytest.approx(2 * math.pi / pitch, rel=1e-5)
    assert freq[3, -1].item() == pytest.approx(2 * math.pi / pitch, rel=1e-5)
    assert torch.equal(freq[1], freq[1].round())
    assert freq[1, 0] == 1
    assert not torch.equal(freq, geometry_frequencies("alice", 6))
    enc = GeometryFourier(6)
    position = torch.tensor([[0.3, math.pi - 1e-5, 40.0, 10.0],
                             [0.3, -math.pi + 1e-5, 40.0, 10.0]])
    out = enc(position, ["sphenix"], torch.zeros(2, dtype=torch.long))
    assert out.shape == (2, 48)
    torch.testing.assert_close(out[0], out[1], atol=0.01, rtol=0)  # no jump across +-pi
    assert not any(True for _ in enc.parameters())


def test_tokens_continuous_across_phi_wrap() -> None:
    batch = _hits([-40.0, -40.0, 40.0], [1e-3, -1e-3, 0.0], [10.0, 10.0, 10.0],
                  [1e-5, 1e-5, 1e-5], [3])
    batch.fields["hit_subsystem"] = torch.tensor([2, 2, 2])
    tokens = HitTokenizer(16)(batch, ["sphenix"], ["simulated"])
    across = (tokens[0] - tokens[1]).norm()
    assert across < 0.01 * (tokens[0] - tokens[2]).norm()


def test_missing_energy_gives_finite_tokens_and_flag() -> None:
    batch = _hits([30.0, 40.0, 0.0], [0.0, 5.0, 0.0], [10.0, -5.0, 0.0],
                  [float("nan"), 2e-6, 0.0], [2, 1])
    feats = hit_features(batch.fields, batch.cu_seqlens, ["sphenix", "alice"])
    assert torch.isfinite(feats).all()
    assert feats[:, 5].tolist()[0] == 0.0
    assert feats[:, 6].tolist() == [1.0, 0.0, 1.0]
    tokens = HitTokenizer(8)(batch, ["sphenix", "alice"], ["simulated", "real"])
    assert torch.isfinite(tokens).all()


def test_same_hits_normalised_by_own_geometry() -> None:
    batch = _hits([50.0, 50.0], [0.0, 0.0], [20.0, 20.0], [1e-5, 1e-5], [1, 1])
    feats = hit_features(batch.fields, batch.cu_seqlens, ["sphenix", "alice"])
    sphenix, alice = load_geometry("sphenix"), load_geometry("alice")
    assert feats[0, 3].item() == pytest.approx(50 / sphenix.r_max)
    assert feats[1, 3].item() == pytest.approx(50 / alice.r_max)
    assert feats[0, 4].item() == pytest.approx(20 / sphenix.z_max)
    assert feats[1, 4].item() == pytest.approx(20 / alice.z_max)
    assert torch.equal(feats[0, [0, 1, 2, 5]], feats[1, [0, 1, 2, 5]])
    model = HitTokenizer(8)
    tokens = model(batch, ["sphenix", "alice"], ["simulated", "simulated"])
    assert not torch.allclose(tokens[0], tokens[1])


def test_gradients_reach_learned_parts_only(toy_batch: PackedBatch) -> None:
    model = HitTokenizer(16)
    model(toy_batch, ["sphenix"] * 4 + ["alice"] * 4, ["simulated"] * 8).square().mean().backward()
    for name in ("position.0.weight", "linear.weight", "energy.weight", "subsystem.weight",
                 "context.detector.weight", "context.level.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None, name
        assert grad.abs().sum() > 0, name
    assert "fourier" not in "".join(name for name, _ in model.named_parameters())


def test_event_metadata_length_checked(toy_batch: PackedBatch) -> None:
    with pytest.raises(ValueError, match="8 events"):
        HitTokenizer(8)(toy_batch, ["sphenix"] * 8, ["simulated"] * 7)


def test_event_metadata_from_batch(corpus_dir: Path) -> None:
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=4, event_columns=["geometry_id"])
    batch = next(iter(loader))
    assert batch.event_fields["geometry_id"] == ["toy-cylinders"] * 4
    # Toy events name no shipped geometry; stand in sPHENIX's.
    batch.event_fields.update(geometry_id=["sphenix"] * 4, data_level=["simulated"] * 4)
    model = HitTokenizer(8)
    assert torch.equal(model(batch), model(batch, ["sphenix"] * 4, ["simulated"] * 4))
    del batch.event_fields["data_level"]
    with pytest.raises(ValueError, match="data_level"):
        model(batch)


def test_object_tokens() -> None:
    cu = torch.tensor([0, 2, 3])
    fields = {"object_px": torch.tensor([1.0, 0.0, 0.5]),
              "object_py": torch.tensor([0.0, 2.0, 0.0]),
              "object_pz": torch.tensor([0.5, -1.0, 0.0]),
              "object_mass": torch.tensor([0.1396, float("nan"), 0.0]),
              "object_charge": torch.tensor([1.0, -1.0, float("nan")]),
              "object_type": torch.tensor([0, 4, -100])}
    batch = PackedBatch(fields, cu, torch.zeros(2, dtype=torch.int64), torch.arange(2),
                        {})
    model = ObjectTokenizer(16)
    tokens = model(batch, ["aleph", "aleph"], ["real-archived", "real-archived"])
    assert tokens.shape == (3, 16)
    assert torch.isfinite(tokens).all()
    tokens.sum().backward()
    assert model.object_type.weight.grad is not None


def test_object_features_impact_parameters_and_flags() -> None:
    fields = {"object_px": torch.tensor([1.0, 3.0]), "object_py": torch.tensor([0.0, 4.0]),
              "object_pz": torch.tensor([0.0, 0.0]), "object_mass": torch.tensor([0.0, 0.0]),
              "object_charge": torch.tensor([1.0, 0.0]),
              "object_d0": torch.tensor([1.0, float("nan")]),
              "object_z0": torch.tensor([-0.01, 0.0])}
    feats = object_features(fields)
    assert feats.shape == (2, len(OBJECT_FEATURES))
    named = dict(zip(OBJECT_FEATURES, feats.T, strict=True))
    assert named["d0"].tolist() == pytest.approx([1.0, 0.0])  # 1 cm -> 1; missing -> 0
    assert named["d0_missing"].tolist() == [0.0, 1.0]
    expected = -math.asinh(1.0) / math.asinh(1 / IMPACT_SCALE_CM)  # z0 = -1 scale
    assert named["z0"].tolist() == pytest.approx([expected, 0.0], rel=1e-5)
    assert named["log_pt"].tolist() == pytest.approx([0.0, math.log10(5) / 0.5], rel=1e-5)
    without = object_features({k: v for k, v in fields.items() if k != "object_z0"})
    assert dict(zip(OBJECT_FEATURES, without.T, strict=True))["z0_missing"].tolist() == \
        [1.0, 1.0]  # a column not loaded counts as missing


def test_archive_detector_id_matches_the_shipped_geometry() -> None:
    model = ObjectTokenizer(8)
    cu = torch.tensor([0, 1, 2])
    fields = {"object_px": torch.ones(2), "object_py": torch.zeros(2),
              "object_pz": torch.zeros(2), "object_mass": torch.zeros(2),
              "object_charge": torch.zeros(2), "object_type": torch.zeros(2, dtype=torch.long)}
    batch = PackedBatch(fields, cu, torch.zeros(2, dtype=torch.int64), torch.arange(2), {})
    tokens = model(batch, ["ALEPH", "aleph"], ["simulated", "simulated"])
    assert torch.equal(tokens[0], tokens[1])
    assert not torch.equal(tokens[0], model(batch, ["delphi"] * 2, ["simulated"] * 2)[0])
