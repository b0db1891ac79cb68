"""Adapters on a pretrained backbone: heads, training modes, LoRA, tasks end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from npfm.events import vocabulary
from npfm.tasks.backbone import LoRALinear, apply_lora, build_backbone, hit_layers
from npfm.tasks.data import fallback_split, load_events, pack
from npfm.tasks.fit import class_weights, run_task, split_events
from npfm.tasks.heads import (
    EventHead,
    HitHead,
    LayerMix,
    charge,
    condensation_loss,
    condense,
    padded,
    track_pool,
)
from npfm.tasks.specs import (
    TASKS,
    charged_multiplicity,
    per_track,
    track_groups,
    track_objects,
)


def test_layer_mix_is_a_convex_combination_of_normalised_layers() -> None:
    mix = LayerMix(3, 4)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, 100.0, 0.0]))
    layers = [torch.randn(5, 4) for _ in range(3)]
    expected = torch.nn.functional.layer_norm(layers[1], (4,))
    assert torch.allclose(mix(layers), expected, atol=1e-5)


def test_padded_places_each_event_in_its_row() -> None:
    x = torch.arange(5.0).unsqueeze(1)
    out, mask = padded(x, torch.tensor([0, 2, 5]))
    assert out[:, :, 0].tolist() == [[0.0, 1.0, 0.0], [2.0, 3.0, 4.0]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]


def test_heads_keep_events_apart() -> None:
    """Changing one event's hits leaves the other event's outputs unchanged."""
    torch.manual_seed(0)
    layers = [torch.randn(7, 8) for _ in range(2)]
    cu = torch.tensor([0, 3, 7])
    for head in (HitHead(2, 8, 3, kind="attention"), EventHead(2, 8, 2)):
        head.eval()
        before = head(layers, cu)
        changed = [x.clone() for x in layers]
        for x in changed:
            x[3:] = torch.randn(4, 8)
        after = head(changed, cu)
        first = slice(0, 3) if isinstance(head, HitHead) else slice(0, 1)
        assert torch.allclose(before[first], after[first], atol=1e-5)
        assert not torch.allclose(before, after)


def test_condensation_loss_prefers_the_true_clustering_and_condense_recovers_it() -> None:
    objects = torch.tensor([0, 0, 0, 1, 1, 1, -1])
    cu = torch.tensor([0, 7])
    good = torch.tensor([[0.0, 0], [0.05, 0], [0, 0.05], [3, 3], [3.05, 3], [3, 3.05],
                         [-4, 4]])
    beta = torch.tensor([0.9, 0.2, 0.2, 0.9, 0.2, 0.2, 0.01])
    logit = torch.logit(beta)
    mixed_up = good[torch.tensor([0, 3, 1, 4, 2, 5, 6])]
    assert condensation_loss(logit, good, objects, cu) < condensation_loss(logit, mixed_up,
                                                                           objects, cu)
    labels = condense(beta, good, cu, t_beta=0.5, t_distance=0.5)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, -1]


def test_condensation_charge_is_exact_and_never_loses_its_gradient() -> None:
    """q = artanh(beta)^2 + q_min from the logit, finite with a live gradient even where
    beta underflows (the old clamp at 1e-4 had zero gradient there)."""
    logit = torch.tensor([-30.0, -3.0, 0.0, 3.0, 30.0], requires_grad=True)
    q = charge(logit, 0.5)
    beta = torch.sigmoid(logit.detach()[1:4]).double()
    torch.testing.assert_close(q[1:4].double(), torch.atanh(beta) ** 2 + 0.5)
    assert torch.isfinite(q).all()
    objects = torch.tensor([0, 0, 1, 1, -1])
    coords = torch.randn(5, 2)
    condensation_loss(logit, coords, objects, torch.tensor([0, 5])).backward()
    assert logit.grad is not None
    assert (logit.grad[:4] != 0).all()


def test_lora_starts_equal_to_the_base_and_trains_only_its_factors() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU(), torch.nn.Linear(4, 2))
    x = torch.randn(3, 4)
    before = net(x).detach()
    assert apply_lora(net, rank=2) == 2
    assert isinstance(net[0], LoRALinear)
    assert torch.allclose(net(x), before)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"0.down.weight", "0.up.weight", "2.down.weight", "2.up.weight"}


def test_fallback_split_is_fixed_and_near_70_10_20() -> None:
    splits = [fallback_split(1, e) for e in range(5000)]
    assert splits == [fallback_split(1, e) for e in range(5000)]
    fractions = [splits.count(s) / 5000 for s in ("train", "validation", "test")]
    assert np.allclose(fractions, [0.7, 0.1, 0.2], atol=0.03)


def test_events_carry_truth_aligned_with_their_hits(sim_corpora: dict[str, Path]) -> None:
    events = load_events(sim_corpora["sphenix"], limit=10)
    assert len(events) == 10
    for event in events:
        particle = event.hit("hit_particle")
        assert particle.max() < len(event.particles["particle_pdg"])
        objects = track_objects(event)
        assert ((objects == -1) | (objects == particle)).all()
    assert sum(charged_multiplicity(e)[0] for e in events) > 10


def test_features_follow_the_original_hit_order(tiny_run: Path,
                                                sim_corpora: dict[str, Path]) -> None:
    """Row i of each layer is hit i of the event: the serialisation is undone."""
    model = build_backbone("frozen", tiny_run, seed=1)
    events = load_events(sim_corpora["sphenix"], limit=2)
    batch = pack(events)
    with torch.no_grad():
        serial, perm, _ = model.layers(batch)
        ours = hit_layers(model, batch)
    assert len(perm) == batch.cu_seqlens[-1]  # no hit cut
    assert sorted(perm.tolist()) == list(range(len(perm)))
    for a, b in zip(ours, serial, strict=True):
        assert torch.equal(a[perm], b)
    assert len(ours) == 1 + len(model.backbone.layers)  # the embedding, then each block


def test_raw_features_mode(sim_corpora: dict[str, Path]) -> None:
    """``raw``: one layer of standardised hit features plus a subsystem one-hot."""
    model = build_backbone("raw", None, seed=1)
    events = load_events(sim_corpora["sphenix"], limit=2)
    (layer,) = hit_layers(model, pack(events))
    assert layer.shape == (sum(e.n_hits for e in events), 7 + 1 + len(
        vocabulary.names("subsystems")))
    assert torch.isfinite(layer).all()
    assert (layer[:, 7:].sum(1) == 1).all()
    assert layer[:, :5].abs().max() <= 2


@pytest.mark.parametrize("mode", ["frozen", "adapter_only", "lora", "full", "scratch"])
def test_modes_train_what_they_should(tiny_run: Path, mode: str) -> None:
    pretrained = build_backbone("frozen", tiny_run, seed=1).state_dict()
    model = build_backbone(mode, tiny_run, seed=7)
    state = model.state_dict()
    base = {k.replace(".base.", "."): v for k, v in state.items()
            if ".down." not in k and ".up." not in k}
    same = all(torch.equal(base[k], v) for k, v in pretrained.items() if k in base)
    assert same == (mode in ("frozen", "lora", "full"))
    embedder = all(torch.equal(base[k], v) for k, v in pretrained.items()
                   if k.startswith("tokenizer."))
    assert embedder == (mode != "scratch")  # AdapterOnly shares the pretrained embedder
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if mode in ("frozen", "adapter_only"):
        assert not names
    elif mode == "lora":
        assert names
        assert all(".down." in n or ".up." in n for n in names)
    else:
        assert len(names) == len(list(model.parameters()))


@pytest.mark.slow
def test_pid_adapter_learns_and_reports_intervals(tiny_run: Path,
                                                  sim_corpora: dict[str, Path]) -> None:
    result = run_task("pid", sim_corpora["sphenix"], tiny_run, mode="frozen", seed=1,
                      steps=40, head="linear", batch_events=4)
    assert result["headline"] == "macro_recall"
    assert result["best_val_headline"] >= result["initial_val_headline"]
    acc = result["scores"]["accuracy"]
    assert acc["lo"] <= acc["value"] <= acc["hi"]
    recall = result["scores"]["macro_recall"]
    assert recall["lo"] <= recall["value"] <= recall["hi"]
    events = split_events(TASKS["pid"], sim_corpora["sphenix"])["test"]
    truth = np.concatenate([TASKS["pid"].targets(e) for e in events])
    weights = class_weights(TASKS["pid"], torch.from_numpy(truth))
    assert weights is not None
    counts = np.bincount(truth[truth >= 0], minlength=5)
    # Balanced: every present class carries the same total weight; absent ones none.
    totals = weights.numpy() * counts
    assert np.allclose(totals[counts > 0], (truth >= 0).sum() / (counts > 0).sum())
    assert class_weights(TASKS["noise"], torch.from_numpy(truth)) is None
    assert result["provenance"]["checkpoint_sha256"]
    assert result["n_test"] == len(events)


@pytest.mark.slow
def test_tracking_and_regression_tasks_run_end_to_end(tiny_run: Path,
                                                      sim_corpora: dict[str, Path]) -> None:
    tracks = run_task("silicon_tracking", sim_corpora["sphenix"], tiny_run, steps=15,
                      head="linear", batch_events=4)
    scores = tracks["scores"]
    assert -1.0 <= scores["ari"]["value"] <= 1.0
    assert 0.0 <= scores["efficiency"]["value"] <= 1.0
    assert "silicon_ari" in scores
    assert scores["n_particles"] > 0
    assert len(tracks["thresholds"]) == 2
    dis = run_task("ep_kinematics", sim_corpora["zeus"], tiny_run, steps=15, batch_events=4)
    assert np.isfinite(dis["scores"]["target0_resolution"]["value"])
    assert dis["best_val_headline"] <= dis["initial_val_headline"]  # a resolution


@pytest.mark.slow
def test_event_tasks_and_lora_train_on_lep_events(tiny_run: Path,
                                                  sim_corpora: dict[str, Path]) -> None:
    """b-tagging and multiplicity on simulated ALEPH Z events (a detector the backbone
    never saw), and a LoRA run that changes only its low-rank factors."""
    test = split_events(TASKS["ee_btag"], sim_corpora["aleph"])["test"]
    assert {int(TASKS["ee_btag"].targets(e)[0]) for e in test} == {0, 1}  # both flavours
    btag = run_task("ee_btag", sim_corpora["aleph"], tiny_run, steps=10, batch_events=4)
    assert 0.0 <= btag["scores"]["auc"]["value"] <= 1.0
    assert btag["scores"]["accuracy"]["lo"] <= btag["scores"]["accuracy"]["value"]
    mult = run_task("ee_multiplicity", sim_corpora["aleph"], tiny_run, steps=10,
                    batch_events=4)
    assert mult["scores"]["resolution"]["value"] > 0  # in charged particles
    assert mult["best_val_headline"] <= mult["initial_val_headline"]
    lora = run_task("noise", sim_corpora["sphenix"], tiny_run, mode="lora", steps=3,
                    head="linear", batch_events=4)
    frozen = run_task("noise", sim_corpora["sphenix"], tiny_run, mode="frozen", steps=3,
                      head="linear", batch_events=4)
    assert lora["trainable_parameters"] > frozen["trainable_parameters"]


def test_track_pooling_joins_each_hit_with_its_track() -> None:
    x = torch.tensor([[1.0], [3.0], [5.0], [7.0], [9.0]])
    groups = torch.tensor([0, 1, 0, -1, 1])
    pooled = track_pool(x, groups)
    assert pooled[:, 1].tolist() == [3.0, 6.0, 3.0, 0.0, 6.0]  # track means
    assert pooled[:, 2].tolist() == [5.0, 9.0, 5.0, 0.0, 9.0]  # track maxima
    head = HitHead(1, 1, 2, kind="linear", pool_tracks=True)
    with pytest.raises(ValueError, match="groups"):
        head([x], torch.tensor([0, 5]))
    out = head([x], torch.tensor([0, 5]), groups)
    assert out.shape == (5, 2)


def test_per_track_pid_scores_each_track_once(sim_corpora: dict[str, Path]) -> None:
    task = TASKS["pid_track"]
    events = load_events(sim_corpora["sphenix"], limit=3)
    groups = track_groups(events)
    objects = np.concatenate([track_objects(e) for e in events])
    assert ((groups >= 0) == (objects >= 0)).all()
    n_tracks = sum(len(np.unique(track_objects(e)[track_objects(e) >= 0])) for e in events)
    assert groups.max() + 1 == n_tracks
    truth = np.concatenate([task.targets(e) for e in events])
    prob = np.zeros((len(truth), 5))
    prob[np.arange(len(truth)), np.where(truth >= 0, truth, 0)] = 1.0  # a perfect tagger
    y, p, event = per_track(task, events, prob)
    assert len(y) == len(p) == len(event) == len(np.unique(groups[truth >= 0]))
    assert (p.argmax(1) == y).all()
    assert sorted(set(event.tolist())) == [0, 1, 2]
