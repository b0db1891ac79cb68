"""Guards of a training step: a non-finite loss or gradient stops the run cleanly."""

from __future__ import annotations

import math

import torch

from npfm.events.errors import NpfmError


def require_finite(value: float | torch.Tensor, what: str, where: str, step: int) -> None:
    """Raise a one-line NpfmError if ``value`` (a loss or gradient norm) is NaN or inf.

    Raised before the optimiser step, so nothing non-finite reaches the weights or a
    checkpoint.
    """
    number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if not math.isfinite(number):
        raise NpfmError(f"{where} step {step}", f"non-finite {what} ({number})",
                        "check the inputs with npfm validate, then lower lr or grad_clip; "
                        "no checkpoint was written for this step")
