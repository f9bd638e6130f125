"""Reconstruction metrics for vocoders and the mel VAE (how close is the round trip to the real clip).

Vocoders are phase-free (they only see a magnitude spectrogram), so waveform metrics such as SI-SDR say
little; every metric here compares magnitude spectra and is 0 for identical inputs:

- ``log_mel_l1``: mean |log_mel(ref) - log_mel(est)| with the AudioLDM2 front end (log-mel nats); the
  VAE round trip is measured with the same number on log-mels directly.
- ``spectral_convergence``: ||S_ref - S_est||_F / ||S_ref||_F of STFT magnitudes, averaged over
  resolutions (n_fft 512/1024/2048, hop n_fft / 4).
- ``log_stft_l1``: mean |log S_ref - log S_est| over the same resolutions (magnitudes floored at 1e-5).

:func:`reconstruction_report` measures vocoders and the VAE on the same held-out clips; its command line
(prints one JSON line per system, writes a JSON table)::

    fluxmusic evaluate reconstruction --data /work/data/demo --vae RUN/final \
        --vocoder RUN/final --griffin-lim 32 64 --clips 64 --out eval.json
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.audio import HOP_LENGTH, log_mel
from fluxmusic.errors import MissingFilesError

logger = logging.getLogger(__name__)

RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))
"""(n_fft, hop) pairs of the multi-resolution metrics; the window is a periodic Hann of n_fft."""
FLOOR = 1e-5


def _pair(reference: Tensor, estimate: Tensor) -> tuple[Tensor, Tensor]:
    if reference.shape != estimate.shape or reference.dim() != 2:
        raise ValueError(
            f"reference and estimate must both be (B, S), got {tuple(reference.shape)} and "
            f"{tuple(estimate.shape)}"
        )
    return reference.double(), estimate.double()


def _magnitude(waveform: Tensor, n_fft: int, hop: int) -> Tensor:
    window = torch.hann_window(n_fft, periodic=True, dtype=waveform.dtype, device=waveform.device)
    spec = torch.stft(
        waveform, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    return spec.abs()


def _multi_resolution(
    reference: Tensor,
    estimate: Tensor,
    resolutions: Sequence[tuple[int, int]],
    metric: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """``metric(|STFT(reference)|, |STFT(estimate)|)`` (per item) averaged over the resolutions."""
    reference, estimate = _pair(reference, estimate)
    values = [
        metric(_magnitude(reference, n_fft, hop), _magnitude(estimate, n_fft, hop))
        for n_fft, hop in resolutions
    ]
    return torch.stack(values).mean(0)


def log_mel_l1(reference: Tensor, estimate: Tensor) -> Tensor:
    """Mean absolute difference of AudioLDM2 log-mels, per item.

    Shapes:
        reference, estimate: (B, S) at 16 kHz
        output: (B,)
    """
    reference, estimate = _pair(reference, estimate)
    return (log_mel(reference) - log_mel(estimate)).abs().mean(dim=(1, 2))


def spectral_convergence(
    reference: Tensor, estimate: Tensor, resolutions: Sequence[tuple[int, int]] = RESOLUTIONS
) -> Tensor:
    """Multi-resolution spectral convergence ||S_ref - S_est||_F / ||S_ref||_F, per item.

    Shapes:
        reference, estimate: (B, S)
        output: (B,)
    """

    def convergence(ref: Tensor, est: Tensor) -> Tensor:
        return (ref - est).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1).clamp(min=FLOOR)

    return _multi_resolution(reference, estimate, resolutions, convergence)


def log_stft_l1(
    reference: Tensor, estimate: Tensor, resolutions: Sequence[tuple[int, int]] = RESOLUTIONS
) -> Tensor:
    """Multi-resolution mean |log S_ref - log S_est| (magnitudes floored at 1e-5), per item.

    Shapes:
        reference, estimate: (B, S)
        output: (B,)
    """

    def log_l1(ref: Tensor, est: Tensor) -> Tensor:
        return (ref.clamp(min=FLOOR).log() - est.clamp(min=FLOOR).log()).abs().flatten(1).mean(1)

    return _multi_resolution(reference, estimate, resolutions, log_l1)


@dataclass(frozen=True)
class Reconstruction:
    """Means over the evaluated clips (lower is better) and the cost.

    Attributes:
        log_mel_l1: Log-mel L1 (nats).
        spectral_convergence: Multi-resolution spectral convergence.
        log_stft_l1: Multi-resolution log-magnitude L1.
        clips: Number of clips.
        seconds_per_audio_second: Wall time to produce one second of audio (on this machine).
    """

    log_mel_l1: float
    spectral_convergence: float
    log_stft_l1: float
    clips: int
    seconds_per_audio_second: float


def _summarise(reference: Tensor, estimate: Tensor, elapsed: float) -> Reconstruction:
    audio_seconds = reference.numel() / 16000
    return Reconstruction(
        log_mel_l1=float(log_mel_l1(reference, estimate).mean()),
        spectral_convergence=float(spectral_convergence(reference, estimate).mean()),
        log_stft_l1=float(log_stft_l1(reference, estimate).mean()),
        clips=reference.shape[0],
        seconds_per_audio_second=elapsed / audio_seconds,
    )


@torch.no_grad()
def evaluate_vocoder(
    vocoder: Callable[..., Tensor], waveforms: Tensor, mels: Tensor, batch_size: int = 8
) -> Reconstruction:
    """Vocode the clips' own log-mels and compare with the clips.

    Args:
        vocoder: Any :class:`fluxmusic.audio.Vocoder`.
        waveforms: Real clips.
        mels: Their log-mels (``clip_log_mel``), T = S / 160 frames.
        batch_size: Clips per vocoder call.

    Shapes:
        waveforms: (B, S)
        mels: (B, S / 160, 64)
    """
    if mels.shape[1] * HOP_LENGTH != waveforms.shape[1]:
        raise ValueError(f"{mels.shape[1]} frames do not match {waveforms.shape[1]} samples (hop 160)")
    start = time.perf_counter()
    out = [
        vocoder(m, num_samples=w.shape[1]).float().cpu()
        for m, w in zip(mels.split(batch_size), waveforms.split(batch_size))
    ]
    return _summarise(waveforms, torch.cat(out), time.perf_counter() - start)


@torch.no_grad()
def vae_round_trip(vae: torch.nn.Module, mels: Tensor, batch_size: int = 8) -> Tensor:
    """``vae.decode(vae.encode(mel).mode())`` for every clip (the deterministic round trip).

    Shapes:
        mels: (B, T, 64)
        output: (B, T, 64)
    """
    out = [vae.decode(vae.encode(m[:, None]).mode())[:, 0].float() for m in mels.split(batch_size)]
    return torch.cat(out)


@torch.no_grad()
def evaluate_vae(
    vae: torch.nn.Module,
    waveforms: Tensor,
    mels: Tensor,
    vocoder: Callable[..., Tensor] | None = None,
    batch_size: int = 8,
) -> dict[str, float]:
    """VAE round-trip quality: log-mel L1 of the round trip, and with a vocoder the whole chain's audio.

    Returns:
        ``{"mel_l1": ...}`` plus, with ``vocoder``, ``log_mel_l1``, ``spectral_convergence`` and
        ``log_stft_l1`` of vocoder(round trip) against the real clips.

    Shapes:
        waveforms: (B, S)
        mels: (B, S / 160, 64)
    """
    recon = vae_round_trip(vae, mels, batch_size)
    result = {"mel_l1": float((recon - mels).abs().mean())}
    if vocoder is not None:
        report = evaluate_vocoder(vocoder, waveforms, recon, batch_size)
        result.update(
            {k: v for k, v in asdict(report).items() if k not in ("clips", "seconds_per_audio_second")}
        )
    return result


def reconstruction_report(
    data_dir: str | Path,
    split: str = "test",
    clips: int = 64,
    clip_seconds: float = 5.12,
    vae: str | Path | None = None,
    vocoders: Sequence[str | Path] = (),
    griffin_lim: Sequence[int] = (32, 64),
    on_result: Callable[[str, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Vocoders and the mel VAE measured on the same clips of a dataset.

    Every vocoder (Griffin-Lim at each ``n_iter``, each HiFi-GAN folder) vocodes the clips' own log-mels;
    with a VAE, its round trip is measured (``vae``: log-mel L1) and then vocoded by each vocoder
    (``vae+NAME``).

    Args:
        data_dir: Dataset root with ``SPLIT.json`` (or a demo build's ``records/``).
        split: The split to read.
        clips: The first N clips of the split.
        clip_seconds: Clip length (the training-clip rules of :class:`fluxmusic.data.clip_bank.ClipBank`).
        vae: An ``AudioVAE`` folder.
        vocoders: ``HifiGanVocoder`` folders.
        griffin_lim: Griffin-Lim iteration counts.
        on_result: Called with each system's name and metrics as soon as they are known.

    Returns:
        ``{"clips": [paths], "results": {system: metrics}}``.

    Raises:
        fluxmusic.errors.MissingFilesError: No such dataset folder.
        ValueError: No clips in the split (:func:`fluxmusic.data.clip_bank.list_clips`).
    """
    from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder
    from fluxmusic.data.clip_bank import ClipBank, list_clips

    if not Path(data_dir).is_dir():
        raise MissingFilesError(f"{data_dir}: no such dataset folder")
    paths = list_clips(data_dir, split)[:clips]
    bank = ClipBank.load(data_dir, paths, clip_seconds)
    assert bank.waveforms is not None
    systems: dict[str, Callable[..., Tensor]] = {
        f"griffin_lim_{n}": GriffinLimVocoder(n_iter=n) for n in griffin_lim
    }
    for folder in vocoders:
        systems[f"hifigan:{folder}"] = HifiGanVocoder.from_pretrained(folder, subfolder=None).eval()
    model = None if vae is None else AudioVAE.from_pretrained(vae, subfolder=None).eval()  # fail before work
    results: dict[str, dict[str, float]] = {}

    def record(name: str, metrics: dict[str, float]) -> None:
        results[name] = metrics
        if on_result is not None:
            on_result(name, metrics)

    for name, vocoder in systems.items():
        record(name, asdict(evaluate_vocoder(vocoder, bank.waveforms, bank.mels)))
    if model is not None:
        recon = vae_round_trip(model, bank.mels)
        record("vae", {"mel_l1": float((recon - bank.mels).abs().mean())})
        for name, vocoder in systems.items():
            record(f"vae+{name}", asdict(evaluate_vocoder(vocoder, bank.waveforms, recon)))
    return {"clips": paths, "results": results}
