"""Where generated clips go, checked before any work: naming, formats, no silent overwrite.

``-o`` naming a file with an audio suffix writes that format (``stem_1``, ``stem_2``... for several
clips); anything else is a folder, whose files ``001-a-calm-piano-piece.wav`` continue the numbering past
the files already there. An output that exists (a symlink included) is refused unless ``overwrite``;
a sidecar that would replace a JSON file which is not a fluxmusic sidecar (a training manifest, say) is
refused always.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from fluxmusic.audio.formats import WRITE_FORMATS
from fluxmusic.errors import InputError

__all__ = ["FORMATS", "OutputPlan", "is_sidecar", "output_paths", "plan_outputs", "slug"]

FORMATS: tuple[str, ...] = tuple(WRITE_FORMATS)
"""Audio formats an output may have (from its suffix, or ``--format`` for folders)."""

_NUMBERED = re.compile(r"^(\d{3,})-")
_NAME_MAX = 255  # bytes in one file name on the common file systems


def slug(text: str, limit: int = 40) -> str:
    """File-name-safe short form of a prompt."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "clip"


def _is_folder(dest: str | Path) -> bool:
    text = str(dest)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or not Path(text).suffix


def _next_number(folder: Path) -> int:
    if not folder.is_dir():
        return 1
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def output_paths(dest: str | Path, prompts: list[str], fmt: str | None = None) -> list[Path]:
    """The audio path of each clip (one per entry of ``prompts``).

    Args:
        dest: A file with an audio suffix, or a folder.
        prompts: The prompt of each clip, in order.
        fmt: The format of folder outputs (default ``wav``); for a file it must agree with the suffix.

    Raises:
        InputError: an unknown format, a suffix that is not an audio format, or ``fmt`` disagreeing
            with the file's suffix.
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    for part in Path(dest).parts:
        _check_name(part)
    if _is_folder(dest):
        folder, first = Path(dest), _next_number(Path(dest))
        return [folder / f"{first + i:03d}-{slug(p)}.{fmt or 'wav'}" for i, p in enumerate(prompts)]
    path = Path(dest)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InputError(
            f"-o {path}: .{suffix} is not an audio format; use .{', .'.join(FORMATS)} or a folder"
        )
    if fmt is not None and fmt != suffix:
        raise InputError(f"--format {fmt} disagrees with -o {path}; give one of them, or make them agree")
    if len(prompts) == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(len(prompts))]


def is_sidecar(path: Path) -> bool:
    """Whether ``path`` is a sidecar fluxmusic wrote (a JSON object with ``fluxmusic_version``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "fluxmusic_version" in data


@dataclass
class OutputPlan:
    """The checked outputs of a run, and the folders made for them (removed again if nothing lands)."""

    paths: list[Path]
    created: list[Path] = field(default_factory=list)

    def remove_empty_folders(self) -> None:
        """Remove the folders this plan created that are still empty (after a failed run)."""
        for folder in sorted(self.created, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:  # not empty (something landed) or already gone: keep it
                pass


def _check_name(name: str) -> None:
    if len(name.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        raise InputError(f"output name {name[:40]}... is over {_NAME_MAX} bytes; choose a shorter -o")


def _check_one(path: Path, overwrite: bool, spectrogram: bool) -> None:
    _check_name(path.name)
    if path.is_dir():
        raise InputError(f"-o {path} is an existing folder; name a file, or use the folder without a suffix")
    sidecar = path.with_suffix(".json")
    if os.path.lexists(sidecar) and not is_sidecar(sidecar):
        raise InputError(
            f"{path}'s sidecar would replace {sidecar}, which is not a fluxmusic sidecar; choose another name"
        )
    if overwrite:
        return
    taken = [
        p
        for p in (path, sidecar, path.with_suffix(".png") if spectrogram else None)
        if p and os.path.lexists(p)
    ]
    if taken:
        raise InputError(f"{taken[0]} exists; pass --overwrite to replace it, or choose another -o")


def plan_outputs(paths: list[Path], overwrite: bool = False, spectrogram: bool = False) -> OutputPlan:
    """Check every output before any work, and make (and probe) their folders.

    Raises:
        InputError: a name too long, an output that is a folder, an existing file without
            ``overwrite``, or a sidecar that would replace a file that is not a sidecar.
        PermissionError: a folder cannot be created or written, naming it.
    """
    if len(set(paths)) != len(paths):
        raise InputError("two clips would be written to one file; use a folder or distinct names")
    for path in paths:
        _check_one(path, overwrite, spectrogram)
    plan = OutputPlan(paths)
    for folder in sorted({p.parent for p in paths}):
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            plan.created += missing
            probe = folder / ".fluxmusic-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            plan.remove_empty_folders()
            raise PermissionError(
                f"cannot write to {folder} ({err.strerror}); choose another --output"
            ) from None
    return plan
