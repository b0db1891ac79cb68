"""Lattice QCD throughput: heat-bath link updates/s and Wilson-Dirac applications/s.

Usage: .venv/bin/python bench/lqcd_throughput.py [--lattice 8] [--threads 2] [--repeat 5]

Heat-bath: one quenched sweep (1 Cabibbo-Marinari heat-bath pass, no over-relaxation) at
beta = 6.0 updates 4 V links. Dirac: the full Wilson operator D psi, counted as 1320
flops per site for the hopping term plus 48 for the diagonal term (the customary count;
e.g. Chroma, QUDA), complex128 and complex64. Runs on the CPU, and on CUDA when present.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from npfm.lqcd.dirac import FLOPS_PER_SITE, WilsonDirac
from npfm.lqcd.ensemble import lattice_from_text
from npfm.lqcd.heatbath import link_updates_per_sweep, sweep
from npfm.lqcd.su3 import random_field

DIAGONAL_FLOPS = 48  # (4 + m) psi: 12 complex numbers times a real


def best_seconds(func: Callable[[], object], repeat: int, device: str) -> float:
    """Fastest of ``repeat`` timed calls after one warm-up call."""
    func()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        func()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def run(lattice: tuple[int, int, int, int], device: str, repeat: int) -> None:
    gen = torch.Generator(device=device).manual_seed(1)
    volume = lattice[0] * lattice[1] * lattice[2] * lattice[3]
    dims = "x".join(map(str, lattice))
    for dtype in (torch.complex128, torch.complex64):
        u = random_field(lattice, gen, dtype=dtype, device=device)
        seconds = best_seconds(lambda u=u: sweep(u, 6.0, gen, n_or=0), repeat, device)
        rate = link_updates_per_sweep(u) / seconds
        print(f"{device} {dims} {str(dtype)[6:]}: heat-bath {rate:,.0f} link updates/s "
              f"({seconds * 1e3:.1f} ms/sweep)")
        dirac = WilsonDirac(u, 0.1)
        psi = torch.randn((*u.shape[1:5], 4, 3), dtype=dtype, device=device, generator=gen)
        seconds = best_seconds(lambda d=dirac, p=psi: d(p), repeat, device)
        gflops = (FLOPS_PER_SITE + DIAGONAL_FLOPS) * volume / seconds / 1e9
        print(f"{device} {dims} {str(dtype)[6:]}: Wilson-Dirac {1 / seconds:,.1f} "
              f"applications/s, {gflops:.2f} GFLOP/s ({seconds * 1e3:.2f} ms each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lattice", default="8", help="LXxLYxLZxLT or L (default 8^4)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lattice = lattice_from_text(args.lattice)
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s)")
    run(lattice, "cpu", args.repeat)
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        run(lattice_from_text("16"), "cuda", args.repeat)
        run(lattice, "cuda", args.repeat)
    else:
        print("no CUDA device: GPU figures not measured")


if __name__ == "__main__":
    main()
