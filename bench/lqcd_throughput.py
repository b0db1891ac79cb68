"""Lattice QCD throughput: heat-bath link updates/s and Wilson-Dirac applications/s.

Usage: .venv/bin/python bench/lqcd_throughput.py [--lattice 8] [--threads 1] [--repeat 5]

Heat-bath: one quenched sweep (1 Cabibbo-Marinari heat-bath pass, no over-relaxation) at
beta = 6.0 updates 4 V links. Dirac: the full Wilson operator D psi, counted as 1320
flops per site for the hopping term plus 48 for the diagonal term (the customary count;
e.g. Chroma, QUDA), complex128 and complex64. Runs on the CPU, and on CUDA when present.

Hopping term, CPU, at 8^4 and 16^4: the previous kernel (full spinors, batched 3 x 3
matmuls), the torch kernel (WilsonDirac.hop_torch) and, when numba is installed, the
compiled one (WilsonDirac.hop with kernel="numba": npfm.lqcd.hopping, one thread, psi's
layout conversion in and out included; the links' layout is made once per operator,
before the timing) timed in alternation in one run; with the core's limit: the memory
bandwidth of a large numpy copy times the kernel's arithmetic intensity, 1320 flops per
8 x 18 (links) + 8 x 24 (neighbour spinors) + 24 (result) reals moved per site.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from npfm.lqcd import hopping
from npfm.lqcd.dirac import FLOPS_PER_SITE, WilsonDirac, gamma_matrices
from npfm.lqcd.ensemble import lattice_from_text
from npfm.lqcd.heatbath import link_updates_per_sweep, sweep
from npfm.lqcd.su3 import NDIM, random_field, shift

DIAGONAL_FLOPS = 48  # (4 + m) psi: 12 complex numbers times a real
REALS_PER_SITE = 8 * 18 + 8 * 24 + 24  # hopping term, no reuse of neighbours in cache


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


def previous_hop(dirac: WilsonDirac) -> Callable[[torch.Tensor], torch.Tensor]:
    """The hopping term as computed before spin projection: full 4-spinors, flattened
    batched 3 x 3 matmuls, gamma_mu as a permutation times phases."""
    links = dirac.links
    fwd_t = links.transpose(-1, -2).contiguous()
    bwd_t = torch.stack([shift(links[mu], mu, -1).conj() for mu in range(NDIM)])
    g = gamma_matrices(links.dtype).to(links.device)[:4]
    perm = g.abs().argmax(dim=-1)
    phase = torch.gather(g, 2, perm[..., None])

    def colour(link_t: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        n = link_t[..., 0, 0].numel()
        return (psi.reshape(n, -1, 3) @ link_t.reshape(n, 3, 3)).reshape(psi.shape)

    def hop(psi: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(psi)
        gamma_part = torch.zeros_like(psi)
        for mu in range(NDIM):
            fwd = colour(fwd_t[mu], shift(psi, mu, 1))
            bwd = colour(bwd_t[mu], shift(psi, mu, -1))
            total = total + fwd + bwd
            gamma_part = gamma_part + (fwd - bwd)[..., perm[mu], :] * phase[mu]
        return -0.5 * (total - gamma_part)

    return hop


def copy_bandwidth(repeat: int) -> float:
    """Bytes read + written per second by a 512 MiB numpy copy (best of ``repeat``)."""
    src = np.ones(1 << 26)
    dst = np.empty_like(src)
    seconds = best_seconds(lambda: np.copyto(dst, src), repeat, "cpu")
    return 2 * src.nbytes / seconds


def best_interleaved(funcs: dict[str, Callable[[], object]], repeat: int
                     ) -> dict[str, float]:
    """Fastest seconds of each function over ``repeat`` rounds that call each once in
    turn (after one warm-up round), so a change of load hits all of them alike."""
    best = dict.fromkeys(funcs, float("inf"))
    for round_ in range(repeat + 1):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def compare_hop(sizes: tuple[int, ...], repeat: int) -> None:
    """Previous, torch and compiled hopping terms side by side, beside the bandwidth limit."""
    bandwidth = copy_bandwidth(repeat)
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (numpy, 512 MiB, read + write)")
    if hopping.AVAILABLE:
        import numba  # present only with the extra npfm[fast]

        print(f"numba {numba.__version__}: compiled kernel on 1 thread")
    else:
        print("numba not installed: compiled kernel not measured")
    gen = torch.Generator().manual_seed(2)
    for size in sizes:
        for dtype in (torch.complex128, torch.complex64):
            u = random_field((size,) * 4, gen, dtype=dtype)
            psi = torch.randn((*u.shape[1:5], 4, 3), dtype=dtype, generator=gen)
            dirac = WilsonDirac(u, 0.1)
            kernels = {"previous": previous_hop(dirac), "torch": dirac.hop_torch}
            if hopping.AVAILABLE:
                kernels["numba"] = WilsonDirac(u, 0.1, kernel="numba").hop
            reference = kernels["previous"](psi)
            seconds = best_interleaved({name: partial(hop, psi)
                                        for name, hop in kernels.items()}, repeat)
            flops = FLOPS_PER_SITE * size**4
            before = flops / seconds["previous"] / 1e9
            intensity = FLOPS_PER_SITE / (REALS_PER_SITE * psi.element_size() / 2)
            label = f"cpu {size}^4 {str(dtype)[6:]}"
            print(f"{label}: limit {bandwidth * intensity / 1e9:.1f} GFLOP/s "
                  f"({intensity:.2f} flop/byte)")
            for name, hop in kernels.items():
                rate = flops / seconds[name] / 1e9
                diff = (hop(psi) - reference).abs().max().item()
                print(f"{label}: hop {name} {rate:.2f} GFLOP/s ({rate / before:.1f}x "
                      f"previous), max |difference| {diff:.1e}")


def run(lattice: tuple[int, int, int, int], device: str, repeat: int) -> None:
    gen = torch.Generator(device=device).manual_seed(1)
    volume = lattice[0] * lattice[1] * lattice[2] * lattice[3]
    dims = "x".join(map(str, lattice))
    for dtype in (torch.complex128, torch.complex64):
        u = random_field(lattice, gen, dtype=dtype, device=device)
        seconds = best_seconds(partial(sweep, u, 6.0, gen, n_or=0), repeat, device)
        rate = link_updates_per_sweep(u) / seconds
        print(f"{device} {dims} {str(dtype)[6:]}: heat-bath {rate:,.0f} link updates/s "
              f"({seconds * 1e3:.1f} ms/sweep)")
        dirac = WilsonDirac(u, 0.1)
        psi = torch.randn((*u.shape[1:5], 4, 3), dtype=dtype, device=device, generator=gen)
        seconds = best_seconds(partial(dirac, psi), repeat, device)
        gflops = (FLOPS_PER_SITE + DIAGONAL_FLOPS) * volume / seconds / 1e9
        print(f"{device} {dims} {str(dtype)[6:]} ({dirac.backend(psi)} hopping term): "
              f"Wilson-Dirac {1 / seconds:,.1f} "
              f"applications/s, {gflops:.2f} GFLOP/s ({seconds * 1e3:.2f} ms each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lattice", default="8", help="LXxLYxLZxLT or L (default 8^4)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lattice = lattice_from_text(args.lattice)
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    compare_hop((8, 16), args.repeat)
    run(lattice, "cpu", args.repeat)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        run(lattice_from_text("16"), "cuda", args.repeat)
        run(lattice, "cuda", args.repeat)
    else:
        print("no CUDA device: GPU figures not measured")


if __name__ == "__main__":
    main()
