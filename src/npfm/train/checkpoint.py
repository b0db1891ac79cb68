"""Atomic checkpoints: ``<run>/checkpoints/step-NNNNNNN/`` holds ``model.safetensors``
(weights), ``config.json`` and ``state.pt`` (optimiser, step, RNG states); ``latest``
names the newest complete one. A checkpoint is written into a temporary directory and
renamed into place, and ``latest`` is replaced atomically, so a kill at any moment
leaves the previous checkpoint intact."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_bytes


def save(run_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         config: dict[str, Any], extra: dict[str, Any], keep: int = 2, *,
         weights: dict[str, torch.Tensor] | None = None,
         optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write checkpoint ``step`` and point ``latest`` at it; keeps the newest ``keep``.

    ``weights`` and ``optimizer_state`` replace ``model.state_dict()`` and
    ``optimizer.state_dict()`` where given (full states gathered from a sharded model,
    ``npfm.train.parallel.full_state``).
    """
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        tensors = model.state_dict() if weights is None else weights
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                  str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str))
        (tmp / GEOMETRIES_FILE).write_text(json.dumps(_geometries(model)))
        optim = optimizer.state_dict() if optimizer_state is None else optimizer_state
        torch.save({"step": step, "optimizer": optim, **extra},
                   tmp / "state.pt")
        for path in tmp.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_bytes(root / "latest", final.name.encode())
    for old in sorted(p for p in root.glob("step-*") if p != final)[:-max(keep - 1, 0) or None]:
        shutil.rmtree(old, ignore_errors=True)
    for stray in root.glob(".tmp-*"):
        shutil.rmtree(stray, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not (path / "state.pt").exists():
        raise NpfmError(str(pointer), f"points at {path.name}, which is incomplete",
                        "delete the run directory's checkpoints/latest to start over")
    return path


def load(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
         ) -> dict[str, Any]:
    """Load weights (and optimiser state) from a checkpoint; returns the saved state."""
    try:
        weights = load_file(str(path / "model.safetensors"))
        weights = remap_geometries(weights, model, saved_geometries(path))
        model.load_state_dict(grow_vocabularies(weights, model.state_dict()))
        state: dict[str, Any] = torch.load(path / "state.pt", weights_only=False)
    except (OSError, RuntimeError) as exc:
        raise NpfmError(str(path), f"checkpoint cannot be loaded ({exc})".replace("\n", " "),
                        "use a checkpoint written by this model configuration") from None
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state


#: Embedding tables indexed by an append-only vocabulary (npfm/events/vocabulary.yaml),
#: with one last row for unknown or missing names.
VOCABULARY_TABLES = ("subsystem.weight", "object_type.weight")


def grow_vocabularies(saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
    """Weights of a run trained before names were appended to a vocabulary, fitted to
    today's tables: the known names keep their rows, the unknown-name row moves to the
    end, and the new names keep this model's initial rows. On the old names the model
    computes exactly what it did."""
    out = dict(saved)
    for key, old in saved.items():
        new = current.get(key)
        if (not key.endswith(VOCABULARY_TABLES) or new is None or old.ndim != 2
                or old.shape[1] != new.shape[1] or old.shape[0] >= new.shape[0]):
            continue
        grown = new.detach().clone().to(old.dtype)
        grown[:old.shape[0] - 1] = old[:-1]
        grown[-1] = old[-1]
        out[key] = grown
    return out


#: The detector-embedding rows of a checkpoint follow the geometry names it records in
#: this file; checkpoints written before it existed used ``LEGACY_GEOMETRIES``, the
#: geometries shipped then, in that order.
GEOMETRIES_FILE = "geometries.json"
LEGACY_GEOMETRIES = ("aleph", "alice", "delphi", "epic", "opal", "sphenix", "zeus")
_DETECTOR_TABLE = "context.detector.weight"


def _geometries(model: torch.nn.Module) -> list[str]:
    """Geometry names indexing the model's detector embeddings (one list per model)."""
    names = {tuple(g) for m in model.modules()
             if isinstance(g := getattr(m, "geometries", None), list)}
    return list(next(iter(names))) if len(names) == 1 else []


def saved_geometries(path: Path) -> list[str]:
    """Geometry names of a checkpoint's detector embeddings, in row order."""
    file = path / GEOMETRIES_FILE
    return json.loads(file.read_text()) if file.exists() else list(LEGACY_GEOMETRIES)


def remap_geometries(saved: dict[str, torch.Tensor], model: torch.nn.Module,
                     names: list[str]) -> dict[str, torch.Tensor]:
    """Detector-embedding rows moved from the checkpoint's geometry order (``names``) to
    the model's: each known geometry keeps its row, the last ("other") row stays last and
    geometries the checkpoint never saw keep this model's initial rows."""
    current = _geometries(model)
    if not current or current == names:
        return saved
    state = model.state_dict()
    out = dict(saved)
    for key, old in saved.items():
        if not key.endswith(_DETECTOR_TABLE) or key not in state \
                or old.shape[0] != len(names) + 1:
            continue
        rows = state[key].detach().clone().to(old.dtype)
        for i, name in enumerate(current):
            if name in names:
                rows[i] = old[names.index(name)]
        rows[-1] = old[-1]
        out[key] = rows
    return out
