"""Pretraining configuration (YAML)::

    corpora: [{path: ../demo/mixed-sim}] # relative to this file; temperature-mixed;
                                         # optional subsystems: [TPC] keeps only those hits
    temperature: 2.0                     # domain sampling p_i ~ n_i^(1/T)
    backbone: mamba2                     # or attention
    size: tiny                           # model family name (npfm.model.family)
    order: raster                        # raster, hilbert, zorder, radial
    objective: masked                    # masked, knnn, knnn_leakfree, two_view (docs/model.md)
    k: 30
    batch_events: 8
    steps: 200
    lr: 2.0e-4                           # peak; cosine down to min_lr after warmup
    min_lr: 2.0e-5
    warmup: 20
    weight_decay: 0.1
    betas: [0.9, 0.95]
    grad_clip: 1.0
    seed: 1
    checkpoint_every: 50
    log_every: 1
    max_hits: 4000                       # events are cut to this many tokens (serialised)
    objects: true                        # events without hits get one token per object
    cells: false                         # calorimeter cells join each event's sequence
    parallel: ddp                        # under torchrun: ddp, or fsdp (sharded, large sizes)

Defaults follow FM4NPP's recipe (AdamW, betas (0.9, 0.95), weight decay 0.1, lr 2e-4 ->
2e-5 cosine with warmup), scaled down for the CPU; the objective defaults to masked-hit
modelling, which the probe preferred over kNNN at equal budget (docs/model.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from npfm.events.errors import NpfmError


@dataclass(frozen=True)
class PretrainConfig:
    corpora: tuple[dict[str, Any], ...]
    temperature: float = 2.0
    backbone: str = "mamba2"
    size: str = "tiny"
    order: str = "raster"
    objective: str = "masked"
    k: int = 30
    batch_events: int = 8
    steps: int = 200
    lr: float = 2.0e-4
    min_lr: float = 2.0e-5
    warmup: int = 20
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 1
    checkpoint_every: int = 50
    log_every: int = 1
    max_hits: int = 4000
    objects: bool = True
    cells: bool = False
    parallel: str = "ddp"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: Path | str, **overrides: Any) -> PretrainConfig:
    """Read a YAML config; unknown keys and bad values name the file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NpfmError(str(path), f"cannot be read ({exc})".replace("\n", " "),
                        "give a pretraining config YAML") from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = set(raw) - names
    if unknown:
        raise NpfmError(f"{path} {sorted(unknown)}", "unknown key(s)", f"use {sorted(names)}")
    if "corpora" not in raw or not raw["corpora"]:
        raise NpfmError(f"{path} corpora", "missing", "list at least one corpus: [{path: ...}]")
    corpora = tuple({"path": str(path.parent / c["path"]),  # relative to the config file
                     "name": c.get("name", Path(c["path"]).name),
                     **({"subsystems": list(c["subsystems"])} if c.get("subsystems") else {})}
                    for c in raw.pop("corpora"))
    if "betas" in raw:
        raw["betas"] = tuple(raw["betas"])
    config = PretrainConfig(corpora=corpora, **raw)
    for key in ("steps", "batch_events", "k", "checkpoint_every", "max_hits"):
        if getattr(config, key) < 1:
            raise NpfmError(f"{path} {key}", f"{getattr(config, key)} must be >= 1", "fix it")
    if config.objective not in ("knnn", "knnn_leakfree", "masked", "two_view"):
        raise NpfmError(f"{path} objective", f"unknown objective {config.objective!r}",
                        "use masked, knnn, knnn_leakfree or two_view")
    if config.parallel not in ("ddp", "fsdp"):
        raise NpfmError(f"{path} parallel", f"unknown mode {config.parallel!r}",
                        "use ddp or fsdp")
    for key in ("objects", "cells"):
        if not isinstance(getattr(config, key), bool):
            raise NpfmError(f"{path} {key}", f"{getattr(config, key)!r} is not true or false",
                            f"write {key}: true or {key}: false")
    return config


#: Keys a resumed run may change without ``--allow-config-change`` (length and logging).
RESUMABLE = frozenset({"steps", "checkpoint_every", "log_every"})
#: Key of the checkpoint's config.json that lists the configs of earlier steps.
HISTORY = "history"


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config as plain JSON with corpus paths resolved (the same corpus, however named)."""
    plain = json.loads(json.dumps(config, default=str))
    plain.pop(HISTORY, None)
    for corpus in plain.get("corpora", []):
        corpus["path"] = str(Path(corpus["path"]).resolve())
    return {k: v for k, v in plain.items() if k not in RESUMABLE}


def resumed_config(saved: dict[str, Any], config: PretrainConfig, step: int, where: str,
                   allow_change: bool) -> dict[str, Any]:
    """The config to record for a run resumed at ``step`` from a checkpoint whose
    config.json is ``saved``: refused if it changed (beyond ``RESUMABLE``) unless
    ``allow_change``; then the earlier config is kept in ``history`` with its steps."""
    old, new = _comparable(saved), _comparable(config.as_dict())
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    history = list(saved.get(HISTORY, []))
    if changed and not allow_change:
        raise NpfmError(where, f"resuming at step {step} with a changed config "
                        f"({', '.join(changed)})", "use the run's config, a new --out "
                        "directory, or --allow-config-change to record both")
    if changed:
        earlier = {k: v for k, v in saved.items() if k != HISTORY}
        history.append({"until_step": step, "changed": changed, "config": earlier})
    return {**config.as_dict(), **({HISTORY: history} if history else {})}
