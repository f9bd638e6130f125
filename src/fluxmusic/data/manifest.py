"""Training manifests: which audio files to learn from and their captions.

Three formats, chosen by the file suffix:

- ``.json``: the reference's format, a JSON list ``[{"wav": path, "label": caption}, ...]``;
- ``.jsonl``: one such object per line (blank lines skipped);
- ``.csv``: a header row with ``wav`` and ``label`` columns.

Every item may also give ``offset`` and ``duration`` (seconds) to restrict training to a region of the
file, and ``bpm`` (quarter-note beats per minute) with ``beat_phase`` (the fraction of a beat already
gone at the file's start, default 0) for models with a tempo input (``fluxmusic.model.tempo``).
Relative paths are resolved against the manifest's folder. Any other keys are kept in
``ManifestItem.extra`` and otherwise ignored. Manifests are UTF-8 (a leading byte-order mark is fine).
Mistakes raise :class:`ManifestError` naming the file and the 1-based item number (and, for bad JSON, the
line and column); so do files that are not manifests at all (binary, not UTF-8, over 4 GiB).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxmusic.errors import InputError

__all__ = ["MANIFEST_FORMATS", "ManifestError", "ManifestItem", "read_manifest", "write_manifest"]

MANIFEST_FORMATS: dict[str, str] = {".json": "json", ".jsonl": "jsonl", ".csv": "csv"}
REQUIRED_KEYS: tuple[str, str] = ("wav", "label")
OPTIONAL_KEYS: tuple[str, ...] = ("offset", "duration", "bpm", "beat_phase")
MAX_MANIFEST_BYTES: int = 4 << 30
"""The largest manifest read (4 GiB, some 20 million items); a bigger file is refused, not read in."""


class ManifestError(InputError):
    """A manifest that cannot be read; the message names the file, the item number and the fix."""


@dataclass(frozen=True)
class ManifestItem:
    """One training example.

    Attributes:
        index: 0-based position in the manifest (item number ``index + 1`` in messages).
        path: Absolute path of the audio file.
        caption: Its text description (may be empty).
        offset: Start of the usable region in seconds (``None``: the file start).
        duration: Length of the usable region in seconds (``None``: to the end of the file).
        wav: The path exactly as the manifest wrote it.
        extra: Any other keys of the item.
        bpm: Its tempo in quarter-note beats per minute (``None``: not given).
        beat_phase: Fraction of a beat gone at the file's start, in [0, 1).
    """

    index: int
    path: Path
    caption: str
    offset: float | None = None
    duration: float | None = None
    wav: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    bpm: float | None = None
    beat_phase: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The item as a manifest object (``wav``, ``label``, and the optional keys when set)."""
        out: dict[str, Any] = {"wav": self.wav or str(self.path), "label": self.caption}
        for key in ("offset", "duration", "bpm"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.bpm is not None and self.beat_phase:
            out["beat_phase"] = self.beat_phase
        return out

    def tempo_at(self, start_s: float) -> tuple[float, float]:
        """``(bpm, beat phase)`` of a clip starting ``start_s`` seconds into the file; (0, 0) if no bpm."""
        if self.bpm is None:
            return 0.0, 0.0
        return self.bpm, (self.beat_phase + start_s * self.bpm / 60.0) % 1.0


def _number(value: Any, key: str, where: str, positive: bool, unit: str = "seconds") -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {key!r} must be a number of {unit}, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise ManifestError(f"{where}: {key!r} must be {bound}, got {value!r}")
    return number


def _item(raw: Any, index: int, root: Path, where: str) -> ManifestItem:
    if not isinstance(raw, dict):
        raise ManifestError(
            f'{where}: expected an object {{"wav": ..., "label": ...}}, got {type(raw).__name__}'
        )
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise ManifestError(
            f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}; every item needs "
            f'"wav" (audio path) and "label" (caption); it has {sorted(raw)}'
        )
    wav, label = raw["wav"], raw["label"]
    if not isinstance(wav, str) or not wav.strip():
        raise ManifestError(f"{where}: 'wav' must be a non-empty path string, got {wav!r}")
    if label is None:
        label = ""
    if not isinstance(label, str):
        raise ManifestError(f"{where}: 'label' must be a string, got {type(label).__name__} {label!r}")
    path = Path(os.path.expanduser(wav))
    if not path.is_absolute():
        path = root / path
    extra = {k: v for k, v in raw.items() if k not in REQUIRED_KEYS + OPTIONAL_KEYS}
    return ManifestItem(
        index=index,
        path=Path(os.path.normpath(path)),
        caption=label,
        offset=_number(raw.get("offset"), "offset", where, positive=False),
        duration=_number(raw.get("duration"), "duration", where, positive=True),
        wav=wav,
        extra=extra,
        bpm=_number(raw.get("bpm"), "bpm", where, positive=True, unit="beats per minute"),
        beat_phase=_beat_phase(raw.get("beat_phase"), where),
    )


def _beat_phase(value: Any, where: str) -> float:
    phase = _number(value, "beat_phase", where, positive=False, unit="beats")
    if phase is not None and phase >= 1:
        raise ManifestError(f"{where}: 'beat_phase' must be a fraction of a beat in [0, 1), got {value!r}")
    return phase or 0.0


