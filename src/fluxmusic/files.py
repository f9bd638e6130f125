"""Writing and hashing files safely: the one way fluxmusic writes a file and the one way it hashes one.

``atomic_write`` writes under a temporary name in the destination folder and renames onto the final
name only once the content is complete, so a reader (or a crash) never sees a half-written file. The
result gets the permissions of a normally created file (the process umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "sha256_file", "umask_mode"]


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` with the process umask applied (what ``open(..., "w")`` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file onto ``path``.

    Args:
        path: The final file; its folder is created when missing.
        write: Writes the whole content to the path it is given (e.g. ``safetensors.torch.save_file``).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
