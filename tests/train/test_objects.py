"""Object tokens: events with only reconstructed objects (the real ALEPH archive) are
tokenised by their objects, hit events by their hits, and mixed pretraining learns."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from small_corpora import (
    aleph_object_events,
    losses,
    toy_hit_events,
    write_config,
    write_events,
)

from npfm.detectors.production import SimulationJob, run_jobs
from npfm.events.corpus import Corpus
from npfm.events.loader import EventLoader, PackedBatch
from npfm.model.foundation import FoundationModel
from npfm.train.config import load_config
from npfm.train.embed import _select
from npfm.train.loop import pretrain

COLUMNS = ("geometry_id", "data_level")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One corpus whose batches mix toy hit events, real ALEPH object-only events and
    hit events that also carry objects."""
    objects = aleph_object_events(12)
    hits = toy_hit_events(12, seed=3)
    for event, source in zip(hits[:4], objects[4:8], strict=True):  # hits and objects
        event.update({k: copy.deepcopy(v) for k, v in source.items()
                      if k.startswith("object_")})
    events = [e for pair in zip(hits, objects, strict=True) for e in pair]
    for i, event in enumerate(events):
        event["run"], event["event"] = 7, i
    return write_events(tmp_path_factory.mktemp("mixed") / "corpus", [events])


def _first_batches(corpus: Path, n: int) -> tuple[PackedBatch, PackedBatch]:
    opened = Corpus.open(corpus)
    return (next(iter(EventLoader(opened, n, event_columns=COLUMNS))),
            next(iter(EventLoader(opened, n, group="object", event_columns=COLUMNS))))


def test_object_tokens_only_for_events_without_hits(tmp_path: Path, mixed: Path) -> None:
    hits, objects = _first_batches(mixed, 24)
    n_hits = (hits.cu_seqlens[1:] - hits.cu_seqlens[:-1]).tolist()
    n_objects = (objects.cu_seqlens[1:] - objects.cu_seqlens[:-1]).tolist()
    assert sum(h > 0 and o > 0 for h, o in zip(n_hits, n_objects, strict=True)) == 4
    assert sum(h == 0 and o > 0 for h, o in zip(n_hits, n_objects, strict=True)) == 12
    config = load_config(write_config(tmp_path / "c.json", [(mixed, "m")], max_hits=30))
    seq = FoundationModel(config).sequence(hits, objects)
    from_hits = (seq.hits.cu_seqlens[1:] - seq.hits.cu_seqlens[:-1]).tolist()
    from_objects = (seq.objects.cu_seqlens[1:] - seq.objects.cu_seqlens[:-1]).tolist()
    for h, o, th, to in zip(n_hits, n_objects, from_hits, from_objects, strict=True):
        assert (th, to) == ((min(h, 30), 0) if h else (0, min(o, 30)))
    assert torch.equal(seq.cu_seqlens[1:] - seq.cu_seqlens[:-1],
                       torch.tensor([a + b for a, b in zip(from_hits, from_objects,
                                                           strict=True)]))
    # Every token of an event lies in its own segment, in batch order.
    event_of_slot = torch.repeat_interleave(torch.arange(24), seq.cu_seqlens.diff())
    event_of_object = torch.repeat_interleave(torch.arange(24), seq.objects.cu_seqlens.diff())
    assert torch.equal(event_of_slot[seq.objects.slots], event_of_object)
    # Without the object batch, hitless events have no token at all.
    assert int(FoundationModel(config).sequence(hits).cu_seqlens[-1]) == sum(from_hits)


def test_hit_only_runs_unchanged_by_object_tokens(tmp_path: Path, mixed: Path) -> None:
    """With objects enabled, batches without object tokens give the hit-only loss exactly."""
    hits, objects = _first_batches(mixed, 24)
    keep = hits.cu_seqlens[1:] > hits.cu_seqlens[:-1]
    hits, objects = _select(hits, keep), _select(objects, keep)
    config = write_config(tmp_path / "c.json", [(mixed, "m")], max_hits=50)
    torch.manual_seed(1)
    plain = FoundationModel(load_config(config, objects=False))
    torch.manual_seed(1)
    with_objects = FoundationModel(load_config(config))
    loss_plain, _ = plain(hits, 0)
    loss_objects, metrics = with_objects(hits, 0, objects)
    assert float(metrics["object_token_fraction"]) == 0.0
    assert loss_objects.item() == loss_plain.item()
    loss_objects.backward()  # every parameter takes part (zero gradients), as DDP needs
    assert all(p.grad is not None for p in with_objects.parameters())


@pytest.mark.slow
def test_mixed_batches_train_and_both_losses_fall(tmp_path: Path, mixed: Path) -> None:
    config = load_config(write_config(tmp_path / "c.json", [(mixed, "m")], batch_events=8,
                                      steps=40, lr=3e-3, min_lr=3e-4, max_hits=600,
                                      checkpoint_every=40))  # no toy event split in windows
    pretrain(config, tmp_path / "run")
    curve = losses(tmp_path / "run")
    assert len(curve) == 40
    assert sum(curve[-8:]) / 8 < 0.8 * sum(curve[:8]) / 8, curve
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    shares = [m["object_token_fraction"] for m in lines]
    assert all(0 < s < 1 for s in shares)  # every batch mixes hit and object tokens
    objects = [m["object_knnn_loss"] for m in lines]
    assert sum(objects[-8:]) / 8 < 0.8 * sum(objects[:8]) / 8, objects
    # Both kinds end below their trivial predictor (the per-rank mean offset).
    for kind in ("knnn", "object_knnn"):
        last = lines[-8:]
        assert sum(m[f"{kind}_loss"] for m in last) < sum(m[f"{kind}_mean_loss"] for m in last)


@pytest.mark.slow
def test_pretraining_over_three_detectors_with_the_aleph_archive(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    gun = {"count": 10}  # ten particles per event, through the full detector simulation
    run_jobs([SimulationJob("sphenix", "gun", 8, seed=1, shard_events=8, physics_options=gun),
              SimulationJob("zeus", "gun", 8, seed=3, shard_events=8, physics_options=gun)],
             sim)
    archive = write_events(tmp_path / "aleph", [aleph_object_events(16)])
    config = load_config(write_config(
        tmp_path / "c.json", [(sim, "sim"), (archive, "aleph-archive")], batch_events=4,
        steps=8, temperature=1000.0, max_hits=300, checkpoint_every=8, seed=2))
    pretrain(config, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == list(range(1, 9))
    by_domain = {m["domain"]: m for m in lines}
    assert set(by_domain) == {"sim", "aleph-archive"}
    assert by_domain["aleph-archive"]["object_token_fraction"] == 1.0
    assert by_domain["sim"]["object_token_fraction"] == 0.0  # sim events have hits
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in lines)
    geometries = {g for batch in EventLoader(Corpus.open(sim), 4, event_columns=COLUMNS)
                  for g in batch.event_fields["geometry_id"]}
    assert geometries == {"sphenix", "zeus"}  # with the ALEPH archive: three detectors
