"""Forward+backward speed of the Mamba-2 and patch-attention backbones on CPU.

    .venv/bin/python bench/backbone_speed.py [--lengths 256 1024 4096] [--repeat 3] [--threads 1]

Mamba-2 ``m1`` (width 64, 12 layers) against attention ``a1`` (width 64, 12 layers, 4 heads,
patch_size 128, mlp_ratio 2). Input: one event of L tokens (cu_seqlens = [0, L]), float32.
One intra-op thread by default (steadier timings on a shared machine). Times forward, sum of
the last layer's output, backward (best of --repeat after one warm-up) and prints tokens/s,
parameter counts and time ratios of successive lengths, e.g. time(4096) / time(1024)
(~4 for linear cost).
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from torch import nn

from npfm.model.attention import build_attention
from npfm.model.family import build_backbone


def time_backbone(model: nn.Module, length: int, width: int, repeat: int) -> float:
    """Best wall time (s) of one forward+backward over one event of ``length`` tokens."""
    tokens = torch.randn(length, width, generator=torch.Generator().manual_seed(0))
    cu = torch.tensor([0, length])
    best = float("inf")
    for i in range(repeat + 1):
        model.zero_grad(set_to_none=True)
        x = tokens.clone().requires_grad_()
        start = time.perf_counter()
        model(x, cu)[-1].sum().backward()
        if i:  # the first run is a warm-up
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (0: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"mamba2 m1": build_backbone("m1"), "attention a1": build_attention("a1")}
    width = 64
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, one event")
    for name, model in models.items():
        print(f"{name:>14}: {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"{'L':>6} " + " ".join(f"{name + ' tok/s':>20}" for name in models))
    times: dict[str, dict[int, float]] = {name: {} for name in models}
    for length in args.lengths:
        row = []
        for name, model in models.items():
            times[name][length] = time_backbone(model, length, width, args.repeat)
            row.append(f"{length / times[name][length]:>20,.0f}")
        print(f"{length:>6} " + " ".join(row))
    for short, long in itertools.pairwise(args.lengths):
        ratios = ", ".join(f"{n} {times[n][long] / times[n][short]:.2f}" for n in models)
        print(f"time({long})/time({short}): {ratios}  (linear cost: {long / short:.0f})")


if __name__ == "__main__":
    main()
