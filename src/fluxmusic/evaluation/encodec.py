"""EnCodec encoder embeddings through transformers' ``EncodecModel`` (``facebook/encodec_24khz``).

The 24 kHz model is mono. Its encoder maps a waveform to 128 continuous channels at 75 frames per
second (strides 2-4-5-8 = 320 samples), before the residual quantiser; a window's embedding is the mean
of its frames, and a clip's row the length-weighted mean of its 10 s windows (the encoder is
convolutional, so windows only bound memory). The codec's own ``normalize`` option is off for this
checkpoint; a clip's level therefore moves its embedding, as it does in fadtk's EnCodec backend.

Weights are resolved through :func:`fluxmusic.hub.resolve_folder` (offline: the hub cache, else one
:class:`fluxmusic.hub.WeightsNotFoundError` line naming the hub id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.evaluation.embedders import Embedder

__all__ = ["ENCODEC_CHECKPOINT", "EncodecEmbedder", "exact_encodec_config"]

ENCODEC_CHECKPOINT = "facebook/encodec_24khz"


def exact_encodec_config() -> Any:
    """The ``EncodecConfig`` of ``facebook/encodec_24khz``, written out (tests build it with random weights).

    24 kHz mono, 32 base filters, ratios 8-5-4-2, width 128, one residual layer per stage (kernel 3,
    dilation growth 2, compress 2), two LSTM layers, causal weight-normed convolutions (kernels 7),
    1024-entry codebooks of width 128, bandwidths 1.5-24 kbps, no normalisation or chunking.
    """
    from transformers import EncodecConfig

    return EncodecConfig(
        target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
        sampling_rate=24000,
        audio_channels=1,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
        hidden_size=128,
        num_filters=32,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 2],
        norm_type="weight_norm",
        kernel_size=7,
        last_kernel_size=7,
        residual_kernel_size=3,
        dilation_growth_rate=2,
        use_causal_conv=True,
        pad_mode="reflect",
        compress=2,
        num_lstm_layers=2,
        trim_right_ratio=1.0,
        codebook_size=1024,
        codebook_dim=128,
        use_conv_shortcut=True,
    )


class EncodecEmbedder(Embedder):
    """Mean EnCodec encoder latents per clip.

    Args:
        model: A ``transformers.EncodecModel`` (mono).
        checkpoint: Its hub id or folder, for the record.

    Shapes:
        embed: N clips -> (N, 128)
    """

    name = "encodec"
    window_seconds = 10.0

    def __init__(self, model: Any, checkpoint: str = ENCODEC_CHECKPOINT) -> None:
        self.model = model.eval()
        self.checkpoint = checkpoint
        self.sample_rate = int(model.config.sampling_rate)
        self.dim = int(model.config.hidden_size)
        if int(model.config.audio_channels) != 1:
            raise ValueError(f"{checkpoint}: only mono EnCodec models are supported")

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | Path = ENCODEC_CHECKPOINT, device: str | torch.device | None = None
    ) -> EncodecEmbedder:
        """Load the codec (hub id or folder), offline from the hub cache.

        Raises:
            fluxmusic.hub.WeightsNotFoundError: not cached offline, or a folder missing its files.
        """
        from transformers import EncodecModel

        from fluxmusic.hub import resolve_folder

        folder = resolve_folder(
            str(name_or_dir), required=("config.json",), component=f"EnCodec checkpoint {name_or_dir}",
            need_weights=True,
        )  # fmt: skip
        return cls(EncodecModel.from_pretrained(folder).to(device or "cpu"), str(name_or_dir))

    def embed_windows(self, windows: list[Tensor]) -> Tensor:
        device = next(self.model.parameters()).device
        rows = []
        for window in windows:
            latents = self.model.encoder(window.to(device)[None, None])  # (1, 128, T)
            rows.append(latents.mean(dim=-1).float().cpu())
        return torch.cat(rows)
