"""Temperature-weighted domain sampling and cycling of loaders."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

from npfm.model.sampling import TemperatureSampler, mix

SIZES = {"tpc": 9000, "ilc": 900, "lep": 100}


def test_probabilities_follow_temperature() -> None:
    proportional = TemperatureSampler(SIZES, 1.0).probabilities
    assert proportional == pytest.approx({"tpc": 0.9, "ilc": 0.09, "lep": 0.01})
    sqrt = TemperatureSampler(SIZES, 2.0).probabilities
    total = sum(math.sqrt(n) for n in SIZES.values())
    assert sqrt == pytest.approx({k: math.sqrt(n) / total for k, n in SIZES.items()})
    assert TemperatureSampler(SIZES, math.inf).probabilities == pytest.approx(
        dict.fromkeys(SIZES, 1 / 3))
    large = TemperatureSampler(SIZES, 1e6).probabilities
    assert max(large.values()) - min(large.values()) < 1e-4


@pytest.mark.parametrize("temperature", [1.0, 3.0, math.inf])
def test_empirical_frequencies(temperature: float) -> None:
    sampler = TemperatureSampler(SIZES, temperature, seed=7)
    n = 20000
    counts = Counter(itertools.islice(sampler, n))
    for name, p in sampler.probabilities.items():
        # binomial count: |count - n p| < 5 sigma (false-failure chance ~ 1e-6 per check)
        assert abs(counts[name] - n * p) < 5 * math.sqrt(n * p * (1 - p))


def test_deterministic_per_seed() -> None:
    def draw(seed: int) -> list[str]:
        return list(itertools.islice(TemperatureSampler(SIZES, 2.0, seed=seed), 500))

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    sampler = TemperatureSampler(SIZES, 2.0, seed=1)
    assert list(itertools.islice(sampler, 500)) == list(itertools.islice(sampler, 500))


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        TemperatureSampler({"a": 0}, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        TemperatureSampler(SIZES, 0.0)


def test_mix_cycles_exhausted_loaders() -> None:
    loaders: dict[str, list[int | str]] = {"a": [1, 2, 3], "b": ["x"]}
    sampler = TemperatureSampler({"a": 3, "b": 1}, math.inf, seed=0)
    out = list(itertools.islice(mix(loaders, sampler), 50))
    names = list(itertools.islice(sampler, 50))
    assert [name for name, _ in out] == names
    a_batches = [batch for name, batch in out if name == "a"]
    assert a_batches == [1, 2, 3] * (len(a_batches) // 3) + [1, 2, 3][:len(a_batches) % 3]
    assert all(batch == "x" for name, batch in out if name == "b")


def test_mix_rejects_empty_and_unknown_loaders() -> None:
    with pytest.raises(ValueError, match="empty"):
        next(mix({"a": list[int]()}, TemperatureSampler({"a": 1}, 1.0)))
    with pytest.raises(KeyError, match="b"):
        next(mix({"a": [1]}, TemperatureSampler({"b": 1}, 1.0)))
