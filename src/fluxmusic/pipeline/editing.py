"""Editing audio with any text-to-music model, training-free: variation and inpainting.

**Variation** (audio-to-audio): the input's VAE latent mean ``x0`` is noised to the start time
``s = strength``, ``x_s = (1 - s) x0 + s eps``, and integrated from ``s`` to 0 with all the steps spent
inside ``[s, 0]`` (``fluxmusic.flow.sample(t_start=s)``). ``s = 1`` is text-to-music, bit for bit.

**Inpainting**: from pure noise ``eps``, after every step to ``t'`` the latent frames to keep are set to
``(1 - t') x0 + t' eps`` with the same ``eps`` (the diffusers Flux-inpaint rule), through a mask whose
edge ramps over a few latent frames. The output holds the input's own samples outside the regions, the
generated audio (brought to the input's level) inside, joined by equal-power crossfades
(:mod:`fluxmusic.pipeline.joins`). Inputs longer than the model's trained window are inpainted in windows
of that length around the regions.

Input audio (any format soundfile reads, any rate, any channels) is resampled to the model's rate and
mixed to mono; its copy for the VAE is peak-normalised as in training (``fluxmusic.audio.clips``).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from fluxmusic.audio.clips import SILENCE_THRESHOLD, SilentAudioError, fit_frames, normalize_peak
from fluxmusic.audio.io import audio_info, read_audio
from fluxmusic.audio.mel import HOP_LENGTH, log_mel
from fluxmusic.errors import InputError
from fluxmusic.files import sha256_file
from fluxmusic.model import pack
from fluxmusic.pipeline.edit_inputs import (
    DEFAULT_RUN,
    MIN_INPUT_SECONDS,
    EditRun,
    EditSettings,
    SourceAudio,
    check_regions,
    check_strength,
)
from fluxmusic.pipeline.joins import level_gain, region_weights, splice
from fluxmusic.pipeline.outputs import AudioOutput
from fluxmusic.pipeline.prepare import Request, Stages, prepare
from fluxmusic.sampling import SampleSettings

__all__ = [
    "AudioLike",
    "InputAudio",
    "as_input",
    "encode_latent",
    "frame_samples",
    "inpaint",
    "load_input",
    "output_mels",
    "pinned_denoise",
    "vary",
]


@dataclass(frozen=True)
class InputAudio:
    """An edit's input: its mono waveform at the model's rate (as read, not normalised) and identity.

    Shapes:
        waveform: (S,) float32.
    """

    waveform: Tensor
    source: SourceAudio

    @property
    def seconds(self) -> float:
        """Length in seconds at the model's rate."""
        return self.source.seconds


AudioLike = str | os.PathLike | Tensor | InputAudio
"""What the edits take as input: a file, a mono waveform at the model's rate, or a loaded input."""


def _check_sound(waveform: Tensor, name: str) -> None:
    if waveform.shape[0] < 1 or not bool(torch.isfinite(waveform).all()):
        raise InputError(f"{name}: the audio is empty or holds NaN/Inf samples; give a valid recording")
    peak = float((waveform - waveform.mean()).abs().max())
    if peak <= SILENCE_THRESHOLD:
        raise SilentAudioError(f"{name}: the audio is silent (peak {peak:.3g}); give a file with sound in it")


def load_input(path: str | os.PathLike[str], sample_rate: int) -> InputAudio:
    """Read an edit's input file: resampled to ``sample_rate``, channels averaged to mono.

    Raises:
        fluxmusic.audio.AudioFileError: missing, unreadable or empty file.
        fluxmusic.audio.SilentAudioError: silent audio.
        InputError: shorter than :data:`MIN_INPUT_SECONDS`.
    """
    info = audio_info(path)
    waveform = read_audio(path, sample_rate=sample_rate, channel=None)
    seconds = waveform.shape[0] / sample_rate
    if seconds < MIN_INPUT_SECONDS:
        raise InputError(f"{path}: is {seconds:.3f} s long; give at least {MIN_INPUT_SECONDS:g} s of audio")
    _check_sound(waveform, str(path))
    source = SourceAudio(Path(path).name, sha256_file(path), seconds, info.sample_rate, info.channels)
    return InputAudio(waveform, source)


