"""Multi-domain batching: temperature-weighted sampling across corpora or detectors.

Domain i with n_i examples is drawn with probability p_i = n_i^(1/T) / sum_j n_j^(1/T):
T = 1 is proportional to size, T -> inf (``math.inf``) is uniform, T < 1 favours large
domains further.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

import numpy as np

B = TypeVar("B")


class TemperatureSampler:
    """Infinite, seeded stream of domain names drawn i.i.d. with ``probabilities``.

    Every ``iter()`` restarts the same stream (same seed, same sequence).
    """

    def __init__(self, sizes: dict[str, int], temperature: float = 1.0, seed: int = 0,
                 chunk: int = 4096) -> None:
        if not sizes or any(n <= 0 for n in sizes.values()):
            raise ValueError(f"sizes must be non-empty and positive, got {sizes}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.names = list(sizes)
        self.temperature, self.seed, self.chunk = temperature, seed, chunk
        logits = np.log(np.array([sizes[name] for name in self.names], dtype=np.float64))
        logits = logits / temperature if math.isfinite(temperature) else np.zeros_like(logits)
        weights = np.exp(logits - logits.max())
        self.p = weights / weights.sum()

    @property
    def probabilities(self) -> dict[str, float]:
        """Sampling probability of each domain (sums to 1)."""
        return {name: float(p) for name, p in zip(self.names, self.p, strict=True)}

    def __iter__(self) -> Iterator[str]:
        rng = np.random.default_rng(self.seed)
        while True:
            for i in rng.choice(len(self.names), size=self.chunk, p=self.p):
                yield self.names[i]


def mix(loaders: Mapping[str, Iterable[B]], sampler: Iterable[str]) -> Iterator[tuple[str, B]]:
    """Infinite stream of ``(domain, batch)``: the next batch of the domain ``sampler`` names.

    An exhausted loader is restarted with ``iter()`` (a new epoch), so training can run
    for any number of steps; stop by taking a fixed number of items. A loader that yields
    nothing right after a restart raises ``ValueError``.
    """
    iterators: dict[str, Iterator[B]] = {}
    end = object()
    for name in sampler:
        if name not in loaders:
            raise KeyError(f"sampler drew {name!r}, which has no loader")
        batch = next(iterators[name], end) if name in iterators else end
        if batch is end:
            iterators[name] = iter(loaders[name])
            batch = next(iterators[name], end)
            if batch is end:
                raise ValueError(f"loader {name!r} is empty")
        yield name, batch  # type: ignore[misc]
