"""The GPU benchmark's measurements, run on the CPU with the tiny model."""

from __future__ import annotations

import torch
from bench.gpu_throughput import linear_parameters, matmul_peak, step_rate
from torch import nn

from npfm.model.family import build_backbone


def test_linear_parameters_count_the_projections() -> None:
    model = build_backbone("tiny")
    projections = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(projections) == 2 * 2  # in_proj and out_proj of each of 2 blocks
    assert linear_parameters(model) == sum(m.weight.numel() for m in projections)


def test_step_rate_reports_consistent_figures() -> None:
    cpu = torch.device("cpu")
    r = step_rate("tiny", cpu, tokens=256, events=4, repeat=1, fast=False)
    model_flops = 6 * linear_parameters(build_backbone("tiny")) * 256
    assert r["seconds"] > 0
    assert abs(r["tokens_per_s"] - 256 / r["seconds"]) < 1e-6 * r["tokens_per_s"]
    assert abs(r["tflops"] - model_flops / r["seconds"] / 1e12) < 1e-9
    assert r["peak_memory_gib"] == 0  # measured on CUDA only
    assert matmul_peak(cpu, 64, repeat=1) > 0
