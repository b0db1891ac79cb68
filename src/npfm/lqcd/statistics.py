"""Errors of Markov-chain averages: integrated autocorrelation time and binning.

tau_int follows the automatic windowing of Madras and Sokal (J. Stat. Phys. 50 (1988)
109) as used by Wolff (Comput. Phys. Commun. 156 (2004) 143, "Monte Carlo errors with
less errors"): the window W is the first one with W >= c * tau_int(W), c = 6. The error
of the mean is sqrt(2 tau_int var / N). Times are in units of the series' spacing
(sweeps for a per-sweep history).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

WINDOW_FACTOR = 6.0


@dataclass(frozen=True)
class ChainEstimate:
    """Mean of a Markov chain with its autocorrelation-corrected and binned errors."""

    mean: float
    error: float  # sqrt(2 tau_int var / N)
    tau_int: float  # integrated autocorrelation time (0.5 for independent samples)
    tau_int_error: float  # Madras-Sokal estimate of tau_int's own error
    window: int
    n: int
    binned_error: float  # naive error of block means, blocks of about 4 tau_int + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def autocorrelation(series: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation function rho(t), t = 0 .. N-1 (via FFT)."""
    x = np.asarray(series, dtype=np.float64) - np.mean(series)
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / np.arange(n, 0, -1)
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def tau_int(series: np.ndarray) -> tuple[float, int]:
    """Integrated autocorrelation time and its automatic window."""
    rho = autocorrelation(series)
    tau = 0.5
    for window in range(1, len(rho)):
        tau += rho[window]
        if window >= WINDOW_FACTOR * tau:
            return float(tau), window
    return float(tau), len(rho) - 1


def binned_error(series: np.ndarray, block: int) -> float:
    """Standard error of the mean from means of consecutive blocks of ``block`` entries."""
    x = np.asarray(series, dtype=np.float64)
    n_blocks = len(x) // block
    if n_blocks < 2:
        return float("nan")
    means = x[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(n_blocks))


def estimate(series: np.ndarray | list[float]) -> ChainEstimate:
    """Mean and errors of an equilibrated chain (at least 4 entries)."""
    x = np.asarray(series, dtype=np.float64)
    n = len(x)
    if n < 4:
        raise ValueError(f"need at least 4 measurements for an error, got {n}")
    tau, window = tau_int(x)
    tau = max(tau, 0.5)
    variance = float(np.var(x, ddof=1))
    error = float(np.sqrt(2 * tau * variance / n))
    tau_error = float(tau * np.sqrt(2 * (2 * window + 1) / n))
    block = max(1, int(np.ceil(4 * tau)) + 1)
    return ChainEstimate(mean=float(x.mean()), error=error, tau_int=tau,
                         tau_int_error=tau_error, window=window, n=n,
                         binned_error=binned_error(x, block))
