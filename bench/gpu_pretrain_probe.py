"""Short pretraining of the default objective on one GPU, then the representation probe.

    python3 bench/gpu_pretrain_probe.py CONFIG --out RUN --corpus CORPUS [--steps N]
        [--json FILE]

Runs ``npfm.train.loop.pretrain`` (bf16 autocast on CUDA; resumes a killed run) and then
``npfm.tasks.probe.probe`` on the corpus's test split, without the CLI (whose catalog and
format dependencies the GPU image lacks). Prints the pretraining rate, the final loss
against its trivial predictors and the same-track 10-NN purity of each representation
beside the raw hit features and the random embedder (95% bootstrap intervals).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from npfm.tasks.probe import probe
from npfm.train.config import load_config
from npfm.train.loop import pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = load_config(args.config, **({"steps": args.steps} if args.steps else {}))
    start = time.perf_counter()
    last = pretrain(config, args.out)
    seconds = time.perf_counter() - start
    print(f"pretraining: {config.steps} steps of {config.batch_events} events, size "
          f"{config.size}, objective {config.objective}: {seconds:.0f} s; last metrics "
          + ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items())
                      if isinstance(v, int | float)))
    result = probe(args.out, args.corpus)
    print(f"probe on {result['n_events']} test events ({result['n_hits']} hits); "
          f"same-track {result['k']}-NN purity [95% CI]:")
    for rep, v in result["knn_purity"].items():
        print(f"  {rep:16} {v['value']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]")
    print("objective and trivial predictors: " + ", ".join(
        f"{k} {v:.4f}" for k, v in sorted(result["pretraining_loss"].items())))
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "last": last,
                                         "probe": result}, indent=1, default=str))


if __name__ == "__main__":
    main()