def as_input(audio: AudioLike, sample_rate: int) -> InputAudio:
    """A file path, a mono waveform at ``sample_rate`` (named ``<waveform>``) or an :class:`InputAudio`."""
    if isinstance(audio, InputAudio):
        return audio
    if isinstance(audio, (str, os.PathLike)):
        return load_input(audio, sample_rate)
    if isinstance(audio, Tensor):
        waveform = (
            audio.detach().float().cpu().reshape(-1) if audio.dim() <= 1 or audio.shape[0] == 1 else None
        )
        if waveform is None:
            raise InputError(f"give one mono waveform (S,), got shape {tuple(audio.shape)}")
        _check_sound(waveform, "<waveform>")
        digest = hashlib.sha256(waveform.numpy().tobytes()).hexdigest()
        seconds = waveform.shape[0] / sample_rate
        if seconds < MIN_INPUT_SECONDS:
            raise InputError(f"the waveform is {seconds:.3f} s; give at least {MIN_INPUT_SECONDS:g} s")
        return InputAudio(waveform, SourceAudio("<waveform>", digest, seconds, sample_rate, 1))
    raise TypeError(
        f"audio must be a file path, a waveform tensor or an InputAudio, got {type(audio).__name__}"
    )


def frame_samples(pipe: Stages) -> int:
    """Audio samples per latent frame (VAE downsampling x hop length; 640 = 40 ms at 16 kHz)."""
    return pipe.vae.downsample * HOP_LENGTH


def encode_latent(pipe: Stages, waveform: Tensor, frames: int) -> Tensor:
    """Peak-normalise each row (training rule), log-mel, fit to ``frames`` mel frames, VAE posterior mean.

    Shapes:
        waveform: (B, S) at 16 kHz -> (B, C, frames / downsample, 64 / downsample), on the pipeline's device.
    """
    rows = []
    for row in waveform.float().cpu():
        try:
            rows.append(normalize_peak(row))
        except SilentAudioError:  # a silent stretch (e.g. a pause in the context): encode it as it is
            rows.append(row - row.mean())
    mel = fit_frames(log_mel(torch.stack(rows)), frames)[:, None]
    with torch.inference_mode():
        return pipe.vae.encode(mel.to(pipe.device)).mode().float()


def pinned_denoise(
    pipe: Stages, req: Request, x0: Tensor, keep: Tensor, noise: Tensor, tempo: Tensor | None, progress: bool
) -> Tensor:
    """Integrate from noise with the kept latent frames pinned to ``(1 - t') x0 + t' eps`` after every step.

    Args:
        x0: The known latent (rows broadcast over the batch).
        keep: Per latent frame, 1 = keep ``x0``, 0 = generate, between = blend (the soft edge).
        noise: ``eps``, the starting state and the noise of the pinned frames.

    Shapes:
        x0: (B or 1, C, T', F'); keep: (T',); noise: (B, C, T', F') -> latent (B, C, T', F').
    """
    patch = pipe.transformer.config.patch_size
    mask = pack(keep.to(noise.device).view(1, 1, -1, 1).expand_as(noise).contiguous(), patch)
    known, eps = pack(x0.to(noise.device).expand_as(noise).contiguous(), patch), pack(noise, patch)

    def pin(i: int, t: float, t_next: float, x: Tensor) -> Tensor:
        return mask * ((1.0 - t_next) * known + t_next * eps) + (1.0 - mask) * x

    return pipe.denoise(noise, req.emb, tempo, req.settings, progress=progress, callback=pin)


def output_mels(pipe: Stages, waveforms: Tensor, duration: float) -> Tensor:
    """The log-mel of the output audio itself (kept input samples included), fitted like a decode's.

    Shapes:
        waveforms: (B, S) -> (B, latent_frames(duration), 64).
    """
    return fit_frames(log_mel(waveforms), pipe.latent_frames(duration))


def _check_one_window(pipe: Stages, source: InputAudio, what: str) -> None:
    limit = pipe.spec.max_duration
    if source.seconds > limit + 1e-9:
        raise InputError(
            f"{source.source.file} is {source.seconds:.2f} s; {what} works on up to {limit:g} s with this "
            "model; trim the input"
        )


