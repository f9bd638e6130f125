"""The AudioLDM2 mel VAE (diffusers ``AutoencoderKL``) with FluxMusic's latent scaling built in.

FluxMusic works on *scaled* latents: ``latent = scaling_factor * z`` where ``z`` is the VAE posterior's
sample (scaling_factor 0.4110932946205139 for AudioLDM2). :meth:`AudioVAE.encode` returns the posterior of
the scaled latent and :meth:`AudioVAE.decode` takes a scaled latent, so callers never handle the factor.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fluxmusic.audio.pretrained import PretrainedComponent
from fluxmusic.errors import InputError

logger = logging.getLogger(__name__)

AUDIOLDM2_VAE_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "force_upcast": True,
    "in_channels": 1,
    "latent_channels": 8,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 1,
    "sample_size": 1024,
    "scaling_factor": 0.4110932946205139,
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
}
"""``cvssp/audioldm2`` subfolder ``vae`` config (reference.md section 4); 55,376,873 parameters."""


@dataclass(frozen=True)
class LatentDistribution:
    """Diagonal Gaussian posterior of the *scaled* latent ``s * z`` (``s`` = scaling factor).

    If the VAE posterior is ``z ~ N(mu, exp(logvar_z))``, then ``s * z ~ N(s * mu, exp(logvar_z + 2 ln s))``:
    ``mean = s * mu`` and ``logvar = logvar_z + 2 * ln(s)``. ``sample()`` therefore draws a scaled latent
    directly, as training on fresh posterior samples needs.

    Attributes:
        mean: Mean of the scaled latent.
        logvar: Log-variance of the scaled latent.
        scaling_factor: ``s``, kept to recover the unscaled posterior (e.g. for :meth:`kl`).

    Shapes:
        mean, logvar: (B, C, T / d, F / d) with d = AudioVAE.downsample
    """

    mean: Tensor
    logvar: Tensor
    scaling_factor: float

    @property
    def std(self) -> Tensor:
        """Standard deviation of the scaled latent."""
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Draw a scaled latent ``mean + std * eps``; ``eps`` comes from ``generator``'s device, then moves.

        Shapes:
            output: like ``mean``
        """
        device = generator.device if generator is not None else torch.device("cpu")
        eps = torch.randn(self.mean.shape, generator=generator, device=device, dtype=torch.float32)
        return self.mean + self.std * eps.to(self.mean.device, self.mean.dtype)

    def mode(self) -> Tensor:
        """The most likely scaled latent (the mean).

        Shapes:
            output: like ``mean``
        """
        return self.mean

    def kl(self) -> Tensor:
        """KL divergence of the *unscaled* posterior from N(0, I), summed over all but the batch axis.

        Shapes:
            output: (B,)
        """
        mu = self.mean / self.scaling_factor
        logvar = self.logvar - 2.0 * math.log(self.scaling_factor)
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def _cast(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast floating parameters and buffers in place (bypasses diffusers' ``to()`` dtype warning)."""
    nn.Module.to(module, dtype=dtype)


class AudioVAE(PretrainedComponent, nn.Module):
    """Mel-spectrogram VAE working in scaled-latent space.

    Build with :meth:`from_config` (random weights, any ``AutoencoderKL`` config) or
    :meth:`from_pretrained` (``cvssp/audioldm2`` or a folder written by :meth:`save_pretrained`).
    With ``force_upcast`` in the config, encode and decode run in float32 with autocast disabled even when
    the module is half precision; results come back in the input's dtype.

    Args:
        autoencoder: The wrapped diffusers ``AutoencoderKL``.
    """

    default_subfolder = "vae"
    weights_name = "diffusion_pytorch_model.safetensors"
    default_config = AUDIOLDM2_VAE_CONFIG
    inner_name = "autoencoder"
    autoencoder: nn.Module

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__(autoencoder)
        self.decode_dtype: torch.dtype | None = None  # None: as stored / force_upcast; see lean_decode_
        self._channels_last = False

    def lean_decode_(self, dtype: torch.dtype = torch.bfloat16, channels_last: bool = True) -> AudioVAE:
        """Decode in ``dtype`` with channels-last convolutions (the encoder is left as it is).

        Overrides ``force_upcast`` for decoding only. On an AVX-512 BF16 CPU this halves the decode
        time of the AudioLDM2 VAE; the log-mel stays within 2% relative L2 (about 0.05 in log units at
        most) of fp32 with random weights (``tests/audio/test_lean_decode.py``,
        ``benchmarks/bench_generate.py``). ``lean_decode_(torch.float32, False)`` decodes in fp32 again
        (with the weights as rounded).

        Returns:
            ``self``.
        """
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for part in (self.autoencoder.decoder, self.autoencoder.post_quant_conv):
            if part is not None:
                nn.Module.to(part, dtype=dtype, memory_format=fmt)
        self.decode_dtype = None if (dtype, channels_last) == (torch.float32, False) else dtype
        self._channels_last = channels_last
        return self

    @classmethod
    def _build(cls, config: dict[str, Any], given: dict[str, Any]) -> AudioVAE:
        """Unless given, ``down_block_types`` / ``up_block_types`` follow ``block_out_channels``' length."""
        from diffusers import AutoencoderKL

        merged = {k: v for k, v in config.items() if not k.startswith("_")}
        depth = len(merged["block_out_channels"])
        for key, block in (
            ("down_block_types", "DownEncoderBlock2D"),
            ("up_block_types", "UpDecoderBlock2D"),
        ):
            if key not in given:
                merged[key] = [block] * depth
        try:
            return cls(AutoencoderKL(**merged))
        except TypeError as err:
            raise InputError(f"invalid AudioVAE config: {err}") from err

    @classmethod
    def _from_folder(cls, folder: Path, dtype: torch.dtype | None) -> AudioVAE:
        from diffusers import AutoencoderKL

        kl = AutoencoderKL.from_pretrained(
            str(folder), use_safetensors=True, local_files_only=True, torch_dtype=dtype
        )
        return cls(kl)

    @property
    def config(self) -> dict[str, Any]:
        """The ``AutoencoderKL`` config as a plain dict."""
        return dict(self.autoencoder.config)

    @property
    def scaling_factor(self) -> float:
        """Latent scaling factor ``s`` (scaled latent = s * z)."""
        return float(self.autoencoder.config.scaling_factor)

    @property
    def latent_channels(self) -> int:
        """Channels of the latent (8 for AudioLDM2)."""
        return int(self.autoencoder.config.latent_channels)

    @property
    def downsample(self) -> int:
        """Spatial reduction factor on both time and mel axes: 2 ** (len(block_out_channels) - 1)."""
        return 2 ** (len(self.autoencoder.config.block_out_channels) - 1)

    @property
    def force_upcast(self) -> bool:
        """Whether encode/decode always run in float32."""
        return bool(self.autoencoder.config.force_upcast)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the parameters."""
        return next(self.autoencoder.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.autoencoder.parameters()).device

    @contextlib.contextmanager
    def _compute_precision(self) -> Iterator[torch.dtype]:
        if not self.force_upcast:
            yield self.dtype
            return
        original = self.dtype
        if original != torch.float32:
            logger.debug("force_upcast: running the VAE in float32 (stored as %s)", original)
            _cast(self.autoencoder, torch.float32)
        try:
            with torch.autocast(device_type=self.device.type, enabled=False):
                yield torch.float32
        finally:
            if original != torch.float32:
                _cast(self.autoencoder, original)

    def _check_spatial(self, x: Tensor, channels: int, what: str, factor: int) -> None:
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(f"{what} must be (B, {channels}, T, F), got shape {tuple(x.shape)}")
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(
                f"{what} time and mel sizes must be multiples of {factor}, got {tuple(x.shape[2:])}; "
                "pad or truncate the frames first (fluxmusic.audio.fit_frames)"
            )

    def encode(self, mel: Tensor) -> LatentDistribution:
        """Encode log-mel spectrograms to the posterior of the scaled latent.

        Args:
            mel: Time-major log-mel; T and F must be multiples of :attr:`downsample`.

        Returns:
            :class:`LatentDistribution` with ``mean = s * mu`` and ``logvar = logvar_z + 2 ln s``.

        Shapes:
            mel: (B, 1, T, 64)
            mean, logvar: (B, latent_channels, T / downsample, 64 / downsample); (B, 8, T / 4, 16) for
                AudioLDM2
        """
        self._check_spatial(mel, int(self.autoencoder.config.in_channels), "mel", self.downsample)
        with self._compute_precision() as dtype:
            posterior = self.autoencoder.encode(mel.to(self.device, dtype)).latent_dist
            s = self.scaling_factor
            mean = (posterior.mean * s).to(mel.dtype)
            logvar = (posterior.logvar + 2.0 * math.log(s)).to(mel.dtype)
        return LatentDistribution(mean=mean, logvar=logvar, scaling_factor=s)

    def decode(self, latent: Tensor) -> Tensor:
        """Decode scaled latents (``s * z``) to log-mel spectrograms.

        Args:
            latent: Scaled latent, e.g. from :meth:`LatentDistribution.sample` or the flow sampler.

        Returns:
            Time-major log-mel in the latent's dtype.

        Shapes:
            latent: (B, latent_channels, T', F'), (B, 8, T / 4, 16) for AudioLDM2
            output: (B, 1, T' * downsample, F' * downsample), (B, 1, T, 64) for AudioLDM2
        """
        self._check_spatial(latent, self.latent_channels, "latent", 1)
        if self.decode_dtype is not None:
            fmt = torch.channels_last if self._channels_last else torch.contiguous_format
            z = (latent.to(self.device, torch.float32) / self.scaling_factor).to(self.decode_dtype)
            with torch.autocast(device_type=self.device.type, enabled=False):
                mel = self.autoencoder.decode(z.contiguous(memory_format=fmt)).sample
            return mel.contiguous().to(latent.dtype)
        with self._compute_precision() as dtype:
            z = latent.to(self.device, dtype) / self.scaling_factor
            mel = self.autoencoder.decode(z).sample
        return mel.to(latent.dtype)

    def forward(self, latent: Tensor) -> Tensor:
        """Same as :meth:`decode`.

        Shapes:
            latent: (B, latent_channels, T', F')
            output: (B, 1, T' * downsample, F' * downsample)
        """
        return self.decode(latent)
