"""``fluxmusic data check``: validate every item of a manifest before training on it.

Each item's audio is opened and decoded in full (the region ``offset``/``duration`` when given) and
classified as ``ok`` or one of the problems in :data:`PROBLEMS`. Problem items are listed with their
paths in the report; nothing is ever replaced by silence. Low sample rates are warnings (the audio is
upsampled to 16 kHz, but what is missing above its Nyquist frequency stays missing).

The header check (``decode=False``, training's default) is still a corruption check: it compares a
WAV/AIFF header's declared length with what the file holds (a truncated file is ``corrupt``, not a
shorter clip), and scans the samples of float-encoded files (the only encodings that can hold NaN/Inf)
for non-finite values. Only silence needs the full decode.

:func:`check_manifest` checks its output paths before any work: the report and the clean manifest are
never written onto the manifest (or an audio file it lists), the clean manifest replaces an existing
file only with ``overwrite``, and an unwritable place fails at once in one line. Both are written
atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fluxmusic.data.manifest import (
    MANIFEST_FORMATS,
    ManifestError,
    ManifestItem,
    read_manifest,
    write_manifest,
)
from fluxmusic.data.outputs import check_output_file, same_file
from fluxmusic.errors import InputError

__all__ = [
    "PROBLEMS",
    "CheckReport",
    "ItemCheck",
    "check_item",
    "check_items",
    "check_manifest",
    "check_settings",
]

logger = logging.getLogger(__name__)

PROBLEMS: dict[str, str] = {
    "missing": "the file does not exist",
    "corrupt": "the file cannot be decoded, is shorter than its header declares, or holds NaN/Inf samples",
    "empty": "the file holds no samples",
    "bad_region": "offset/duration fall outside the file",
    "too_short": "shorter than the minimum duration",
    "silent": "no signal: the mean-removed peak is at or below the silence threshold",
}
"""Problem statuses and what they mean; an item with any of them is skipped by training."""

DEFAULT_MIN_DURATION_S: float = 1.0
LOW_SAMPLE_RATE: int = 16_000


@dataclass(frozen=True)
class ItemCheck:
    """The verdict on one manifest item.

    Attributes:
        index: 0-based manifest position (the report also shows ``item = index + 1``).
        path: The audio file.
        status: ``"ok"`` or a key of :data:`PROBLEMS`.
        message: What is wrong (empty when ok).
        duration_s: Usable duration (the region, clipped to the file), when the header could be read.
        sample_rate: The file's sample rate in Hz, when known.
        channels: Number of channels, when known.
        peak: Mean-removed peak of channel 0 over the region, when decoded.
        warnings: Non-fatal remarks (e.g. a low sample rate).
    """

    index: int
    path: str
    status: str
    message: str = ""
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    peak: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the item can be trained on."""
        return self.status == "ok"

    def describe(self) -> str:
        """One line: ``item N: PATH: status (message)``."""
        detail = f" ({self.message})" if self.message else ""
        return f"item {self.index + 1}: {self.path}: {self.status}{detail}"


