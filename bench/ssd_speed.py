"""Forward+backward speed of the chunked SSD scan vs the step-by-step recurrence, on CPU.

    .venv/bin/python bench/ssd_speed.py [--lengths 256 1024 4096] [--recurrent-max 1024]

Block size of FM4NPP's m1 (width 64): expand 2 -> d_inner 128 = 2 heads of headdim 64,
d_state 4, one group, batch 1, chunk_size 64, float32. Times x, dt, A, B, C -> y, final state,
then backward of their sum, best of --repeat. Prints tokens/s of each and the speed-up
(goal: >= 20x at L = 1024). The recurrence is skipped above --recurrent-max (too slow).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor

from npfm.model.ssd import ssd_chunked, ssd_recurrent

Scan = Callable[..., tuple[Tensor, Tensor]]


def _inputs(length: int, heads: int, headdim: int, d_state: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(1, length, heads, headdim, generator=gen).requires_grad_(),
        (torch.rand(1, length, heads, generator=gen) * 0.1).requires_grad_(),
        (-torch.rand(heads, generator=gen) * 8 - 1).requires_grad_(),
        torch.randn(1, length, 1, d_state, generator=gen).requires_grad_(),
        torch.randn(1, length, 1, d_state, generator=gen).requires_grad_(),
    ]


def time_scan(scan: Scan, inputs: list[Tensor], chunk_size: int, repeat: int) -> float:
    """Best wall time (s) of one forward+backward."""
    best = float("inf")
    for _ in range(repeat):
        for t in inputs:
            t.grad = None
        start = time.perf_counter()
        y, state = scan(*inputs, chunk_size)
        (y.sum() + state.sum()).backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--recurrent-max", type=int, default=1024)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    heads, headdim, d_state = 2, 64, 4
    print(f"CPU threads {torch.get_num_threads()}; heads {heads}, headdim {headdim}, "
          f"d_state {d_state}, batch 1, chunk {args.chunk_size}, float32, fwd+bwd")
    for length in args.lengths:
        inputs = _inputs(length, heads, headdim, d_state)
        t_chunk = time_scan(ssd_chunked, inputs, args.chunk_size, args.repeat)
        line = f"L={length:5d}  chunked {length / t_chunk:12,.0f} tok/s"
        if length <= args.recurrent_max:
            t_rec = time_scan(ssd_recurrent, inputs, args.chunk_size, max(1, args.repeat // 2))
            line += f"  recurrent {length / t_rec:10,.0f} tok/s  speed-up {t_rec / t_chunk:6.1f}x"
        else:
            line += "  recurrent skipped (too slow)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
