"""What an edit asks for, checked before any model loads: strength, regions, total durations, the source.

Torch-free, so the command line checks a request (and refuses it in one line) before loading anything
or creating an output folder. Errors are :class:`fluxmusic.sampling.SettingsError` whose ``setting``
names the parameter (the command line reports ``--region 3:2 ...``, ``--strength ...``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fluxmusic.sampling import SettingsError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CROSSFADE_SECONDS",
    "DEFAULT_RUN",
    "LONG_FORM_MAX_SECONDS",
    "MASK_EDGE_FRAMES",
    "MIN_INPUT_SECONDS",
    "OPERATIONS",
    "EditRun",
    "EditSettings",
    "SourceAudio",
    "check_regions",
    "check_strength",
    "check_total_duration",
    "parse_region",
]

LONG_FORM_MAX_SECONDS = 600.0
"""The longest piece generated window by window (long form and continuation), in seconds."""

CROSSFADE_SECONDS = 0.08
"""Length of the equal-power crossfades joining kept input samples to generated audio."""

MASK_EDGE_FRAMES = 4
"""Latent frames over which the inpainting mask ramps from "regenerate" to "keep" (0.16 s at 40 ms)."""

MIN_INPUT_SECONDS = 0.1
"""The shortest input audio an edit accepts."""

OPERATIONS = ("text-to-music", "variation", "inpaint", "continuation", "long-form")
"""The operation names recorded in sidecars."""


@dataclass(frozen=True)
class SourceAudio:
    """The identity of an edit's input file, recorded in every sidecar.

    Attributes:
        file: The file name (no folders).
        sha256: Hex sha256 of the file's bytes.
        seconds: Its length at the model's sample rate.
        sample_rate: The file's own sample rate.
        channels: The file's channel count (mixed to mono for the edit).
    """

    file: str
    sha256: str
    seconds: float
    sample_rate: int
    channels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise SettingsError(name, f"must be a finite number of seconds, got {value!r}")
    return float(value)


def check_strength(strength: Any) -> float:
    """``strength`` as a float in (0, 1] (1 = text-to-music).

    Raises:
        SettingsError: not a number, or outside (0, 1].
    """
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not math.isfinite(strength):
        raise SettingsError("strength", f"must be a number in (0, 1], got {strength!r}")
    if not 0.0 < strength <= 1.0:
        raise SettingsError(
            "strength", f"must be in (0, 1] (small: close to the input; 1: text-to-music), got {strength:g}"
        )
    return float(strength)


def parse_region(text: str) -> tuple[float, float]:
    """``"START:END"`` (seconds) as a pair of floats; the order is checked by :func:`check_regions`.

    Raises:
        SettingsError: not two finite numbers separated by a colon.
    """
    start, sep, end = str(text).partition(":")
    try:
        pair = (float(start), float(end))
    except ValueError:
        pair = (math.nan, math.nan)
    if not sep or not all(math.isfinite(v) for v in pair):
        raise SettingsError("region", f"{text!r} is not START:END in seconds; write e.g. --region 1.5:3")
    return pair


def check_regions(regions: Any, length: float) -> tuple[tuple[float, float], ...]:
    """Regions inside ``[0, length]`` seconds, each non-empty, none overlapping; returned sorted.

    Raises:
        SettingsError: no region, a malformed one, an empty one, one outside the audio, or two overlapping.
    """
    if isinstance(regions, (str, bytes)) or not isinstance(regions, Sequence) or not regions:
        raise SettingsError("region", "give at least one START:END region (seconds) to regenerate")
    checked = []
    for region in regions:
        if isinstance(region, str):
            region = parse_region(region)
        if isinstance(region, (str, bytes)) or not isinstance(region, Sequence) or len(region) != 2:
            raise SettingsError("region", f"{region!r} is not a (start, end) pair of seconds")
        start, end = _seconds("region", region[0]), _seconds("region", region[1])
        name = f"{start:g}:{end:g}"
        if end <= start:
            raise SettingsError("region", f"{name} is empty (END <= START); give START:END with END > START")
        if start < 0 or end > length + 1e-6:
            raise SettingsError(
                "region", f"{name} is outside the audio (0 to {length:.3f} s); give a region inside it"
            )
        checked.append((start, min(end, length)))
    checked.sort()
    for (a0, a1), (b0, b1) in zip(checked, checked[1:]):
        if b0 < a1:
            raise SettingsError(
                "region", f"{a0:g}:{a1:g} and {b0:g}:{b1:g} overlap; merge them into one region"
            )
    return tuple(checked)


def check_total_duration(duration: Any, length: float, maximum: float = LONG_FORM_MAX_SECONDS) -> float:
    """A continuation's total duration: longer than the input (``length`` s), at most ``maximum``.

    Raises:
        SettingsError: not a number, not longer than the input, or above the maximum.
    """
    total = _seconds("duration", duration)
    if total <= length:
        raise SettingsError(
            "duration",
            f"must be longer than the input ({length:.3f} s): it is the total length, the input included; "
            f"got {total:g}",
        )
    if total > maximum:
        raise SettingsError("duration", f"must be at most {maximum:g} seconds, got {total:g}")
    return total


@dataclass(frozen=True)
class EditRun:
    """How an edit runs, beside what it asks for: clips per prompt, the noise, progress, the joins.

    Attributes:
        num_per_prompt: Clips per prompt.
        generator: One generator for all noise (else the settings' seed).
        progress: Show progress bars.
        crossfade: Seconds of each equal-power crossfade between kept and generated audio.
        mask_edge: Latent frames of the soft edge of the inpainting / continuation mask.
    """

    num_per_prompt: int = 1
    generator: torch.Generator | None = None
    progress: bool = True
    crossfade: float = CROSSFADE_SECONDS
    mask_edge: int = MASK_EDGE_FRAMES


DEFAULT_RUN = EditRun()
"""One clip per prompt, the settings' seed, progress bars, the default joins."""


@dataclass(frozen=True)
class EditSettings:
    """The parameters of one edit (beside its ``SampleSettings``), as the sidecars record them.

    Attributes:
        operation: One of :data:`OPERATIONS`.
        source: The input file (variation, inpainting, continuation), else ``None``.
        strength: Variation only: the start time s in (0, 1].
        regions: Inpainting only: the regenerated (start, end) seconds, sorted.
        overlap: Long form and continuation: seconds of context each new window continues.
        windows: How many windows the piece took (long form, continuation, windowed inpainting).
        crossfade: Seconds of each equal-power crossfade between kept and generated audio.
        mask_edge: Latent frames of the inpainting mask's soft edge.
    """

    operation: str
    source: SourceAudio | None = None
    strength: float | None = None
    regions: tuple[tuple[float, float], ...] | None = None
    overlap: float | None = None
    windows: int | None = None
    crossfade: float = CROSSFADE_SECONDS
    mask_edge: int = MASK_EDGE_FRAMES

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise SettingsError(
                "operation", f"{self.operation!r} is unknown; use one of {', '.join(OPERATIONS)}"
            )
        if self.strength is not None:
            object.__setattr__(self, "strength", check_strength(self.strength))
        if self.regions is not None:
            object.__setattr__(self, "regions", tuple(tuple(map(float, r)) for r in self.regions))
        if self.overlap is not None and (_seconds("overlap", self.overlap) < 0):
            raise SettingsError("overlap", f"must be >= 0 seconds, got {self.overlap:g}")
        if _seconds("crossfade", self.crossfade) < 0:
            raise SettingsError("crossfade", f"must be >= 0 seconds, got {self.crossfade:g}")
        edge = self.mask_edge
        if isinstance(edge, bool) or not isinstance(edge, numbers.Integral) or edge < 0:
            raise SettingsError("mask_edge", f"must be an integer >= 0 (latent frames), got {edge!r}")

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's record: ``operation``, ``input`` (the file's identity) and ``edit`` (parameters)."""
        params = {
            "strength": self.strength,
            "regions": None if self.regions is None else [list(r) for r in self.regions],
            "overlap": self.overlap,
            "windows": self.windows,
        }
        if self.operation != "variation":
            params.update(crossfade=self.crossfade, mask_edge_frames=self.mask_edge)
        return {
            "operation": self.operation,
            "input": None if self.source is None else self.source.to_dict(),
            "edit": {k: v for k, v in params.items() if v is not None},
        }
