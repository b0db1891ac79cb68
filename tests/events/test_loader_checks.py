"""The loader's fused value checks refuse exactly what ``check_table`` refuses, with the
same one-line error, and its background sha256 check still comes before any event."""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tests.test_validate_cli import SHARD, _rewrite, _set_list_value

from npfm.events import loader as loader_module
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus, forget_verified
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader, _ahead
from npfm.events.loader_checks import convert_checked

Edit = Callable[[pa.Table], pa.Table]


def _shorter(t: pa.Table) -> pa.Table:
    values = t.column("hit_edep").to_pylist()
    values[3] = values[3][:-1]
    i = t.schema.get_field_index("hit_edep")
    return t.set_column(i, "hit_edep", pa.array(values, t.schema.field(i).type))


def _set(column: str, row: int, index: int, value: object) -> Edit:
    return lambda t: _set_list_value(t, column, row, index, value)


REFUSED = {
    "nan": _set("hit_y", 7, 3, float("nan")),
    "inf_anchor": _set("hit_x", 2, 0, float("inf")),
    "minus_inf": _set("hit_edep", 11, 5, float("-inf")),
    "pid_class": _set("hit_pid_class", 4, 2, 99),
    "pid_negative": _set("hit_pid_class", 4, 2, -1),
    "particle_index": _set("hit_particle", 9, 1, -5),
    "track_index": _set("hit_track_id", 1, 0, -2),
    "subsystem": _set("hit_subsystem", 5, 0, "HCAL"),
    "length": _shorter,
}


def _expected(corpus: Path, loader: EventLoader) -> str:
    """``check_table``'s error on the edited shard, read as the loader reads it."""
    table = pq.read_table(corpus / SHARD, columns=loader._read,
                          read_dictionary=loader._dict)
    with pytest.raises(NpfmError) as err:
        check_table(table, str(corpus / SHARD))
    return str(err.value)


@pytest.mark.parametrize("edit", REFUSED.values(), ids=REFUSED.keys())
def test_loader_refuses_what_check_table_refuses_with_its_message(
        corpus_dir: Path, edit: Edit) -> None:
    _rewrite(corpus_dir, edit)
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=8)
    with pytest.raises(NpfmError) as err:
        list(loader)
    assert str(err.value) == _expected(corpus_dir, loader)
    assert "part-00001.parquet" in str(err.value)


def test_particle_parent_bounded_by_the_events_particles(corpus_dir: Path) -> None:
    parents = pq.read_table(corpus_dir / SHARD, columns=["particle_pdg"]).column(0)
    n = len(parents[6].as_py())
    _rewrite(corpus_dir, _set("particle_parent", 6, 0, n))
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=8, group="particle")
    with pytest.raises(NpfmError, match=rf"column particle_parent: index {n} outside"):
        list(loader)
    _rewrite(corpus_dir, _set("particle_parent", 6, 0, n - 1))
    assert sum(b.n_events for b in EventLoader(Corpus.open(corpus_dir), 8,
                                               group="particle")) == 100


def test_values_check_table_accepts_still_load(corpus_dir: Path) -> None:
    # no particle lists are read with hits: the index has no upper bound to break
    _rewrite(corpus_dir, lambda t: _set_list_value(
        _set_list_value(t, "hit_particle", 0, 0, 10**6), "hit_edep", 0, 1, None))
    batch = next(iter(EventLoader(Corpus.open(corpus_dir), batch_size=50)))
    first = int(batch.cu_seqlens[40])  # shard 1 starts at event 40
    assert batch.fields["hit_particle"][first] == 10**6
    assert torch.isnan(batch.fields["hit_edep"][first + 1])
    assert torch.isfinite(batch.fields["hit_edep"][first + 2])


def test_valid_row_groups_skip_check_table(corpus_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(loader_module, "check_table",
                        lambda table, where, row_offset=0: calls.append(where))
    for group in ("hit", "particle", "object"):
        assert sum(b.n_events for b in EventLoader(Corpus.open(corpus_dir), 16,
                                                   group=group)) == 100
    assert calls == []
    _rewrite(corpus_dir, _set("hit_edep", 0, 1, None))  # a null element: not proven
    list(EventLoader(Corpus.open(corpus_dir), 16))
    assert calls
    assert all(c.endswith("part-00001.parquet") for c in calls)


def test_fast_checks_prove_only_valid_tables() -> None:
    hits = pa.array([[1.0, 2.0]], pa.list_(pa.float32()))
    table = pa.table({"hit_x": hits, "hit_y": hits, "hit_z": hits,
                      "run": pa.array([1], pa.int64()), "event": pa.array([0], pa.int64())})
    converted = convert_checked(table, "hit")
    assert converted.proven
    np.testing.assert_array_equal(converted.counts, [2])
    bad = table.set_column(0, "hit_x", pa.array([[1.0, float("nan")]], pa.list_(pa.float32())))
    assert not convert_checked(bad, "hit").proven
    with_null = table.set_column(1, "hit_y", pa.array([None], pa.list_(pa.float32())))
    assert not convert_checked(with_null, "hit").proven  # an anchor null alone


def test_changed_shard_fails_its_checksum_before_any_of_its_events(corpus_dir: Path) -> None:
    # still valid Parquet with valid values, but not the bytes the manifest names
    _rewrite(corpus_dir, _set("hit_x", 0, 0, 1.0), fix_checksum=False)
    forget_verified()
    batches = iter(EventLoader(Corpus.open(corpus_dir), batch_size=1))
    seen = [int(next(batches).event[0]) for _ in range(40)]
    assert seen == list(range(40))  # all of shard 0 ...
    with pytest.raises(NpfmError, match=r"part-00001\.parquet: sha256 .* does not match"):
        next(batches)  # ... and nothing of shard 1


def test_checksum_error_outranks_a_bad_value(corpus_dir: Path) -> None:
    _rewrite(corpus_dir, REFUSED["nan"], fix_checksum=False)
    forget_verified()
    with pytest.raises(NpfmError, match=r"sha256 .* does not match the manifest"):
        list(EventLoader(Corpus.open(corpus_dir), batch_size=8))
    with pytest.raises(NpfmError, match="column hit_y: non-finite value nan"):
        list(EventLoader(Corpus.open(corpus_dir), batch_size=8, verify=False))


def test_read_ahead_keeps_order_and_errors() -> None:
    def tables() -> Iterator[pa.Table]:
        yield pa.table({"a": [1]})
        yield pa.table({"a": [2]})
        raise NpfmError("shard row group 2", "cannot be decoded", "restore it")

    with ThreadPoolExecutor(1) as reader:
        got = _ahead(tables(), reader)
        assert [next(got)["a"][0].as_py(), next(got)["a"][0].as_py()] == [1, 2]
        with pytest.raises(NpfmError, match="row group 2: cannot be decoded"):
            next(got)


def test_abandoned_iteration_leaves_a_clean_loader(corpus_dir: Path) -> None:
    loader = EventLoader(Corpus.open(corpus_dir), batch_size=8)
    first = next(iter(loader))  # the rest is never read
    again = list(loader)
    assert torch.equal(again[0].fields["hit_x"], first.fields["hit_x"])
    assert sum(b.n_events for b in again) == 100