def _json_items(text: str, name: str) -> Iterator[tuple[Any, str]]:
    """Decode a JSON list item by item, so an error names the item it is in."""
    decoder = json.JSONDecoder()
    ws = " \t\r\n"
    pos = len(text) - len(text.lstrip(ws))
    if pos == len(text) or text[pos] != "[":
        raise ManifestError(
            f'{name}: a .json manifest must be a JSON list [{{"wav": ..., "label": ...}}, ...]'
        )
    pos += 1
    number = 0
    while True:
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos < len(text) and text[pos] == "]" and number == 0:
            break
        number += 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ManifestError(
                f"{name}: item {number}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
            ) from None
        except (ValueError, RecursionError) as err:
            raise ManifestError(f"{name}: item {number}: {_json_problem(err)}") from None
        yield value, f"{name}: item {number}"
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            break
        line = text.count("\n", 0, pos) + 1
        raise ManifestError(f"{name}: after item {number}: expected ',' or ']' at line {line}")
    rest = text[pos + 1 :].strip()
    if rest:
        raise ManifestError(f"{name}: unexpected text after the closing ']' of the list")


def _jsonl_items(text: str, name: str) -> Iterator[tuple[Any, str]]:
    number = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number += 1
        where = f"{name}: item {number} (line {line_no})"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{where}: invalid JSON at column {err.colno}: {err.msg}") from None
        except (ValueError, RecursionError) as err:
            raise ManifestError(f"{where}: {_json_problem(err)}") from None
        yield value, where


def _json_problem(err: BaseException) -> str:
    """What is wrong with JSON that parses but cannot be held (a 5000-digit number, 100000 nested lists)."""
    if isinstance(err, RecursionError):
        return "invalid JSON: nested too deeply (a manifest item is a flat object)"
    return f"invalid JSON: {str(err).split(';')[0]}"


def _csv_items(text: str, name: str) -> Iterator[tuple[Any, str]]:
    reader = csv.DictReader(text.splitlines())
    try:
        fieldnames = reader.fieldnames
    except csv.Error as err:
        raise ManifestError(f"{name}: unreadable CSV header ({err})") from None
    if fieldnames is None:
        return
    header = [h.strip() for h in fieldnames]
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise ManifestError(f"{name}: the CSV header must name columns 'wav' and 'label'; it has {header}")
    reader.fieldnames = header
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ManifestError(
                f"{name}: item {number + 1} (line {reader.line_num}): unreadable CSV ({err}); "
                "check the quoting"
            ) from None
        number += 1
        where = f"{name}: item {number} (line {reader.line_num})"
        if None in row:
            raise ManifestError(
                f"{where}: more fields than the header has columns (quote captions with commas)"
            )
        yield {k: v for k, v in row.items() if v is not None}, where


def _read_text(path: Path) -> str:
    """The manifest's text (UTF-8, a leading BOM dropped); binary, huge or unreadable files are refused."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{path}: the manifest is {size:,} bytes, over the {MAX_MANIFEST_BYTES:,} a manifest may "
                "be; split it, or check that this is the manifest"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except (OSError, ValueError) as err:
        raise ManifestError(f"cannot read manifest {path}: {err}") from None
    if b"\x00" in data[: 1 << 16]:
        raise ManifestError(
            f"{path}: holds NUL bytes, so it is a binary file (or UTF-16), not a manifest; "
            "give a UTF-8 .json, .jsonl or .csv manifest"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ManifestError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}); save it as UTF-8"
        ) from None


def read_manifest(path: str | os.PathLike[str], format: str | None = None) -> list[ManifestItem]:
    """Read and validate a manifest (every item is checked for keys and types, not for the audio).

    Args:
        path: A ``.json`` (reference list), ``.jsonl`` or ``.csv`` manifest.
        format: ``"json"``, ``"jsonl"`` or ``"csv"``; default from the suffix.

    Returns:
        The items in file order.

    Raises:
        ManifestError: unreadable file, unknown format, bad JSON, missing keys or bad values; the message
            names the item number.
    """
    path = Path(path)
    fmt = format or MANIFEST_FORMATS.get(path.suffix.lower())
    if fmt not in MANIFEST_FORMATS.values():
        raise ManifestError(f"{path}: unknown manifest format; use {', '.join(MANIFEST_FORMATS)} files")
    text = _read_text(path)
    parse = {"json": _json_items, "jsonl": _jsonl_items, "csv": _csv_items}[fmt]
    root = path.resolve().parent
    items = [_item(raw, i, root, where) for i, (raw, where) in enumerate(parse(text, str(path)))]
    if not items:
        raise ManifestError(f"{path}: the manifest holds no items")
    return items


def write_manifest(items: Iterable[ManifestItem | dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write items as a manifest in the format of ``path``'s suffix; paths are written as absolute paths.

    Returns:
        The written path.
    """
    from fluxmusic.files import atomic_write

    path = Path(path)
    fmt = MANIFEST_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ManifestError(f"{path}: unknown manifest format; use {', '.join(MANIFEST_FORMATS)} files")
    rows = []
    for item in items:
        row = item.to_dict() if isinstance(item, ManifestItem) else dict(item)
        if isinstance(item, ManifestItem):
            row["wav"] = str(item.path)
        rows.append(row)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if fmt == "json":
                f.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
            elif fmt == "jsonl":
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            else:
                writer = csv.DictWriter(f, fieldnames=["wav", "label", *OPTIONAL_KEYS], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)

    atomic_write(path, write)
    return path
