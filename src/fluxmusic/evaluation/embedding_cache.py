"""On-disk cache of per-clip embeddings, keyed by backend, file content and settings.

Layout: ``ROOT/<backend key>/<file key>.npy``. The backend key hashes the backend's record (name,
checkpoint, sample rate, window, width) and its ``cache_token`` (weights' hash, decoder version); the
file key hashes the audio file's sha256 and the region read (offset, duration). Entries are plain
``.npy`` arrays read with ``allow_pickle=False`` and written atomically. Default root:
``$FLUXMUSIC_CACHE/embeddings``, else ``~/.cache/fluxmusic/embeddings``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fluxmusic.evaluation.embedders import Embedder

__all__ = ["EmbeddingCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$FLUXMUSIC_CACHE/embeddings`` or ``~/.cache/fluxmusic/embeddings``."""
    base = os.environ.get("FLUXMUSIC_CACHE")
    return (
        Path(base).expanduser() / "embeddings"
        if base
        else Path.home() / ".cache" / "fluxmusic" / "embeddings"
    )


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:24]


class EmbeddingCache:
    """Per-clip embeddings of one backend on disk.

    Args:
        root: The cache folder (created on the first write).
        embedder: The backend whose embeddings are stored.
    """

    def __init__(self, root: str | os.PathLike[str], embedder: Embedder) -> None:
        record = {**embedder.info.to_dict(), "token": embedder.cache_token}
        self.folder = Path(root).expanduser() / f"{embedder.name}-{_digest(record)}"
        self._hashes: dict[Path, str] = {}

    def key(self, path: Path, offset: float | None = None, duration: float | None = None) -> str:
        """The entry name of a file's region (its content hash and the region)."""
        from fluxmusic.files import sha256_file

        path = Path(path)
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path)
        return _digest({"sha256": self._hashes[path], "offset": offset, "duration": duration})

    def get(self, key: str) -> np.ndarray | None:
        """The stored embedding, or None. Shapes: -> (D,)."""
        entry = self.folder / f"{key}.npy"
        if not entry.is_file():
            return None
        try:
            return np.load(entry, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and replaced

    def put(self, key: str, value: np.ndarray) -> None:
        """Store one embedding atomically. Shapes: value (D,)."""
        from fluxmusic.files import atomic_write

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(value, dtype=np.float32), allow_pickle=False)

        atomic_write(self.folder / f"{key}.npy", write)
