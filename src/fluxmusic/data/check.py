"""``fluxmusic data check``: validate every item of a manifest before training on it.

Each item's audio is opened and decoded in full (the region ``offset``/``duration`` when given) and
classified as ``ok`` or one of the problems in :data:`PROBLEMS`. Problem items are listed with their
paths in the report; nothing is ever replaced by silence. Low sample rates are warnings (the audio is
upsampled to 16 kHz, but what is missing above its Nyquist frequency stays missing).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fluxmusic.data.manifest import ManifestItem, read_manifest

__all__ = ["PROBLEMS", "CheckReport", "ItemCheck", "check_item", "check_items", "check_manifest"]

logger = logging.getLogger(__name__)

PROBLEMS: dict[str, str] = {
    "missing": "the file does not exist",
    "corrupt": "the file cannot be decoded, or holds NaN/Inf samples",
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
        decode: Decode the samples (silence, NaN and decode-error checks); ``False`` reads only the header.

    Returns:
        The verdict.
    """
    import numpy as np
    import soundfile as sf

    from fluxmusic.audio.clips import SILENCE_THRESHOLD

    threshold = SILENCE_THRESHOLD if silence_threshold is None else silence_threshold
    path = item.path
    if not path.exists():
        return _fail(item, "missing", "file not found")
    if not path.is_file():
        return _fail(item, "missing", "not a file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        return _fail(item, "corrupt", f"cannot decode the header: {err}")
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    known: dict[str, Any] = {"sample_rate": rate, "channels": channels}
    if frames <= 0 or rate <= 0:
        return _fail(item, "empty", "no samples", duration_s=0.0, **known)
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
    if not decode:
        return ItemCheck(item.index, str(path), "ok", **known, warnings=tuple(warnings))
    start = int(round(start_s * rate))
    count = max(1, int(round(region_s * rate)))
    try:
        data, _ = sf.read(str(path), start=start, frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        return _fail(item, "corrupt", f"cannot decode the samples: {err}", **known)
    if data.shape[0] == 0:
        return _fail(item, "empty", "no samples could be decoded", **known)
    if data.shape[0] < count * 0.99:
        return _fail(
            item, "corrupt", f"decoded {data.shape[0]} of {count} samples (truncated file?)", **known
        )
    channel0 = data[:, 0].astype(np.float64)
    if not np.isfinite(channel0).all():
        return _fail(item, "corrupt", "NaN or Inf samples", **known)
    peak = float(np.abs(channel0 - channel0.mean()).max())
    known["peak"] = peak
    if peak <= threshold:
        return _fail(item, "silent", f"peak {peak:.3g} <= {threshold:.3g} on channel 0", **known)
    return ItemCheck(item.index, str(path), "ok", **known, warnings=tuple(warnings))


def check_items(
    items: Sequence[ManifestItem],
    min_duration: float = DEFAULT_MIN_DURATION_S,
    silence_threshold: float | None = None,
    decode: bool = True,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[ItemCheck]:
    """Check many items (``workers`` threads; decoding releases the GIL). Results are in item order."""

    def one(item: ManifestItem) -> ItemCheck:
        verdict = check_item(item, min_duration, silence_threshold, decode)
        if progress is not None:
            progress(1)
        return verdict

    if workers <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


def check_manifest(
    manifest: str | os.PathLike[str],
    min_duration: float = DEFAULT_MIN_DURATION_S,
    silence_threshold: float | None = None,
    decode: bool = True,
    workers: int = 1,
    report_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Validate every item of a manifest and optionally write the JSON report.

    Args:
        manifest: The manifest file (see :func:`fluxmusic.data.manifest.read_manifest`).
        min_duration: Shortest usable region in seconds.
        silence_threshold: See :func:`check_item`.
        decode: Decode the samples (``False``: headers only, much faster; no silence check).
        workers: Threads.
        report_path: Where to write the report (JSON).
        progress: Called with 1 after each item (e.g. a tqdm ``update``).

    Raises:
        fluxmusic.data.manifest.ManifestError: the manifest itself is malformed.
    """
    start = time.perf_counter()
    items = read_manifest(manifest)
    verdicts = check_items(items, min_duration, silence_threshold, decode, workers, progress)
    settings = {
        "min_duration": min_duration,
        "silence_threshold": silence_threshold,
        "decode": decode,
        "low_sample_rate": LOW_SAMPLE_RATE,
    }
    report = CheckReport(str(manifest), verdicts, settings, time.perf_counter() - start)
    logger.info("checked %d items: %d bad", len(verdicts), len(report.bad))
    if report_path is not None:
        report.write(report_path)
    return report
