from pathlib import Path

import numpy as np
import pyarrow as pa

from npfm.events.corpus import Corpus
from npfm.events.summary import Summary, summarize


def test_histogram_statistics_are_exact() -> None:
    s = Summary()
    s.add_counts("x", np.array([0, 1, 1, 2, 10]))
    s.add_counts("x", np.array([3]))
    n, mean, (q5, q50, q95) = s.stats("x")
    values = np.array([0, 1, 1, 2, 10, 3])
    assert n == 6
    assert mean == values.mean()
    assert (q5, q50, q95) == (0, 1, 10)


def test_per_subsystem_counts_match_table(corpus_dir: Path, sample_table: pa.Table) -> None:
    summary = summarize(Corpus.open(corpus_dir))
    assert summary.events == 100
    tpc = [sum(1 for s in row if s == "TPC") for row in sample_table["hit_subsystem"].to_pylist()]
    n, mean, _ = summary.stats("hits/TPC")
    assert n == 100
    assert mean == np.mean(tpc)
    assert summary.present["hit_pid_class"] == 100
    assert summary.present["hit_t"] == 0
    assert summary.categories["experiment"] == {"sPHENIX": 100}
