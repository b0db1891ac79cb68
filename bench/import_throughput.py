"""Import throughput per core against a plain parse/load of the same files, in one run.

    .venv/bin/python bench/import_throughput.py [--repeat 3]

* MIT ALEPH text (the real files in ../shared/data/aleph, reconstructed + truth):
  npfm's importer (parse, link reco and truth, map to the event model, build Arrow
  tables of 250 events) against a plain parse (split every line and convert its
  numbers to float).
* FM4NPP npz (written here from toy TPC events, labelled): npfm's reader (events with
  layers and labels, Arrow tables) against a plain load (np.load of every array and a
  split by event sizes).
Prints events/s and the ratio npfm / plain; best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from npfm.events.build import events_to_table
from npfm.events.sample import sample_events
from npfm.formats import aleph_text, fm4npp

ALEPH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "aleph"


def plain_aleph(paths: list[Path]) -> int:
    events = 0
    for path in paths:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0] == "END_EVENT":
                    events += 1
                elif parts and parts[0] == "px=":
                    [float(x) for x in parts[1:12:2]]
    return events // 2  # reconstructed and truth blocks of the same events


def tables(events: Iterable[dict[str, Any]]) -> int:
    n, stream = 0, iter(events)
    while batch := list(itertools.islice(stream, 250)):
        n += events_to_table(batch).num_rows
    return n


def plain_npz(files: list[Path]) -> int:
    """np.load every file of the export (spacepoints and label files), split by events."""
    arrays: dict[str, np.ndarray] = {}
    for path in files:
        with np.load(path) as npz:
            arrays.update({f"{path.stem}/{k}": npz[k] for k in npz.files})
    sizes = next(a for k, a in arrays.items() if k.endswith("/size"))
    cuts = np.cumsum(sizes)[:-1]
    split = {k: np.split(a, cuts) for k, a in arrays.items() if not k.endswith("/size")}
    return len(next(iter(split.values())))


def best(func: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        n = func()
        times.append(time.perf_counter() - start)
    return min(times), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    paths = sorted(ALEPH.glob("*.aleph"))
    if paths:
        t_plain, n_plain = best(lambda: plain_aleph(paths), args.repeat)
        t_npfm, n = best(lambda: tables(aleph_text.read_archive(paths)), args.repeat)
        assert n == n_plain, (n, n_plain)
        rows.append(("aleph text (real files)", n, t_plain, t_npfm))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spacepoints_000.npz"
        export = fm4npp.write_fm4npp([events_to_table(sample_events(2000, seed=1))], path)
        files = [Path(f) for f in export.files]
        t_plain, n_plain = best(lambda: plain_npz(files), args.repeat)
        t_npfm, n = best(lambda: tables(fm4npp.read_fm4npp(path)), args.repeat)
        assert n == n_plain, (n, n_plain)
        rows.append(("fm4npp npz (toy TPC events)", n, t_plain, t_npfm))
    print(f"{'format':30s} {'events':>7s} {'plain ev/s':>11s} {'npfm ev/s':>10s} {'ratio':>6s}")
    for name, n, t_plain, t_npfm in rows:
        print(f"{name:30s} {n:7d} {n / t_plain:11.0f} {n / t_npfm:10.0f} "
              f"{t_plain / t_npfm:6.2f}")


if __name__ == "__main__":
    main()
