"""Caches of text embeddings: on disk (encode each (encoder, mode, prompt) once, ever) and in memory (the
last prompts of a warm process, the unconditional one above all).

On disk: one safetensors file per prompt, named by the sha256 of (``conditioner.cache_key``, mode, prompt) and
stored under a two-character fan-out folder. Files are written to a temporary name and renamed into
place, so readers never see a partial file and concurrent writers of the same prompt are harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fluxmusic.text.base import TextConditioner, TextEmbedding

__all__ = ["CachedConditioner", "EmbeddingCache", "EmbeddingMemo"]

logger = logging.getLogger(__name__)


class EmbeddingCache:
    """A folder of cached ``TextEmbedding`` rows, keyed by (cache_key, mode, prompt).

    Args:
        directory: Cache folder (created on first write).

    Shapes:
        get/put: one prompt's embedding, batch size 1: txt (1, L, D), txt_mask (1, L), y (1, Dy).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(cache_key: str, mode: str, prompt: str) -> str:
        """sha256 hex digest naming the entry."""
        return hashlib.sha256(json.dumps([cache_key, mode, prompt]).encode("utf-8")).hexdigest()

    def path(self, cache_key: str, mode: str, prompt: str) -> Path:
        """File an entry lives in."""
        key = self.key(cache_key, mode, prompt)
        return self.directory / key[:2] / f"{key}.safetensors"

    def get(self, cache_key: str, mode: str, prompt: str) -> TextEmbedding | None:
        """The cached embedding (on CPU), or ``None`` if absent, unreadable or for another prompt."""
        path = self.path(cache_key, mode, prompt)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                if [meta.get("cache_key"), meta.get("mode"), meta.get("prompt")] != [cache_key, mode, prompt]:
                    logger.warning("cache entry %s belongs to another key; ignoring it", path)
                    return None
                return TextEmbedding(
                    handle.get_tensor("txt"), handle.get_tensor("txt_mask"), handle.get_tensor("y")
                )
        except Exception as err:  # corrupt or truncated file from an older writer
            logger.warning("unreadable cache entry %s (%s); re-encoding", path, err)
            return None

    def put(self, cache_key: str, mode: str, prompt: str, embedding: TextEmbedding) -> Path:
        """Write one prompt's embedding atomically; returns its path."""
        if len(embedding) != 1:
            raise ValueError(f"EmbeddingCache.put takes one prompt's embedding, got batch {len(embedding)}")
        path = self.path(cache_key, mode, prompt)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "txt": embedding.txt.detach().cpu().clone(),
            "txt_mask": embedding.txt_mask.detach().cpu().clone(),
            "y": embedding.y.detach().cpu().clone(),
        }
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            save_file(tensors, str(tmp), metadata={"cache_key": cache_key, "mode": mode, "prompt": prompt})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _delegated(name: str) -> Any:
    """A read-only property answering with the wrapped conditioner's attribute ``name``."""
    return property(lambda self: getattr(self.conditioner, name), doc=f"The wrapped conditioner's {name}.")


class CachedConditioner(TextConditioner):
    """Wraps a conditioner: prompts found in ``cache`` are read back, only the rest are encoded.

    Results equal the wrapped conditioner's (cached tensors are stored exactly, in its output dtype).
    ``hits`` and ``misses`` count prompts served from / added to the cache.

    Args:
        conditioner: The conditioner that encodes cache misses.
        cache: Where embeddings are stored.

    Shapes:
        encode: B prompts -> as the wrapped conditioner, on its device.
    """

    def __init__(self, conditioner: TextConditioner, cache: EmbeddingCache) -> None:
        self.conditioner = conditioner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    def encode(self, prompts: list[str]) -> TextEmbedding:
        key, mode = self.conditioner.cache_key, self.conditioner.mode
        found: dict[str, TextEmbedding] = {}
        for prompt in dict.fromkeys(prompts):
            cached = self.cache.get(key, mode, prompt)
            if cached is not None:
                found[prompt] = cached
        self.hits += len(found)
        todo = [prompt for prompt in dict.fromkeys(prompts) if prompt not in found]
        if todo:
            fresh = self.conditioner.encode(todo)
            for row, prompt in enumerate(todo):
                found[prompt] = fresh[row].to("cpu")
                self.cache.put(key, mode, prompt, found[prompt])
            self.misses += len(todo)
        logger.debug("text cache: %d prompts, %d encoded", len(prompts), len(todo))
        return TextEmbedding.cat([found[prompt] for prompt in prompts]).to(self.device)

    txt_dim = _delegated("txt_dim")
    pooled_dim = _delegated("pooled_dim")
    cache_key = _delegated("cache_key")
    mode = _delegated("mode")
    device = _delegated("device")

    def release(self) -> None:
        self.conditioner.release()

    def to(self, device: torch.device | str) -> CachedConditioner:
        self.conditioner.to(device)
        return self


class EmbeddingMemo:
    """The embeddings of the last ``size`` prompts of one conditioner, in memory.

    Every prompt is encoded on its own (batch 1), so its embedding never depends on which prompts came with
    it or before it: a warm process (the server, a long prompt file) gives the clip a fresh process gives,
    and the unconditional prompt, the same on every call, is encoded once. Changing the conditioner (another
    object) empties the memo. ``hits`` and ``misses`` count prompts served from / added to it.

    Args:
        size: How many prompts to keep (least recently used dropped first); 0 keeps none.

    Shapes:
        encode: B prompts -> TextEmbedding with B rows, on the conditioner's device.
    """

    def __init__(self, size: int = 16) -> None:
        if size < 0:
            raise ValueError(f"EmbeddingMemo size must be >= 0, got {size}")
        self.size = size
        self.entries: OrderedDict[str, TextEmbedding] = OrderedDict()
        self.owner: TextConditioner | None = None
        self.hits = 0
        self.misses = 0

    def encode(self, conditioner: TextConditioner, prompts: list[str]) -> TextEmbedding:
        """Each prompt's embedding, from the memo or encoded alone."""
        if self.owner is not conditioner:
            self.entries.clear()
            self.owner = conditioner
        rows: dict[str, TextEmbedding] = {}
        for prompt in dict.fromkeys(prompts):
            if prompt in self.entries:
                self.entries.move_to_end(prompt)
                rows[prompt] = self.entries[prompt]
                self.hits += 1
                continue
            rows[prompt] = conditioner.encode([prompt])
            self.misses += 1
            if self.size:
                self.entries[prompt] = rows[prompt]
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        return TextEmbedding.cat([rows[prompt] for prompt in prompts])
