"""Where the data tools write: output paths checked before the work, never onto an input.

A data command that would fail to write its result only after hours of checking or encoding is checked
first: :func:`check_output_file` and :func:`check_output_folder` refuse, in one line naming the path,
an output that is an input, an existing file (unless ``overwrite``), a folder where a file is wanted (or
a file where a folder is), or a place the file system will not let us write (read-only, no permission).
The writes themselves go through :func:`fluxmusic.files.atomic_write`, whose failures (a full disk) are
one-line ``WriteError`` s as well.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fluxmusic.errors import InputError, WriteError
from fluxmusic.files import describe_write_error

__all__ = ["check_output_file", "check_output_folder", "same_file"]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (same path once resolved, or links to one inode)."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _existing_ancestor(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _probe(folder: Path, path: Path, what: str) -> None:
    """Create and remove a temporary file where ``path`` will be written (or its folder created)."""
    if not folder.is_dir():
        raise InputError(
            f"cannot write the {what} {path}: {folder} is a file, not a folder; choose another path"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fluxmusic-probe-", suffix=".tmp")
    except OSError as err:
        raise WriteError(
            f"{describe_write_error(path, err)}; choose a writable place for the {what}"
        ) from None
    os.close(fd)
    os.unlink(tmp)


def check_output_file(
    path: str | os.PathLike[str],
    what: str,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = True,
) -> Path:
    """Check, before any work, that ``path`` can be written as the ``what`` (e.g. ``"clean manifest"``).

    Args:
        path: The file to be written.
        what: What it is, for the message.
        inputs: Files this run reads; writing onto any of them is refused whatever ``overwrite`` says.
        overwrite: Whether an existing file may be replaced.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        InputError: ``path`` is an input, a folder, an existing file without ``overwrite``, or lies under a
            file.
        WriteError: the file system refuses to create files there (read-only, no permission).
    """
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise InputError(
                f"the {what} {path} is the input {'manifest' if Path(source).suffix else 'file'} {source}; "
                "writing it there would replace the input: choose another path"
            )
    try:
        exists, is_dir = path.exists(), path.is_dir()
        folder = _existing_ancestor(path)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot write the {what} {path}: {err}; choose another path") from None
    if is_dir:
        raise InputError(f"the {what} {path} is a folder; give the path of a file")
    if exists and not overwrite:
        raise InputError(f"the {what} {path} exists; give --overwrite to replace it, or choose another path")
    _probe(folder, path, what)
    return path


def check_output_folder(path: str | os.PathLike[str], what: str, subfolders: Iterable[str] = ()) -> Path:
    """Check, before any work, that the folder ``path`` (and its ``subfolders``) can be made and written.

    Raises:
        InputError: ``path`` or a subfolder is an existing file, or lies under a file.
        WriteError: the file system refuses to create files there.
    """
    path = Path(path)
    for folder in (path, *(path / name for name in subfolders)):
        try:
            is_file = folder.exists() and not folder.is_dir()
        except (OSError, ValueError) as err:
            raise InputError(f"cannot use {folder} as the {what}: {err}; choose another folder") from None
        if is_file:
            raise InputError(f"the {what} {folder} is an existing file, not a folder; choose a folder")
    target = path if path.is_dir() else _existing_ancestor(path / "x")
    _probe(target, path, what)
    return path
