"""A central Pb+Pb event through simulate -> pretrain -> embed, every hit embedded once.

    .venv/bin/python bench/heavy_ion_pipeline.py [--out DIR] [--max-hits 4000] [--steps 5]

Runs the three CLI commands, each as its own process (wall time and peak RSS from
``os.wait4``):

1. ``npfm simulate --detector alice --physics pbpb5020 --events 1 --option b_max_fm=3.49``
   (0-5 %, ``CENTRAL_B_MAX_FM``) and ``npfm validate``;
2. ``npfm pretrain`` of the tiny model (masked objective, ``--steps`` steps of 8 windows of
   at most ``--max-hits`` hits each, no object tokens);
3. ``npfm embed`` of the corpus with the run's checkpoint (16 windows per forward pass);

then checks the embeddings: the event's row has ``hit_index`` = 0..n_hits-1 (every hit
exactly once), n_hits equal to the corpus' hit count, one embedding per hit and every
window at most ``--max-hits`` hits. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

NPFM = [sys.executable, "-m", "npfm"]


def _run(args: list[str]) -> dict[str, float]:
    """Run a command; its wall seconds and peak RSS (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return {"wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": usage.ru_maxrss // 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="work directory (kept)")
    parser.add_argument("--max-hits", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="npfm-pbpb-"))
    out.mkdir(parents=True, exist_ok=True)
    corpus, run, emb = out / "corpus", out / "run", out / "emb"
    figures = {"simulate": _run([*NPFM, "simulate", "--detector", "alice", "--physics",
                                 "pbpb5020", "--events", "1", "--shard-events", "1",
                                 "--seed", "11", "--option", "b_max_fm=3.49",
                                 "--out", str(corpus)])}
    figures["validate"] = _run([*NPFM, "validate", str(corpus)])
    config = out / "pretrain.json"  # JSON is YAML
    config.write_text(json.dumps({
        "corpora": [{"path": str(corpus), "name": "alice-pbpb5020"}], "size": "tiny",
        "objective": "masked", "batch_events": 8, "steps": args.steps, "warmup": 1,
        "checkpoint_every": args.steps, "max_hits": args.max_hits, "objects": False}))
    figures["pretrain"] = _run([*NPFM, "pretrain", str(config), "--out", str(run)])
    figures["embed"] = _run([*NPFM, "embed", str(run), "--corpus", str(corpus), "--out",
                             str(emb), "--batch-events", "16"])
    manifest = json.loads((corpus / "manifest.json").read_text())
    summary = json.loads((emb / "embeddings.json").read_text())
    (row,) = pq.read_table(emb / "part-00000.parquet").to_pylist()
    n = row["n_hits"]
    assert n == manifest["hits"] == summary["embedded_hits"], (n, manifest["hits"])
    assert row["hit_index"] == list(range(n)), "a hit is missing or embedded twice"
    assert len(row["embedding"]) == n
    sizes = Counter(row["hit_window"])
    assert sorted(sizes) == list(range(row["n_windows"]))
    assert max(sizes.values()) <= args.max_hits
    tokens = [json.loads(line)["tokens"]
              for line in (run / "metrics.jsonl").read_text().splitlines()]
    print(json.dumps({"hits": n, "windows": row["n_windows"],
                      "largest_window": max(sizes.values()),
                      "smallest_window": min(sizes.values()), "max_hits": args.max_hits,
                      "pretrain_steps": args.steps, "pretrain_tokens_per_step": tokens,
                      "every_hit_embedded_once": True, "dimension": summary["dimension"],
                      "stages": figures, "work_dir": str(out)}))


if __name__ == "__main__":
    main()
