"""The loader streams exactly the stored values into packed and padded tensors."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from npfm.events import vocabulary
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import IGNORE_INDEX, EventLoader


def _flat(table: pa.Table, column: str) -> np.ndarray:
    return np.concatenate([np.asarray(v) for v in table.column(column).to_pylist()])


def test_packed_batches_hold_every_hit_in_order(corpus_dir: Path,
                                                sample_table: pa.Table) -> None:
    batches = list(EventLoader(Corpus.open(corpus_dir), batch_size=32))
    assert [b.n_events for b in batches] == [32, 32, 32, 4]  # crosses shard boundaries
    x = torch.cat([b.fields["hit_x"] for b in batches]).numpy()
    np.testing.assert_array_equal(x, _flat(sample_table, "hit_x").astype(np.float32))
    particle = torch.cat([b.fields["hit_particle"] for b in batches]).numpy()
    np.testing.assert_array_equal(particle, _flat(sample_table, "hit_particle"))
    noise = torch.cat([b.fields["hit_noise"] for b in batches]).numpy()
    np.testing.assert_array_equal(noise, _flat(sample_table, "hit_noise").astype(int))
    codes = torch.cat([b.fields["hit_subsystem"] for b in batches]).numpy()
    names = np.array(vocabulary.names("subsystems"))[codes]
    np.testing.assert_array_equal(names, _flat(sample_table, "hit_subsystem"))
    lengths = np.concatenate([np.diff(b.cu_seqlens.numpy()) for b in batches])
    np.testing.assert_array_equal(lengths, [len(v) for v in sample_table["hit_x"].to_pylist()])
    assert torch.cat([b.event for b in batches]).tolist() == list(range(100))


def test_null_fields_become_nan_and_ignore_index(corpus_dir: Path) -> None:
    batch = next(iter(EventLoader(Corpus.open(corpus_dir), batch_size=4,
                                  columns=["hit_x", "hit_t", "hit_adc"])))
    assert torch.isnan(batch.fields["hit_t"]).all()  # time was not measured
    assert (batch.fields["hit_adc"] == IGNORE_INDEX).all()
    assert torch.isfinite(batch.fields["hit_x"]).all()


def test_subsystem_selection(corpus_dir: Path, sample_table: pa.Table) -> None:
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=50, subsystems=["MVTX", "INTT"])
    batches = list(loader)
    subsystem = _flat(sample_table, "hit_subsystem")
    keep = np.isin(subsystem, ["MVTX", "INTT"])
    got = torch.cat([b.fields["hit_z"] for b in batches]).numpy()
    np.testing.assert_array_equal(got, _flat(sample_table, "hit_z")[keep].astype(np.float32))
    codes = torch.cat([b.fields["hit_subsystem"] for b in batches])
    assert set(codes.tolist()) == {0, 1}
    per_event = [np.isin(v, ["MVTX", "INTT"]).sum() for v in
                 sample_table["hit_subsystem"].to_pylist()]
    np.testing.assert_array_equal(np.concatenate([np.diff(b.cu_seqlens.numpy())
                                                  for b in batches]), per_event)


def test_padded_matches_packed(corpus_dir: Path) -> None:
    batch = next(iter(EventLoader(Corpus.open(corpus_dir), batch_size=5)))
    dense, mask = batch.padded()
    counts = batch.cu_seqlens.diff()
    assert mask.shape == (5, int(counts.max()))
    assert mask.sum(1).tolist() == counts.tolist()
    for i in range(5):
        lo, hi = batch.cu_seqlens[i], batch.cu_seqlens[i + 1]
        assert torch.equal(dense["hit_y"][i, : hi - lo], batch.fields["hit_y"][lo:hi])
        assert torch.isnan(dense["hit_y"][i, hi - lo:]).all()
        assert (dense["hit_pid_class"][i, hi - lo:] == IGNORE_INDEX).all()
    cut, cut_mask = batch.padded(max_len=100)
    assert cut["hit_x"].shape == (5, 100)
    assert cut_mask.all()


def test_shuffle_is_deterministic_and_complete(corpus_dir: Path) -> None:
    corpus = Corpus.open(corpus_dir)

    def order(seed: int, epoch: int) -> list[int]:
        loader = EventLoader(corpus, batch_size=16, shuffle=True, seed=seed)
        loader.set_epoch(epoch)
        return torch.cat([b.event for b in loader]).tolist()

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    assert sorted(order(1, 0)) == list(range(100))


def test_ranks_and_workers_partition_the_corpus(corpus_dir: Path) -> None:
    corpus = Corpus.open(corpus_dir)
    seen = []
    for rank in range(2):
        loader = EventLoader(corpus, batch_size=8, rank=rank, world_size=2)
        seen += torch.cat([b.event for b in loader]).tolist()
    assert sorted(seen) == list(range(100))
    workers = DataLoader(EventLoader(corpus, batch_size=8), batch_size=None, num_workers=2)
    assert sorted(torch.cat([b.event for b in workers]).tolist()) == list(range(100))


def test_object_group_and_bad_options(corpus_dir: Path) -> None:
    corpus = Corpus.open(corpus_dir)
    particles = next(iter(EventLoader(corpus, batch_size=3, group="particle")))
    assert set(particles.fields) >= {"particle_pdg", "particle_px", "particle_primary"}
    assert particles.fields["particle_px"].dtype == torch.float32
    with pytest.raises(NpfmError, match="not a loadable hit column"):
        EventLoader(corpus, batch_size=3, columns=["hit_energy"])
    with pytest.raises(NpfmError, match="unknown name 'HCAL'"):
        EventLoader(corpus, batch_size=3, subsystems=["HCAL"])


def test_event_columns_follow_their_events(corpus_dir: Path) -> None:
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=16, shuffle=True, seed=3,
                         event_columns=["geometry_id", "sqrt_s", "event", "data_level",
                                        "split"])
    for batch in loader:
        assert batch.event_fields["geometry_id"] == ["toy-cylinders"] * batch.n_events
        assert batch.event_fields["event"] == batch.event.tolist()
        assert batch.event_fields["sqrt_s"] == [200.0] * batch.n_events
        assert batch.event_fields["data_level"] == ["simulated"] * batch.n_events
        assert batch.event_fields["split"] == ["train"] * batch.n_events
    with pytest.raises(NpfmError, match="not an event-level column"):
        EventLoader(Corpus.open(corpus_dir), batch_size=4, event_columns=["hit_x"])