@dataclass
class CheckReport:
    """All verdicts on a manifest.

    Attributes:
        manifest: The manifest checked.
        items: One :class:`ItemCheck` per item, in manifest order.
        settings: The thresholds used.
        seconds: Wall time of the check.
    """

    manifest: str
    items: list[ItemCheck]
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def bad(self) -> list[ItemCheck]:
        """Items that training skips."""
        return [c for c in self.items if not c.ok]

    @property
    def good_indices(self) -> list[int]:
        """Manifest indices of the items that pass."""
        return [c.index for c in self.items if c.ok]

    def summary(self) -> dict[str, Any]:
        """Counts per status, total hours of usable audio and the number of warnings."""
        counts = Counter(c.status for c in self.items)
        hours = sum(c.duration_s or 0.0 for c in self.items if c.ok) / 3600
        return {
            "total": len(self.items),
            "ok": counts.get("ok", 0),
            "bad": len(self.items) - counts.get("ok", 0),
            "by_status": dict(sorted(counts.items())),
            "usable_hours": round(hours, 4),
            "warnings": sum(len(c.warnings) for c in self.items),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        items = [{"item": c.index + 1, **asdict(c), "warnings": list(c.warnings)} for c in self.items]
        return {
            "manifest": self.manifest,
            "settings": self.settings,
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
            "problems": PROBLEMS,
            "items": items,
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON (atomically); returns the path."""
        from fluxmusic.files import atomic_write

        path = Path(path)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return path


def _fail(item: ManifestItem, status: str, message: str, **known: Any) -> ItemCheck:
    return ItemCheck(item.index, str(item.path), status, message, **known)


def check_item(
    item: ManifestItem,
    min_duration: float = DEFAULT_MIN_DURATION_S,
    silence_threshold: float | None = None,
    decode: bool = True,
) -> ItemCheck:
    """Check one item: the file exists, decodes, is long enough and is not silent.

    Args:
        item: The manifest item.
        min_duration: Shortest usable region in seconds.
        silence_threshold: Largest mean-removed peak counted as silence (default: the training-clip rule's,
            ``fluxmusic.audio.clips.SILENCE_THRESHOLD``).
        decode: Decode the samples (silence, NaN and decode-error checks); ``False`` reads the header (and
            scans float-encoded samples for NaN/Inf).

    Returns:
        The verdict.
    """
    import numpy as np
    import soundfile as sf

    from fluxmusic.audio.clips import SILENCE_THRESHOLD
    from fluxmusic.audio.headers import truncation
    from fluxmusic.audio.io import AudioFileError, count_non_finite

    threshold = SILENCE_THRESHOLD if silence_threshold is None else silence_threshold
    path = item.path
    try:
        present, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL byte in it
        return _fail(item, "missing", f"cannot open this path: {err}")
    if not present:
        return _fail(item, "missing", "file not found")
    if not is_file:
        return _fail(item, "missing", "not a file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as err:
        return _fail(item, "corrupt", f"cannot decode the header: {err}")
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    known: dict[str, Any] = {"sample_rate": rate, "channels": channels}
    if frames <= 0 or rate <= 0:
        return _fail(item, "empty", "no samples", duration_s=0.0, **known)
    cut = truncation(path, frames, rate)
    if cut is not None:
        return _fail(item, "corrupt", cut, **known)
    file_s = frames / rate
    start_s = item.offset or 0.0
    if start_s >= file_s:
        return _fail(item, "bad_region", f"offset {start_s:g} s is past the end ({file_s:.3f} s)", **known)
    region_s = file_s - start_s if item.duration is None else min(item.duration, file_s - start_s)
    warnings = []
    if item.duration is not None and start_s + item.duration > file_s + 1.0 / rate:
        warnings.append(f"region ends past the file end ({file_s:.3f} s); using {region_s:.3f} s")
    if rate < LOW_SAMPLE_RATE:
        warnings.append(f"sample rate {rate} Hz is below {LOW_SAMPLE_RATE} Hz; it will be upsampled")
    known["duration_s"] = region_s
    if region_s < min_duration:
        return _fail(item, "too_short", f"{region_s:.3f} s < minimum {min_duration:g} s", **known)
    start = int(round(start_s * rate))
    count = max(1, int(round(region_s * rate)))
    if not decode:
        try:
            bad = count_non_finite(path, start, count)
        except AudioFileError as err:
            return _fail(item, "corrupt", f"cannot decode the samples: {err}", **known)
        if bad:
            return _fail(item, "corrupt", f"{bad} NaN or Inf sample(s)", **known)
        return ItemCheck(item.index, str(path), "ok", **known, warnings=tuple(warnings))
    try:
        data, _ = sf.read(str(path), start=start, frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        return _fail(item, "corrupt", f"cannot decode the samples: {err}", **known)
    if data.shape[0] == 0:
        return _fail(item, "empty", "no samples could be decoded", **known)
    if data.shape[0] < count * 0.99:
        got = data.shape[0]
        return _fail(
            item, "corrupt", f"truncated: the header declares {count / rate:.3f} s ({count} frames) from "
            f"{start_s:g} s but only {got / rate:.3f} s ({got} frames) decode", **known,
        )  # fmt: skip
    finite = np.isfinite(data)
    if not finite.all():
        return _fail(item, "corrupt", f"{int(finite.size - finite.sum())} NaN or Inf sample(s)", **known)
    channel0 = data[:, 0].astype(np.float64)
    peak = float(np.abs(channel0 - channel0.mean()).max())
    known["peak"] = peak
    if peak <= threshold:
        return _fail(item, "silent", f"peak {peak:.3g} <= {threshold:.3g} on channel 0", **known)
    return ItemCheck(item.index, str(path), "ok", **known, warnings=tuple(warnings))


def check_settings(min_duration: float, silence_threshold: float | None = None, workers: int = 1) -> None:
    """Refuse NaN, infinite or negative thresholds and fewer than one worker (before any work).

    Raises:
        InputError: naming the option and the value.
    """
    if not (isinstance(min_duration, int | float) and math.isfinite(min_duration) and min_duration >= 0):
        raise InputError(
            f"min_duration (--min-duration) must be a number of seconds >= 0, got {min_duration}"
        )
    if silence_threshold is not None and not (math.isfinite(silence_threshold) and silence_threshold >= 0):
        raise InputError(f"silence_threshold must be a finite number >= 0, got {silence_threshold}")
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers (--workers) must be a whole number >= 1, got {workers}")


def check_items(
    items: Sequence[ManifestItem],
    min_duration: float = DEFAULT_MIN_DURATION_S,
    silence_threshold: float | None = None,
    decode: bool = True,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[ItemCheck]:
    """Check many items (``workers`` threads; decoding releases the GIL). Results are in item order.

    Raises:
        InputError: a bad threshold or worker count (see :func:`check_settings`).
    """
    check_settings(min_duration, silence_threshold, workers)

    def one(item: ManifestItem) -> ItemCheck:
        verdict = check_item(item, min_duration, silence_threshold, decode)
        if progress is not None:
            progress(1)
        return verdict

    if workers == 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


def _check_outputs(
    manifest: Path,
    items: Sequence[ManifestItem],
    report_path: Path | None,
    clean_path: Path | None,
    overwrite: bool,
) -> None:
    """Refuse outputs onto inputs (or each other), existing clean manifests, and unwritable places."""
    if clean_path is not None and clean_path.suffix.lower() not in MANIFEST_FORMATS:
        raise ManifestError(
            f"{clean_path}: unknown manifest format for the clean manifest; use {', '.join(MANIFEST_FORMATS)}"
        )
    audio = {str(item.path) for item in items}
    outputs = [(p, what) for p, what in ((report_path, "report"), (clean_path, "clean manifest")) if p]
    for path, what in outputs:
        if os.path.normpath(os.path.abspath(path)) in audio:
            raise InputError(f"the {what} {path} is an audio file the manifest lists; choose another path")
    if report_path is not None and clean_path is not None and same_file(report_path, clean_path):
        raise InputError(f"the report and the clean manifest are one file ({report_path}); give two paths")
    if report_path is not None:
        check_output_file(report_path, "report", inputs=[manifest])  # a report replaces an older one
    if clean_path is not None:
        check_output_file(clean_path, "clean manifest", inputs=[manifest], overwrite=overwrite)


def check_manifest(
    manifest: str | os.PathLike[str],
    min_duration: float = DEFAULT_MIN_DURATION_S,
    silence_threshold: float | None = None,
    decode: bool = True,
    workers: int = 1,
    report_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    clean_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> CheckReport:
    """Validate every item of a manifest; optionally write the JSON report and a manifest of the good items.

    Every option and output path is checked before the first item is (see the module docstring).

    Args:
        manifest: The manifest file (see :func:`fluxmusic.data.manifest.read_manifest`).
        min_duration: Shortest usable region in seconds.
        silence_threshold: See :func:`check_item`.
        decode: Decode the samples (``False``: headers only, much faster; no silence check).
        workers: Threads (>= 1).
        report_path: Where to write the report (JSON); an older report there is replaced.
        progress: Called with 1 after each item (e.g. a tqdm ``update``).
        clean_path: Where to write a manifest of the good items (format from its suffix).
        overwrite: Whether ``clean_path`` may replace an existing file (never the manifest itself).

    Raises:
        fluxmusic.data.manifest.ManifestError: the manifest itself is malformed.
        fluxmusic.errors.InputError: a bad option, or an output path onto an input / existing file.
        fluxmusic.errors.WriteError: an output cannot be written (read-only, no permission, disk full).
    """
    start = time.perf_counter()
    check_settings(min_duration, silence_threshold, workers)
    report_file = None if report_path is None else Path(report_path)
    clean_file = None if clean_path is None else Path(clean_path)
    items = read_manifest(manifest)
    _check_outputs(Path(manifest), items, report_file, clean_file, overwrite)
    verdicts = check_items(items, min_duration, silence_threshold, decode, workers, progress)
    settings = {
        "min_duration": min_duration,
        "silence_threshold": silence_threshold,
        "decode": decode,
        "low_sample_rate": LOW_SAMPLE_RATE,
    }
    report = CheckReport(str(manifest), verdicts, settings, time.perf_counter() - start)
    logger.info("checked %d items: %d bad", len(verdicts), len(report.bad))
    if report_file is not None:
        report.write(report_file)
    if clean_file is not None:
        good = set(report.good_indices)
        write_manifest([item for item in items if item.index in good], clean_file)
    return report
