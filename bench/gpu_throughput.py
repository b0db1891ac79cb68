"""bf16 forward + backward throughput and peak memory of the Mamba-2 family on one GPU.

    python3 bench/gpu_throughput.py [--models m3 m4 m5] [--tokens 32768] [--events 8]
    python3 bench/gpu_throughput.py --device cpu --models tiny --tokens 512   # smoke test

Measured side by side in one run: first the device's dense bf16 matrix-product peak
(an n x n x n product, mean of ``--repeat`` after three warm-ups), then, per model, one
packed batch of ``--events`` events of ``--tokens`` tokens in all, forward + backward of the
sum of the last layer under bf16 autocast, with the Triton scan (if mamba_ssm's kernel
imports) and with the pure-PyTorch scan. Model FLOPs count the linear layers only,
6 x (linear parameters) x tokens (forward 2, backward 4): a lower bound on the work done,
since the SSD scan and the convolution are left out. Prints tokens/s, TFLOP/s, its share
of the measured peak and the peak memory (GiB) of each setting.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from npfm.model.family import FAMILY, build_backbone
from npfm.model.mamba2 import FAST_SCAN


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeat: int, warmup: int = 3
          ) -> float:
    """Mean wall time (s) of ``fn`` over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeat


def matmul_peak(device: torch.device, n: int, repeat: int) -> float:
    """Dense bf16 matrix-product rate (TFLOP/s) of an n x n x n product."""
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    seconds = timed(lambda: a @ b, device, repeat)
    return 2 * n ** 3 / seconds / 1e12


def linear_parameters(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def step_rate(name: str, device: torch.device, tokens: int, events: int, repeat: int,
              fast: bool) -> dict[str, float]:
    """Forward + backward of one packed batch: seconds, tokens/s, model TFLOP/s, memory."""
    model = build_backbone(name, device=device)
    model.set_fast_path(fast)
    width = FAMILY[name].width
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(tokens, width, device=device, generator=gen)
    cu = torch.linspace(0, tokens, events + 1, device=device).round().to(torch.int32)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x, cu)[-1]
        out.float().sum().backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timed(step, device, repeat)
    memory = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else 0
    flops = 6 * linear_parameters(model) * tokens
    return {"seconds": seconds, "tokens_per_s": tokens / seconds,
            "tflops": flops / seconds / 1e12, "peak_memory_gib": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["m3", "m4", "m5"])
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--events", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--matmul", type=int, default=8192)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device, args.matmul, args.repeat)
    print(f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; "
          f"bf16 {args.matmul}^3 matrix product: {peak:.1f} TFLOP/s (the peak below)")
    print(f"Triton scan kernel: {'imported' if FAST_SCAN is not None else 'absent'}")
    print(f"{'model':6} {'scan':7} {'tokens/s':>12} {'TFLOP/s':>8} {'of peak':>8} {'GiB':>7}")
    rows = []
    scans = [True, False] if FAST_SCAN is not None and device.type == "cuda" else [False]
    for name in args.models:
        for fast in scans:
            r = step_rate(name, device, args.tokens, args.events, args.repeat, fast)
            rows.append({"model": name, "scan": "triton" if fast else "pure", **r,
                         "share_of_peak": r["tflops"] / peak})
            print(f"{name:6} {rows[-1]['scan']:7} {r['tokens_per_s']:12,.0f} "
                  f"{r['tflops']:8.2f} {r['tflops'] / peak:8.3f} {r['peak_memory_gib']:7.2f}")
    if args.json:
        args.json.write_text(json.dumps({"matmul_tflops": peak, "tokens": args.tokens,
                                         "events": args.events, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
