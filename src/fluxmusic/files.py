"""Writing and hashing files safely: the one way fluxmusic writes a file and the one way it hashes one.

``atomic_write`` writes under a temporary name in the destination folder and renames onto the final
name only once the content is complete, so a reader (or a crash) never sees a half-written file. The
result gets the permissions of a normally created file (the process umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fluxmusic.errors import WriteError

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "describe_write_error",
    "json_safe",
    "sha256_file",
    "umask_mode",
]


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

    Raises:
        WriteError: the file system refused (full, read-only, no permission): one line naming the path
            and the free space; the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, WriteError):
            raise
        error = WriteError(describe_write_error(path, err))
        error.errno = err.errno
        raise error from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def describe_write_error(path: str | os.PathLike[str], err: OSError) -> str:
    """One line: which file could not be written, why, and (for a full disk) how much is free."""
    reason = err.strerror or str(err) or type(err).__name__
    line = f"cannot write {path}: {reason}"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        line += f" ({free / 1e6:.1f} MB free on that disk); free some space or write elsewhere"
    return line


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinite floats (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as strict, indented JSON (non-finite floats as null), atomically."""
    return atomic_write_text(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