def vary(
    pipe: Stages,
    audio: AudioLike,
    prompt: str | list[str],
    settings: SampleSettings,
    strength: float,
    run: EditRun = DEFAULT_RUN,
) -> AudioOutput:
    """A variation of ``audio`` towards ``prompt`` (see the module docstring); output as long as the input.

    Raises:
        InputError: strength outside (0, 1], unreadable, silent or too long input, bad settings.
    """
    strength = check_strength(strength)
    source = as_input(audio, pipe.sample_rate)
    _check_one_window(pipe, source, "variation")
    req = prepare(pipe, prompt, replace(settings, duration=source.seconds), run.num_per_prompt, run.generator)
    frames = pipe.latent_frames(req.settings.duration)
    noise = req.noise(pipe, frames)
    state = noise
    if strength < 1.0:
        x0 = encode_latent(pipe, source.waveform[None], frames)
        state = (1.0 - strength) * x0 + strength * noise
    latent = pipe.denoise(state, req.emb, req.tempo, req.settings, progress=run.progress, t_start=strength)
    waveforms, mels = pipe.decode(latent, round(req.settings.duration * pipe.sample_rate))
    return req.output(waveforms, mels, pipe.sample_rate, EditSettings("variation", source.source, strength))


def inpaint_windows(
    pipe: Stages, num_samples: int, spans: list[tuple[int, int]]
) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Where to inpaint: the whole input when it fits the trained window (or a region is too long for
    one), else one window of the trained length around each group of nearby regions.

    Returns:
        ``(start, end, regions relative to start)`` per window, in samples.

    Raises:
        InputError: a region too long for a window in an input longer than the model's maximum.
    """
    window = pipe.latent_frames(pipe.spec.default_duration) * HOP_LENGTH
    if num_samples <= window:
        return [(0, num_samples, spans)]
    room = window - 2 * (window // 8)  # at least an eighth of a window of context on each side
    if any(end - start > room for start, end in spans):
        if num_samples > pipe.spec.max_duration * pipe.sample_rate + 1:
            raise InputError(
                f"regions longer than {room / pipe.sample_rate:.2f} s can only be inpainted in audio of up "
                f"to {pipe.spec.max_duration:g} s with this model; split the region or trim the input"
            )
        return [(0, num_samples, spans)]
    groups: list[list[tuple[int, int]]] = []
    for span in spans:
        if groups and span[1] - groups[-1][0][0] <= room:
            groups[-1].append(span)
        else:
            groups.append([span])
    out = []
    for group in groups:
        centre = (group[0][0] + group[-1][1]) // 2
        start = min(max(0, centre - window // 2), num_samples - window)
        out.append((start, start + window, [(a - start, b - start) for a, b in group]))
    return out


def inpaint(
    pipe: Stages,
    audio: AudioLike,
    prompt: str | list[str],
    settings: SampleSettings,
    regions: list[tuple[float, float]] | list[str],
    run: EditRun = DEFAULT_RUN,
) -> AudioOutput:
    """Regenerate ``regions`` ((start, end) seconds, or ``"START:END"`` strings) of ``audio``, keep the rest.

    Raises:
        InputError: regions outside the audio, empty or overlapping; unreadable or silent input.
    """
    source = as_input(audio, pipe.sample_rate)
    regions = check_regions(regions, source.seconds)
    edit = EditSettings(
        "inpaint", source.source, regions=regions, crossfade=run.crossfade, mask_edge=run.mask_edge
    )
    req = prepare(pipe, prompt, replace(settings, duration=source.seconds), run.num_per_prompt, run.generator)
    rate, spl = pipe.sample_rate, frame_samples(pipe)
    total = source.waveform.shape[0]
    spans = [(round(a * rate), min(total, round(b * rate))) for a, b in regions]
    out = source.waveform.expand(req.batch, total).clone()
    windows = inpaint_windows(pipe, total, spans)
    for k, (start, end, inner) in enumerate(windows):
        length = end - start
        frames = pipe.latent_frames(length / rate)
        t_lat = frames // pipe.vae.downsample
        generate = [(a // spl, math.ceil(b / spl)) for a, b in inner]
        if math.ceil(length / spl) < t_lat:  # frames past the input's end (packing's padding): generated
            generate.append((math.ceil(length / spl), t_lat))
        keep = 1.0 - region_weights(t_lat, generate, edit.mask_edge)
        segment = out[:, start:end]
        x0 = encode_latent(pipe, segment, frames)
        noise = req.noise(pipe, frames, window=k)
        latent = pinned_denoise(pipe, req, x0, keep, noise, req.tempo_at(start / rate), run.progress)
        generated, _ = pipe.decode(latent, length)
        weight = region_weights(length, inner, round(edit.crossfade * rate))
        generated = (generated * level_gain(segment, generated, weight == 0)).clamp(-1, 1)
        out[:, start:end] = splice(segment, generated, weight)
    edit = replace(edit, windows=len(windows))
    return req.output(out, output_mels(pipe, out, source.seconds), rate, edit)
