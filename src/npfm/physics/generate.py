"""Entry point: ``generate(config_name, n_events, seed, **options)``.

Options common to every configuration: ``pileup_mean`` (Poisson mean of extra collisions
per event), ``pileup_config`` (the configuration they come from, with its defaults),
``vertex_sigma_x/y/z`` (cm) and ``vertex_sigma_t`` (ns), the Gaussian beam spot applied to
each collision. See ``config_options(name)`` for the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from npfm.physics.configs import PYTHIA_CONFIGS, PythiaConfig
from npfm.physics.fixed_target import FIXED_TARGET_CONFIGS
from npfm.physics.gun import GunConfig
from npfm.physics.heavy_ion import HEAVY_ION_CONFIGS
from npfm.physics.overlay import BeamSpot, with_pileup
from npfm.physics.pythia_source import check_seed, derived_seed
from npfm.physics.record import GeneratedEvent

CONFIGS: Mapping[str, PythiaConfig | GunConfig] = MappingProxyType(
    {**PYTHIA_CONFIGS, **HEAVY_ION_CONFIGS, **FIXED_TARGET_CONFIGS, "gun": GunConfig()})
COMMON_OPTIONS: Mapping[str, Any] = MappingProxyType({
    "pileup_mean": 0.0, "pileup_config": "pp200", "vertex_sigma_x": 0.0,
    "vertex_sigma_y": 0.0, "vertex_sigma_z": 0.0, "vertex_sigma_t": 0.0,
})
_SIGMAS = ("vertex_sigma_x", "vertex_sigma_y", "vertex_sigma_z", "vertex_sigma_t")
# Independent random streams derived from the user's seed.
_STREAM_OVERLAY, _STREAM_PILEUP = 1, 2


def list_configs() -> dict[str, str]:
    """Configuration name -> one-line description."""
    return {name: config.description for name, config in CONFIGS.items()}


def _config(name: str) -> PythiaConfig | GunConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; valid: {sorted(CONFIGS)}")
    return CONFIGS[name]


def default_shard_events(name: str) -> int:
    """Events per shard that ``npfm simulate`` writes for configuration ``name`` unless
    told otherwise (small for heavy ions, whose events hold 10^5-10^6 hits)."""
    return _config(name).shard_events


def config_options(name: str) -> dict[str, Any]:
    """All options of configuration ``name`` with their defaults."""
    return {**COMMON_OPTIONS, **_config(name).defaults()}


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not value >= 0:
        raise ValueError(f"option {name} must be a non-negative number, got {value!r}")
    return float(value)


def resolve_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of configuration ``name`` updated by ``options``, validated."""
    defaults = config_options(name)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for configuration {name!r}; "
                         f"valid: {sorted(defaults)}")
    resolved = _config(name).check({**defaults, **options})
    for key in ("pileup_mean", *_SIGMAS):
        resolved[key] = _non_negative(key, resolved[key])
    if resolved["pileup_config"] not in CONFIGS:
        raise ValueError(f"option pileup_config = {resolved['pileup_config']!r} is not a "
                         f"configuration; valid: {sorted(CONFIGS)}")
    return resolved


def generate(config_name: str, n_events: int, seed: int,
             **options: Any) -> Iterator[GeneratedEvent]:
    """``n_events`` events of a named configuration; identical for identical arguments.

    ``seed`` is in [1, 900_000_000]. Arguments are validated here (``ValueError``); the
    generator is started on the first ``next()``.
    """
    resolved = resolve_options(config_name, options)
    seed = check_seed(seed)
    if isinstance(n_events, bool) or not isinstance(n_events, int) or n_events < 0:
        raise ValueError(f"n_events must be a non-negative integer, got {n_events!r}")
    return _generate(_config(config_name), n_events, seed, resolved)


def _generate(config: PythiaConfig | GunConfig, n_events: int, seed: int,
              options: dict[str, Any]) -> Iterator[GeneratedEvent]:
    if n_events == 0:
        return
    pileup = None
    if options["pileup_mean"] > 0:
        name = options["pileup_config"]
        pileup = _config(name).source(derived_seed(seed, _STREAM_PILEUP),
                                      resolve_options(name, {}))
    beam_spot = BeamSpot(*(options[key] for key in _SIGMAS))
    rng = np.random.default_rng(derived_seed(seed, _STREAM_OVERLAY))
    events = with_pileup(config.source(seed, options), pileup, options["pileup_mean"],
                         beam_spot, rng)
    yield from itertools.islice(events, n_events)
