"""Pieces longer than the model's trained window, and continuations of given audio, window by window.

Every window is at most the trained length (5.12 s for the bundled model, 10.24 s for the released
ones), so positions never leave the range the model was trained on and the cost grows linearly with
the duration. A window is inpainting (:func:`fluxmusic.pipeline.editing.pinned_denoise`) of a latent
whose first frames are known: the last ``overlap`` seconds of the audio so far (more when the rest of
the piece fits in the window). Their latent is the previous window's own (or, for a continuation's
first window, the input's VAE encoding); the new audio is brought to the level of the audio so far and
joined with an equal-power crossfade at the end of the context
(:func:`fluxmusic.pipeline.joins.append_window`).
The first window of a long piece is plain text-to-music, so it starts as ``pipe(duration=window)`` does.
With a tempo input, each window's beat phase continues the piece's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from fluxmusic.pipeline.edit_inputs import (
    DEFAULT_RUN,
    LONG_FORM_MAX_SECONDS,
    EditRun,
    EditSettings,
    SourceAudio,
    check_total_duration,
)
from fluxmusic.pipeline.editing import (
    AudioLike,
    as_input,
    encode_latent,
    frame_samples,
    output_mels,
    pinned_denoise,
)
from fluxmusic.pipeline.joins import append_window, region_weights
from fluxmusic.pipeline.outputs import AudioOutput
from fluxmusic.pipeline.prepare import Request, Stages, prepare
from fluxmusic.sampling import SampleSettings, SettingsError

__all__ = [
    "Window",
    "continuation",
    "crossfade_end",
    "default_overlap",
    "extend",
    "join_samples",
    "long_form",
    "plan_windows",
]


@dataclass(frozen=True)
class Window:
    """One window of a piece, in latent frames: ``context`` known, then ``new``; ``frames`` in all
    (``context + new`` rounded up to the transformer's patch)."""

    context: int
    new: int
    frames: int


def default_overlap(pipe: Stages) -> float:
    """Seconds of context each window continues: half the trained window (2.56 s bundled)."""
    return pipe.spec.default_duration / 2


def plan_windows(start: int, total: int, window: int, overlap: int, frame: int, patch: int) -> list[Window]:
    """The windows that take audio of ``start`` samples to ``total`` samples.

    Args:
        start: Samples so far (the input, or the first window).
        total: Samples wanted.
        window: Latent frames of a full window (a multiple of ``patch``).
        overlap: Latent frames of context a window continues (< ``window``).
        frame: Samples per latent frame.
        patch: The transformer's patch size.

    Returns:
        One :class:`Window` per window; their count grows linearly with ``total - start``.
    """
    plan, length = [], start
    while length < total:
        need = math.ceil((total - length) / frame)
        context = min(length // frame, max(overlap, window - need))
        new = min(need, window - context)
        frames = patch * math.ceil((context + new) / patch)
        plan.append(Window(context, new, frames))
        length += frames * frame - context * frame
    return plan


def crossfade_end(context: int, fade: int, start: int, protect: int = 0) -> int:
    """Where a window's crossfade ends, in samples into its ``context`` (which starts at sample ``start`` of
    the piece): the middle of the context, away from the decoding edge at the previous window's end, but
    never starting before sample ``protect`` (an input kept exactly; then at the context's end)."""
    return min(context, max((context + fade) // 2, protect - start + fade))


def join_samples(plan: list[Window], start: int, frame: int, fade: int, protect: int = 0) -> list[int]:
    """The centre of each window's crossfade, in samples of the piece (for measuring the joins)."""
    joins, length = [], start
    for win in plan:
        context = win.context * frame
        begin = length - context
        joins.append(begin + crossfade_end(context, fade, begin, protect) - fade // 2)
        length = begin + win.frames * frame
    return joins


def _overlap_frames(pipe: Stages, overlap: float | None) -> tuple[float, int, int]:
    window = pipe.latent_frames(pipe.spec.default_duration) // pipe.vae.downsample
    seconds = default_overlap(pipe) if overlap is None else overlap
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise SettingsError("overlap", f"must be a number of seconds, got {seconds!r}")
    frames = round(seconds * pipe.sample_rate / frame_samples(pipe))
    if not 0 <= frames < window:
        limit = window * frame_samples(pipe) / pipe.sample_rate
        raise SettingsError(
            "overlap", f"must be in [0, {limit:g}) seconds (the model's window), got {seconds:g}"
        )
    return frames * frame_samples(pipe) / pipe.sample_rate, frames, window


def extend(
    pipe: Stages,
    req: Request,
    audio: Tensor,
    latent: Tensor | None,
    total: int,
    overlap: int,
    run: EditRun = DEFAULT_RUN,
    first_window: int = 1,
    keep_input: bool = False,
) -> tuple[Tensor, int]:
    """Continue ``audio`` to ``total`` samples window by window (see the module docstring).

    Args:
        audio: The piece so far (every row kept exactly up to the first crossfade).
        latent: The latent whose last frames are ``audio``'s last frames (the previous window's), or
            None to encode ``audio``'s tail.
        overlap: Latent frames of context per window.
        first_window: Index of the first new window (its noise seeds derive from it).
        keep_input: ``audio`` is an input to keep: no crossfade starts inside it, except the first, which
            ends where it ends. Other crossfades lie in the middle of their context, away from the
            decoding edge at the end of the previous window.

    Returns:
        The audio, exactly ``total`` samples, and the number of windows generated.

    Shapes:
        audio: (B, S); latent: (B, C, T', F') -> (B, total).
    """
    frame, d = frame_samples(pipe), pipe.vae.downsample
    window = pipe.latent_frames(pipe.spec.default_duration) // d
    patch = pipe.transformer.config.patch_size
    plan = plan_windows(audio.shape[1], total, window, overlap, frame, patch)
    rate, fade, progress = pipe.sample_rate, round(run.crossfade * pipe.sample_rate), run.progress
    protect = audio.shape[1] if keep_input else 0  # samples no crossfade may start in
    for k, win in enumerate(tqdm(plan, desc="windows", disable=not progress or len(plan) < 2)):
        context = win.context * frame
        if latent is not None and win.context <= latent.shape[2]:
            known = latent[:, :, latent.shape[2] - win.context :]
        else:
            known = encode_latent(pipe, audio[:, audio.shape[1] - context :], win.context * d)
        noise = req.noise(pipe, win.frames * d, window=first_window + k)
        x0 = torch.zeros_like(noise)
        x0[:, :, : win.context] = known.to(x0.device)
        keep = 1.0 - region_weights(win.frames, [(win.context, win.frames)], run.mask_edge)
        tempo = req.tempo_at((audio.shape[1] - context) / rate)  # the window starts there
        latent = pinned_denoise(pipe, req, x0, keep, noise, tempo, progress=progress and len(plan) < 2)
        decoded, _ = pipe.decode(latent, win.frames * frame)
        end = crossfade_end(context, fade, audio.shape[1] - context, protect)
        audio = append_window(audio, decoded, context, fade, end)
    return audio[:, :total], len(plan)


def _check_max(duration: float) -> None:
    if duration > LONG_FORM_MAX_SECONDS:
        raise SettingsError(
            "duration", f"must be at most {LONG_FORM_MAX_SECONDS:g} seconds, got {duration:g}"
        )


def long_form(
    pipe: Stages,
    prompt: str | list[str],
    settings: SampleSettings,
    overlap: float | None = None,
    run: EditRun = DEFAULT_RUN,
) -> AudioOutput:
    """Text-to-music of ``settings.duration`` seconds, window by window above the trained window (up to
    :data:`~fluxmusic.pipeline.edit_inputs.LONG_FORM_MAX_SECONDS`); within it, plain text-to-music.

    Raises:
        SettingsError: a duration above the maximum or an overlap outside [0, window).
    """
    _check_max(settings.duration)
    seconds, frames, window = _overlap_frames(pipe, overlap)
    req = prepare(pipe, prompt, settings, run.num_per_prompt, run.generator)
    rate, d = pipe.sample_rate, pipe.vae.downsample
    total = round(settings.duration * rate)
    within = settings.duration <= pipe.spec.default_duration
    frames_now = pipe.latent_frames(settings.duration) if within else window * d
    latent = pipe.denoise(
        req.noise(pipe, frames_now), req.emb, req.tempo, req.settings, progress=run.progress
    )
    if within:
        return req.output(*pipe.decode(latent, total), rate)
    first, _ = pipe.decode(latent, window * frame_samples(pipe))
    audio, count = extend(pipe, req, first, latent, total, frames, run)
    return req.output(
        audio,
        output_mels(pipe, audio, settings.duration),
        rate,
        _record("long-form", None, seconds, 1 + count, run),
    )


def _record(
    operation: str, source: SourceAudio | None, overlap: float, windows: int, run: EditRun
) -> EditSettings:
    return EditSettings(
        operation, source, overlap=overlap, windows=windows, crossfade=run.crossfade, mask_edge=run.mask_edge
    )


def continuation(
    pipe: Stages,
    audio: AudioLike,
    prompt: str | list[str],
    settings: SampleSettings,
    overlap: float | None = None,
    run: EditRun = DEFAULT_RUN,
) -> AudioOutput:
    """``audio`` followed by new music continuing it, ``settings.duration`` seconds in all (input included).

    Raises:
        SettingsError: a total not longer than the input or above the maximum; a bad overlap.
        InputError: unreadable or silent input.
    """
    source = as_input(audio, pipe.sample_rate)
    duration = check_total_duration(settings.duration, source.seconds)
    seconds, frames, _ = _overlap_frames(pipe, overlap)
    req = prepare(pipe, prompt, replace(settings, duration=duration), run.num_per_prompt, run.generator)
    total = round(duration * pipe.sample_rate)
    start = source.waveform.expand(req.batch, -1).clone()
    out, count = extend(pipe, req, start, None, total, frames, run, first_window=0, keep_input=True)
    edit = _record("continuation", source.source, seconds, count, run)
    return req.output(out, output_mels(pipe, out, duration), pipe.sample_rate, edit)
