"""Typed configuration of the demo dataset builder.

``DemoDatasetConfig`` describes a whole build; ``ClipRequest`` pins one clip to a corpus piece and,
optionally, to chosen attributes (family, programs, texture, BPM, velocity, octave, window, caption style,
split). Everything is validated in ``__post_init__``; errors are ``ValueError`` naming the bad value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxmusic.data.demo.captions import CAPTION_STYLES
from fluxmusic.data.demo.catalogue import COLLECTIONS
from fluxmusic.data.demo.instruments import FAMILIES, INSTRUMENTS
from fluxmusic.errors import InputError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TEXTURES: tuple[str, ...] = ("solo", "ensemble")
SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class ClipRequest:
    """One clip pinned to a corpus piece, with optional attribute overrides (None = sampled).

    Attributes:
        piece_id: corpus piece id, e.g. ``"bach/bwv66.6.mxl"`` or ``"essenFolksong/han1.abc#3"``
            (see ``list_pieces``).
        family: instrument family (a key of ``instruments.FAMILIES``).
        programs: explicit GM programs; one program = solo, several = ensemble (overrides family/texture).
        texture: ``"solo"`` or ``"ensemble"``.
        bpm: tempo in quarter notes per minute, written into the MIDI file.
        velocity: base MIDI velocity 1..127 (the dynamics label is derived from it).
        octave: octave transposition of the melody (-3..3).
        start_measure: index of the first measure of the window (0-based).
        caption_style: one of ``captions.CAPTION_STYLES``.
        split: ``"train"`` or ``"test"`` (defaults to the piece's seeded split).
    """

    piece_id: str
    family: str | None = None
    programs: tuple[int, ...] | None = None
    texture: str | None = None
    bpm: int | None = None
    velocity: int | None = None
    octave: int | None = None
    start_measure: int | None = None
    caption_style: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.piece_id, str) or "/" not in self.piece_id:
            raise InputError(f"ClipRequest.piece_id must look like 'collection/file', got {self.piece_id!r}")
        if self.family is not None and self.family not in FAMILIES:
            raise InputError(f"ClipRequest.family={self.family!r} is not one of {FAMILIES}")
        if self.programs is not None:
            object.__setattr__(self, "programs", tuple(self.programs))
            bad = [p for p in self.programs if p not in INSTRUMENTS]
            if not self.programs or bad or len(self.programs) > 6:
                raise InputError(
                    f"ClipRequest.programs={self.programs!r}: need 1-6 programs from the table "
                    f"(unknown: {bad})"
                )
        if self.texture is not None and self.texture not in TEXTURES:
            raise InputError(f"ClipRequest.texture={self.texture!r} is not one of {TEXTURES}")
        if self.bpm is not None and not 20 <= self.bpm <= 400:
            raise InputError(f"ClipRequest.bpm={self.bpm!r} must be in [20, 400]")
        if self.velocity is not None and not 1 <= self.velocity <= 127:
            raise InputError(f"ClipRequest.velocity={self.velocity!r} must be in [1, 127]")
        if self.octave is not None and not -3 <= self.octave <= 3:
            raise InputError(f"ClipRequest.octave={self.octave!r} must be in [-3, 3]")
        if self.start_measure is not None and self.start_measure < 0:
            raise InputError(f"ClipRequest.start_measure={self.start_measure!r} must be >= 0")
        if self.caption_style is not None and self.caption_style not in CAPTION_STYLES:
            raise InputError(
                f"ClipRequest.caption_style={self.caption_style!r} is not one of {CAPTION_STYLES}"
            )
        if self.split is not None and self.split not in SPLITS:
            raise InputError(f"ClipRequest.split={self.split!r} is not one of {SPLITS}")


@dataclass(frozen=True)
class DemoDatasetConfig:
    """Configuration of one demo dataset build.

    Attributes:
        out_dir: output folder (audio/, manifests, metadata.jsonl, stats.json).
        n_clips: number of clips to plan when ``requests`` is empty.
        seed: master seed; every random choice derives from it and the clip index.
        sample_rate: output sample rate (Hz).
        clip_seconds: clip duration; every wav has exactly ``round(sample_rate * clip_seconds)`` samples.
        render_rate: FluidSynth synthesis rate, resampled to ``sample_rate`` with soxr.
        bpm_range: inclusive range of sampled tempi (quarter notes per minute).
        test_fraction: fraction of pieces (not clips) held out in the test split.
        clips_per_piece: clips cut from one piece (small collections use more pieces' worth of windows).
        collections: corpus collections to draw from (keys of ``catalogue.COLLECTIONS``).
        families: instrument families to draw from.
        ensemble_prob: probability that a clip is an ensemble rather than a solo.
        mixed_prob: probability that an ensemble mixes families.
        caption_styles: caption styles to draw from.
        caption_drop_prob: probability of leaving out each optional attribute from a caption.
        requests: explicit clips (one per request); when given, ``n_clips`` is ignored.
        workers: processes; 0 or 1 runs in this process.
        parse_timeout_s: time budget to parse one piece (pieces over budget are skipped and logged).
        silence_db: renders whose RMS (dBFS, before normalisation) is below this are rejected.
        min_active: renders with fewer 20 ms frames louder than ``silence_db`` than this fraction are
            rejected (mostly silent windows).
        peak: peak level of a fortissimo clip after normalisation; softer dynamics get less.
        gain: FluidSynth master gain.
        soundfont: SoundFont file.
        fluidsynth: FluidSynth executable.
        max_attempts: windows tried per clip before it is rejected as silent.
        keep_midi: also keep the rendered MIDI files under ``midi/<split>/``.
    """

    out_dir: Path
    n_clips: int = 4000
    seed: int = 0
    sample_rate: int = 16000
    clip_seconds: float = 5.12
    render_rate: int = 32000
    bpm_range: tuple[int, int] = (60, 180)
    test_fraction: float = 0.1
    clips_per_piece: int = 2
    collections: tuple[str, ...] = tuple(COLLECTIONS)
    families: tuple[str, ...] = FAMILIES
    ensemble_prob: float = 0.4
    mixed_prob: float = 0.4
    caption_styles: tuple[str, ...] = CAPTION_STYLES
    caption_drop_prob: float = 0.3
    requests: tuple[ClipRequest, ...] = ()
    workers: int = 1
    parse_timeout_s: float = 60.0
    silence_db: float = -60.0
    min_active: float = 0.25
    peak: float = 0.9
    gain: float = 0.5
    soundfont: Path = DEFAULT_SOUNDFONT
    fluidsynth: str = "fluidsynth"
    max_attempts: int = 3
    keep_midi: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "out_dir", Path(self.out_dir))
        set_(self, "soundfont", Path(self.soundfont))
        for name in ("bpm_range", "collections", "families", "caption_styles", "requests"):
            set_(self, name, tuple(getattr(self, name)))
        if self.n_clips < 1:
            raise InputError(f"n_clips must be >= 1, got {self.n_clips}")
        if not 8000 <= self.sample_rate <= 96000:
            raise InputError(f"sample_rate must be in [8000, 96000], got {self.sample_rate}")
        if not 8000 <= self.render_rate <= 96000:
            raise InputError(f"render_rate must be in [8000, 96000], got {self.render_rate}")
        if not (math.isfinite(self.clip_seconds) and 0.5 <= self.clip_seconds <= 60.0):
            raise InputError(f"clip_seconds must be in [0.5, 60], got {self.clip_seconds}")
        lo_hi = self.bpm_range
        if len(lo_hi) != 2 or not 20 <= lo_hi[0] <= lo_hi[1] <= 400:
            raise InputError(f"bpm_range must be (low, high) with 20 <= low <= high <= 400, got {lo_hi}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise InputError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.clips_per_piece < 1:
            raise InputError(f"clips_per_piece must be >= 1, got {self.clips_per_piece}")
        _check_subset("collections", self.collections, tuple(COLLECTIONS))
        _check_subset("families", self.families, FAMILIES)
        _check_subset("caption_styles", self.caption_styles, CAPTION_STYLES)
        for name in ("ensemble_prob", "mixed_prob", "caption_drop_prob", "min_active"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value}")
        if self.workers < 0:
            raise InputError(f"workers must be >= 0, got {self.workers}")
        if self.parse_timeout_s <= 0:
            raise InputError(f"parse_timeout_s must be > 0, got {self.parse_timeout_s}")
        if not -120.0 < self.silence_db < 0.0:
            raise InputError(f"silence_db must be in (-120, 0), got {self.silence_db}")
        if not 0.0 < self.peak <= 1.0:
            raise InputError(f"peak must be in (0, 1], got {self.peak}")
        if not 0.0 < self.gain < 10.0:
            raise InputError(f"gain must be in (0, 10), got {self.gain}")
        if self.max_attempts < 1:
            raise InputError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if any(not isinstance(r, ClipRequest) for r in self.requests):
            raise InputError("requests must be ClipRequest instances")
        splits: dict[str, str] = {}
        for r in self.requests:
            if r.split is not None and splits.setdefault(r.piece_id, r.split) != r.split:
                raise InputError(f"requests put piece {r.piece_id!r} in both splits")

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return round(self.sample_rate * self.clip_seconds)

    def identity(self) -> dict[str, Any]:
        """JSON-able fields that determine the dataset's content (all but ``out_dir`` and ``workers``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("out_dir", "workers"):
                continue
            value = getattr(self, f.name)
            if f.name == "requests":
                value = [dataclasses.asdict(r) for r in value]
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _check_subset(name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise InputError(f"{name} has unknown or no values {bad or list(values)}; choose from {allowed}")
