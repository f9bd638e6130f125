"""Vocoders: log-mel (B, T, 64) -> 16 kHz waveform (B, S).

Output length: a vocoder returns ``num_samples`` samples when asked, else ``hop_length * T`` (160 T; 10.24 s
= 1024 frames -> 163840 samples). HiFi-GAN natively produces a few samples more (1024 frames -> 163872,
from its transposed convolutions' padding); the surplus at the end is trimmed, as diffusers' AudioLDM2
pipeline trims to ``duration * 16000``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from fluxmusic.audio.clips import fit_length
from fluxmusic.audio.mel import HOP_LENGTH, N_FFT, SAMPLE_RATE, WIN_LENGTH, mel_basis
from fluxmusic.audio.pretrained import PretrainedComponent
from fluxmusic.errors import InputError

logger = logging.getLogger(__name__)

AUDIOLDM2_VOCODER_CONFIG: dict[str, Any] = {
    "model_in_dim": 64,
    "sampling_rate": 16000,
    "upsample_initial_channel": 1024,
    "upsample_rates": [5, 4, 2, 2, 2],
    "upsample_kernel_sizes": [16, 16, 8, 4, 4],
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "leaky_relu_slope": 0.1,
    "normalize_before": False,
    "initializer_range": 0.01,
}
"""``cvssp/audioldm2`` subfolder ``vocoder`` config (reference.md section 4); 55,264,897 parameters."""


@runtime_checkable
class Vocoder(Protocol):
    """Anything that turns time-major log-mel into a waveform at ``sample_rate``.

    Shapes:
        mel: (B, T, 64)
        output: (B, num_samples) or (B, hop_length * T) when ``num_samples`` is None
    """

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        ...

    def __call__(self, mel: Tensor, num_samples: int | None = None) -> Tensor:
        """Vocode ``mel``; see the class docstring for shapes."""
        ...


def _as_batch(mel: Tensor, n_mels: int) -> Tensor:
    if mel.dim() == 4 and mel.shape[1] == 1:
        mel = mel[:, 0]
    if mel.dim() != 3 or mel.shape[-1] != n_mels:
        raise ValueError(f"mel must be (B, T, {n_mels}) or (B, 1, T, {n_mels}), got {tuple(mel.shape)}")
    return mel


class HifiGanVocoder(PretrainedComponent, nn.Module):
    """The AudioLDM2 HiFi-GAN vocoder (transformers ``SpeechT5HifiGan``).

    Args:
        hifigan: The wrapped ``SpeechT5HifiGan``.
    """

    default_subfolder = "vocoder"
    weights_name = "model.safetensors"
    default_config = AUDIOLDM2_VOCODER_CONFIG
    inner_name = "hifigan"
    hifigan: nn.Module

    def lean_(self, dtype: torch.dtype = torch.bfloat16) -> HifiGanVocoder:
        """Run in ``dtype`` (weights cast; waveforms still come back as float32).

        On an AVX-512 BF16 CPU bf16 nearly halves the AudioLDM2 vocoder's time; the waveform stays within
        2% relative L2 of fp32 with random weights (``tests/audio/test_lean_decode.py``,
        ``benchmarks/bench_generate.py``).

        Returns:
            ``self``.
        """
        self.hifigan.to(dtype)
        return self

    @classmethod
    def _build(cls, config: dict[str, Any], given: dict[str, Any]) -> HifiGanVocoder:
        from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

        known = set(inspect.signature(SpeechT5HifiGanConfig.__init__).parameters)
        unknown = sorted(set(config) - known)
        if unknown:
            raise InputError(f"invalid HifiGanVocoder config keys: {', '.join(unknown)}")
        return cls(SpeechT5HifiGan(SpeechT5HifiGanConfig(**config)))

    @classmethod
    def _from_folder(cls, folder: Path, dtype: torch.dtype | None) -> HifiGanVocoder:
        from transformers import SpeechT5HifiGan

        return cls(SpeechT5HifiGan.from_pretrained(str(folder), use_safetensors=True, local_files_only=True))

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (16000 for AudioLDM2)."""
        return int(self.hifigan.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        """Samples per mel frame: the product of the upsample rates (160)."""
        hop = 1
        for rate in self.hifigan.config.upsample_rates:
            hop *= int(rate)
        return hop

    @property
    def n_mels(self) -> int:
        """Mel bins expected on input (64)."""
        return int(self.hifigan.config.model_in_dim)

    def forward(self, mel: Tensor, num_samples: int | None = None) -> Tensor:
        """Vocode log-mel spectrograms.

        Args:
            mel: Time-major log-mel (a channel axis of size 1, as the VAE returns, is accepted).
            num_samples: Output length; default ``hop_length * T``. Must not exceed what the network
                produces (``hop_length * T`` plus a few samples).

        Returns:
            Float32 waveforms, whatever dtype the vocoder runs in (see :meth:`lean_`).

        Shapes:
            mel: (B, T, 64) or (B, 1, T, 64)
            output: (B, num_samples)
        """
        mel = _as_batch(mel, self.n_mels)
        param = next(self.hifigan.parameters())
        waveform = self.hifigan(mel.to(param.device, param.dtype))
        target = self.hop_length * mel.shape[1] if num_samples is None else num_samples
        if target > waveform.shape[-1]:
            raise ValueError(
                f"num_samples={target} exceeds the {waveform.shape[-1]} samples made from "
                f"{mel.shape[1]} frames; ask for at most hop_length * T"
            )
        return waveform[..., :target].float()


@functools.lru_cache(maxsize=8)
def _mel_pinv(device: torch.device, dtype: torch.dtype) -> Tensor:
    basis = mel_basis(device, torch.float64)
    return torch.linalg.pinv(basis).to(dtype)


class GriffinLimVocoder:
    """Weight-free fallback vocoder: mel inversion plus fast Griffin-Lim (deterministic).

    exp(log-mel) is mapped to a linear magnitude with the pseudo-inverse of the Slaney mel basis (clamped
    at 0), then phases are estimated by Griffin-Lim with momentum (n_fft 1024, hop 160, win 1024, periodic
    Hann) from random initial phases drawn from ``torch.Generator().manual_seed(seed)``. Quality is far below
    HiFi-GAN; it exists so that a pipeline can always produce audio without downloaded weights.

    Args:
        n_iter: Griffin-Lim iterations.
        momentum: Fast Griffin-Lim momentum (0 gives the classic algorithm).
        seed: Seed of the initial phases.
    """

    def __init__(self, n_iter: int = 32, momentum: float = 0.99, seed: int = 0) -> None:
        if n_iter < 1 or not 0.0 <= momentum < 1.0:
            raise InputError(f"need n_iter >= 1 and 0 <= momentum < 1, got {n_iter}, {momentum}")
        self.n_iter = n_iter
        self.momentum = momentum
        self.seed = seed

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (16000)."""
        return SAMPLE_RATE

    @property
    def hop_length(self) -> int:
        """Samples per mel frame (160)."""
        return HOP_LENGTH

    def magnitude(self, mel: Tensor) -> Tensor:
        """Linear STFT magnitude estimated from log-mel via the basis pseudo-inverse (clamped >= 0).

        Shapes:
            mel: (B, T, 64)
            output: (B, 513, T)
        """
        mel = _as_batch(mel, 64).float()
        pinv = _mel_pinv(mel.device, torch.float32)
        return torch.matmul(pinv, mel.exp().transpose(1, 2)).clamp(min=0.0)

    def __call__(self, mel: Tensor, num_samples: int | None = None) -> Tensor:
        """Vocode log-mel spectrograms.

        Args:
            mel: Time-major log-mel (a channel axis of size 1 is accepted).
            num_samples: Output length; default ``160 * T`` (trimmed or zero-padded at the end).

        Returns:
            Float32 waveforms.

        Shapes:
            mel: (B, T, 64) or (B, 1, T, 64)
            output: (B, num_samples)
        """
        magnitude = self.magnitude(mel)
        frames = magnitude.shape[-1]
        if frames < 2:
            raise ValueError(f"Griffin-Lim needs at least 2 frames, got {frames}")
        length = HOP_LENGTH * (frames - 1)
        window = torch.hann_window(WIN_LENGTH, periodic=True, device=magnitude.device)
        stft_args: dict[str, Any] = {
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "win_length": WIN_LENGTH,
            "window": window,
        }
        generator = torch.Generator().manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=generator) * (2.0 * torch.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(magnitude.device)
        previous = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            inverse = torch.istft(magnitude * angles, length=length, **stft_args)
            rebuilt = torch.stft(inverse, center=True, pad_mode="reflect", return_complex=True, **stft_args)
            angles = rebuilt - previous * (self.momentum / (1.0 + self.momentum))
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        waveform = torch.istft(magnitude * angles, length=length, **stft_args)
        target = self.hop_length * frames if num_samples is None else num_samples
        return fit_length(waveform, target)
