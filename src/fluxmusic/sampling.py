"""``SampleSettings``: every choice that shapes a generated clip, resolved once and checked once.

A request's settings come from four places, in order: what the caller passed, the *quality preset* the
caller named (``draft``, ``balanced``, ``best``, ``reference``: the model folder's
``defaults["presets"]``, else :data:`FALLBACK_PRESETS`), the model folder's other ``defaults``
(``fluxmusic.json``), and the fallbacks below (the reference's: 50 Euler steps, guidance 7).
:meth:`SampleSettings.resolve` merges them; the dataclass validates every value in ``__post_init__``
(``ValueError``/``TypeError`` naming the argument) and is what the pipeline returns in
``AudioOutput.settings`` and what the sidecar files record.

A preset sets only how the flow is integrated (:data:`PRESET_KEYS`: sampler, steps, shift, step-cache
threshold), never what is asked for (guidance, prompt), so every preset of a model aims at the same clip
at a different cost. ``reference`` is the reference sampling script's 50 uniform Euler steps.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from fluxmusic.errors import InputError
from fluxmusic.flow.cache import check_threshold
from fluxmusic.flow.guidance import check_eta, check_interval
from fluxmusic.flow.names import QUALITIES, SAMPLERS

__all__ = [
    "DEFAULT_KEYS",
    "FALLBACKS",
    "FALLBACK_PRESETS",
    "PRESET_KEYS",
    "QUALITIES",
    "MAX_BPM",
    "MIN_BPM",
    "MAX_SEED",
    "SampleSettings",
    "SettingsError",
    "check_defaults",
    "preset_values",
]

FALLBACKS: dict[str, Any] = {
    "steps": 50,
    "guidance": 7.0,
    "sampler": "euler",
    "guidance_interval": None,
    "guidance_eta": 1.0,
    "shift": 1.0,
    "negative_prompt": "",
    "cache_threshold": 0.0,
}
"""Used where neither the caller nor the model folder says otherwise (the reference's sampling; no step
caching)."""

PRESET_KEYS: tuple[str, ...] = ("sampler", "steps", "shift", "cache_threshold")
"""What a quality preset may set: how the flow is integrated, not what is asked for."""

FALLBACK_PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"sampler": "ab2", "steps": 8, "shift": 3.0},
    "balanced": {"sampler": "ab2", "steps": 16, "shift": 3.0},
    "best": {"sampler": "ab2", "steps": 32, "shift": 3.0},
    "reference": {"sampler": "euler", "steps": 50, "shift": 1.0, "cache_threshold": 0.0},
}
"""Presets of a model folder that defines none (the released sizes among them): ``draft``, ``balanced``
and ``best`` are the solver settings measured on the bundled model, where ``balanced`` equals 50 Euler
steps within the sampling noise (docs/performance.md); ``reference`` is the reference's sampling. None
turns on step caching, whose threshold is calibrated per model."""

DEFAULT_KEYS: tuple[str, ...] = tuple(FALLBACKS)
"""The settings a model folder's ``defaults`` may set; it may also hold ``presets``, a table of quality
name -> values of ``PRESET_KEYS``."""

MIN_BPM, MAX_BPM = 20.0, 400.0
"""The tempi accepted as an explicit ``bpm`` (and read from prompts)."""

MIN_DURATION = 0.01
"""The shortest clip, in seconds (one log-mel frame)."""

MAX_SEED = 2**63 - 1
"""Seeds are non-negative 63-bit integers (row i of a batch uses ``seed + i``)."""


class SettingsError(InputError):
    """A sampling setting out of range. ``setting`` is the field's name; the message starts with it.

    The command line reports it under its flag (``--steps must be >= 1, got 0``).
    """

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting} {reason}")
        self.setting, self.reason = setting, reason


def _integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise SettingsError(name, f"must be {bound}, got {value}")
    return value


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SettingsError(name, f"must be a finite number, got {value}")
    return value


def _bpm(value: Any) -> float | None:
    if value is None:
        return None
    bpm = _real("bpm", value)
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise SettingsError("bpm", f"must be between {MIN_BPM:g} and {MAX_BPM:g}, got {bpm:g}")
    return bpm


def _cache_threshold(value: Any) -> float:
    try:
        return check_threshold(_real("cache_threshold", value))
    except InputError as err:
        raise SettingsError("cache_threshold", str(err).removeprefix("cache threshold ")) from None


def _texts(name: str, value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"{name} must be a string or a non-empty list of strings, got {value!r}")


@dataclass(frozen=True)
class SampleSettings:
    """The resolved settings of one generation request.

    Attributes:
        duration: Seconds of audio per clip.
        steps: Sampler steps (network evaluations: ``steps * EVALS_PER_STEP[sampler]``).
        guidance: Classifier-free guidance scale (1 = the conditional velocity alone).
        sampler: One of ``fluxmusic.flow.SAMPLERS``.
        guidance_interval: ``(lo, hi)``: guide only at ``lo <= t <= hi`` (t = 1 is noise); ``None``: always.
        guidance_eta: Weight of the guidance update's part along the denoised estimate (1 = plain).
        shift: Time-grid shift (1 = uniform, the reference's).
        negative_prompt: The unconditional branch's prompt: one for all, or one per prompt.
        cache_threshold: Step caching (``fluxmusic.flow.cache``): reuse the transformer blocks' residual
            while the first block's input has changed by less than this (accumulated relative L1) since
            they last ran; 0 = off.
        seed: Seed of the first clip's noise (clip i uses ``seed + i``); ``None`` when a generator was used.
        bpm: For models with a tempo input: one tempo, one per prompt (``None`` entries: read from the
            prompt), or ``None`` (read each prompt).
    """

    duration: float
    steps: int = FALLBACKS["steps"]
    guidance: float = FALLBACKS["guidance"]
    sampler: str = FALLBACKS["sampler"]
    guidance_interval: tuple[float, float] | None = None
    guidance_eta: float = FALLBACKS["guidance_eta"]
    shift: float = FALLBACKS["shift"]
    negative_prompt: str | tuple[str, ...] = ""
    cache_threshold: float = FALLBACKS["cache_threshold"]
    seed: int | None = None
    bpm: float | tuple[float | None, ...] | None = None

    def __post_init__(self) -> None:
        duration = _real("duration", self.duration)
        if duration < MIN_DURATION:
            raise SettingsError(
                "duration",
                f"must be a positive number of seconds (at least {MIN_DURATION:g}), got {duration:g}",
            )
        if not isinstance(self.sampler, str) or self.sampler not in SAMPLERS:
            raise SettingsError(
                "sampler", f"{self.sampler!r} is unknown; choose one of {', '.join(SAMPLERS)}"
            )
        shift = _real("shift", self.shift)
        if shift <= 0:
            raise SettingsError("shift", f"must be a positive number (1 = uniform), got {shift:g}")
        interval = check_interval(self.guidance_interval)
        if isinstance(self.bpm, (str, bytes)) or not isinstance(
            self.bpm, (Sequence, type(None), numbers.Real)
        ):
            raise TypeError(f"bpm must be a number, a list of numbers or None, got {self.bpm!r}")
        bpm = tuple(_bpm(b) for b in self.bpm) if isinstance(self.bpm, Sequence) else _bpm(self.bpm)
        resolved = {
            "duration": duration,
            "steps": _integer("steps", self.steps, 1),
            "guidance": _real("guidance", self.guidance),
            "guidance_interval": interval,
            "guidance_eta": check_eta(self.guidance_eta),
            "shift": shift,
            "negative_prompt": _texts("negative_prompt", self.negative_prompt),
            "cache_threshold": _cache_threshold(self.cache_threshold),
            "seed": None if self.seed is None else _integer("seed", self.seed, 0, MAX_SEED),
            "bpm": bpm,
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)

    @classmethod
    def resolve(
        cls,
        defaults: Mapping[str, Any] | None = None,
        *,
        default_duration: float,
        max_duration: float = math.inf,
        quality: str | None = None,
        **given: Any,
    ) -> SampleSettings:
        """Merge the caller's values (``None`` = not given) over a quality preset, a model's ``defaults``
        and the fallbacks.

        Args:
            defaults: The model folder's defaults (keys of ``DEFAULT_KEYS``).
            default_duration: The model's clip length, used when no duration is given.
            max_duration: The longest duration the model allows.
            quality: One of ``QUALITIES`` (:func:`preset_values`); ``None``: the model's defaults.
            **given: Field values; ``None`` means "not given".

        Raises:
            TypeError: an unknown argument or a value of the wrong type.
            ValueError: a value out of range (the message names it).
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise TypeError(f"unknown sampling settings {unknown}; use {', '.join(sorted(names))}")
        checked = check_defaults(defaults or {})
        preset = preset_values(checked, quality)
        checked.pop("presets", None)
        values = {**FALLBACKS, **checked, **preset, "duration": default_duration}
        values.update({k: v for k, v in given.items() if v is not None})
        settings = cls(**values)
        if settings.duration > max_duration:
            raise SettingsError(
                "duration",
                f"must be in (0, {max_duration:g}] seconds for this model, got {settings.duration:g}",
            )
        return settings

    def with_seed(self, seed: int | None) -> SampleSettings:
        """A copy with ``seed`` (e.g. the one drawn when none was given)."""
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists), as written to sidecars."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleSettings:
        """Rebuild from :meth:`to_dict` output (e.g. a sidecar); keys that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**values)


SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SampleSettings))
"""The field names, in order (``pipe(...)`` takes a keyword argument of each name)."""


def preset_values(defaults: Mapping[str, Any] | None, quality: str | None) -> dict[str, Any]:
    """The settings a quality preset sets: the model's ``defaults["presets"][quality]``, else
    :data:`FALLBACK_PRESETS` (``{}`` for ``quality=None``).

    Raises:
        SettingsError: an unknown quality name.
    """
    if quality is None:
        return {}
    if quality not in QUALITIES:
        raise SettingsError("quality", f"{quality!r} is unknown; choose one of {', '.join(QUALITIES)}")
    presets = (defaults or {}).get("presets") or {}
    return dict(presets[quality] if quality in presets else FALLBACK_PRESETS[quality])


def _check_presets(presets: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(presets, Mapping) or not all(isinstance(v, Mapping) for v in presets.values()):
        raise InputError(f"{where}: presets must be a table of quality name -> settings, got {presets!r}")
    unknown = sorted(set(presets) - set(QUALITIES))
    if unknown:
        raise InputError(f"{where}: unknown quality presets {unknown}; use {', '.join(QUALITIES)}")
    out = {}
    for name, preset in presets.items():
        bad = sorted(set(preset) - set(PRESET_KEYS))
        if bad:
            allowed = ", ".join(PRESET_KEYS)
            raise InputError(f"{where}: preset {name!r} sets {bad}; a preset may set only {allowed}")
        try:
            checked = SampleSettings(duration=1.0, **dict(preset))
        except (TypeError, ValueError) as err:
            raise InputError(f"{where}: preset {name!r}: {err}") from None
        out[name] = {k: getattr(checked, k) for k in preset}
    return out


def check_defaults(defaults: Mapping[str, Any], where: str = "defaults") -> dict[str, Any]:
    """Validate a model folder's ``defaults`` table; returns it with values normalised.

    Raises:
        ValueError: an unknown key or a bad value, naming ``where``.
    """
    if not isinstance(defaults, Mapping):
        raise InputError(f"{where} must be a table of sampling settings, got {type(defaults).__name__}")
    unknown = sorted(set(defaults) - {*DEFAULT_KEYS, "presets"})
    if unknown:
        known = ", ".join((*DEFAULT_KEYS, "presets"))
        raise InputError(f"{where}: unknown sampling defaults {unknown}; use {known}")
    plain = {k: v for k, v in defaults.items() if k != "presets"}
    try:
        checked = SampleSettings(duration=1.0, **plain)
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: {err}") from None
    out: dict[str, Any] = {k: getattr(checked, k) for k in plain}
    if "presets" in defaults:
        out["presets"] = _check_presets(defaults["presets"], where)
    if out.get("guidance_interval") is not None:
        out["guidance_interval"] = list(out["guidance_interval"])
    return out
