"""CLAP audio and text embeddings through transformers' ``ClapModel`` (LAION checkpoints).

Two checkpoints are named by the command line: ``clap-music`` = ``laion/larger_clap_music`` (HTSAT-base
audio tower trained with music) and ``clap-general`` = ``laion/clap-htsat-unfused`` (HTSAT-tiny, general
audio). Both take 48 kHz audio in windows of at most 10 s (the feature extractor repeat-pads a shorter
window to 10 s; the unfused models see no fusion of longer inputs, so windows are never longer) and give
a 512-d, L2-normalised projection. A clip's row is the length-weighted mean of its windows (not
renormalised; the CLAP score normalises it again).

Weights come from the hub cache or a local folder through :func:`fluxmusic.hub.resolve_folder`; offline
and uncached, that raises :class:`fluxmusic.hub.WeightsNotFoundError` naming the hub id and how to get
it. safetensors are preferred; a ``pytorch_model.bin`` is read by transformers with
``torch.load(weights_only=True)``. No remote code is run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.evaluation.embedders import Embedder

__all__ = ["CLAP_CHECKPOINTS", "ClapEmbedder", "exact_clap_config"]

CLAP_CHECKPOINTS: dict[str, str] = {
    "clap-music": "laion/larger_clap_music",
    "clap-general": "laion/clap-htsat-unfused",
}
"""Embedding name -> hub id."""

_AUDIO_TOWERS: dict[str, dict[str, Any]] = {
    "laion/larger_clap_music": {
        "patch_embeds_hidden_size": 128,
        "depths": [2, 2, 12, 2],
        "hidden_size": 1024,
    },
    "laion/clap-htsat-unfused": {"patch_embeds_hidden_size": 96, "depths": [2, 2, 6, 2], "hidden_size": 768},
}


def exact_clap_config(hub_id: str) -> Any:
    """The ``ClapConfig`` of a named checkpoint, written out here (so tests build it with random weights).

    Both share the RoBERTa-base text tower (vocabulary 50265, 12 layers of width 768, 12 heads, 514
    positions) and the HTSAT audio front end (64 mel bins, spectrogram size 256, window 8, patch 4,
    heads 4-8-16-32, no fusion); they differ in the audio tower's width and depth (``_AUDIO_TOWERS``).
    """
    from transformers import ClapConfig

    if hub_id not in _AUDIO_TOWERS:
        raise KeyError(f"no written-out config for {hub_id!r}; known: {', '.join(_AUDIO_TOWERS)}")
    text = {
        "vocab_size": 50265,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "projection_dim": 512,
    }
    audio = {
        "num_mel_bins": 64,
        "spec_size": 256,
        "window_size": 8,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "num_attention_heads": [4, 8, 16, 32],
        "enable_fusion": False,
        "projection_dim": 512,
        **_AUDIO_TOWERS[hub_id],
    }
    return ClapConfig(text_config=text, audio_config=audio, projection_dim=512)


class ClapEmbedder(Embedder):
    """CLAP audio (and text) embeddings.

    Args:
        model: A ``transformers.ClapModel`` in eval mode.
        feature_extractor: Its ``ClapFeatureExtractor`` (48 kHz, 10 s).
        checkpoint: The hub id or folder, for the record.
        tokenizer: Its text tokenizer (needed by :meth:`embed_text` only).
        name: The embedding name (``clap-music``, ``clap-general`` or ``clap``).

    Shapes:
        embed: N clips -> (N, 512); embed_text: N prompts -> (N, 512), L2-normalised
    """

    window_seconds = 10.0

    def __init__(
        self,
        model: Any,
        feature_extractor: Any,
        checkpoint: str,
        tokenizer: Any = None,
        name: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.checkpoint = checkpoint
        self.name = name or next((k for k, v in CLAP_CHECKPOINTS.items() if v == checkpoint), "clap")
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window_seconds = float(feature_extractor.nb_max_samples) / self.sample_rate
        self.dim = int(model.config.projection_dim)
        self.fusion = bool(model.config.audio_config.enable_fusion)
        self.cache_token = f"fusion={self.fusion}"

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | Path, device: str | torch.device | None = None
    ) -> ClapEmbedder:
        """Load a CLAP checkpoint (hub id or folder), offline from the hub cache.

        Raises:
            fluxmusic.hub.WeightsNotFoundError: not cached offline, or a folder missing its files.
        """
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        from fluxmusic.hub import resolve_folder

        label = f"CLAP checkpoint {name_or_dir}"
        folder = resolve_folder(
            str(name_or_dir), required=("config.json", "preprocessor_config.json"), component=label,
            need_weights=True,
        )  # fmt: skip
        model = ClapModel.from_pretrained(folder).to(device or "cpu")
        extractor = ClapFeatureExtractor.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(model, extractor, str(name_or_dir), tokenizer)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    @staticmethod
    def _pooled(output: Any) -> Tensor:
        # transformers >= 5 returns a model output whose pooler_output is the normalised projection
        return output.pooler_output if hasattr(output, "pooler_output") else output

    def embed_windows(self, windows: list[Tensor]) -> Tensor:
        truncation = "fusion" if self.fusion else "rand_trunc"  # windows are <= 10 s: nothing is cut
        features = self.feature_extractor(
            [w.numpy() for w in windows], sampling_rate=self.sample_rate, return_tensors="pt",
            truncation=truncation, padding="repeatpad",
        )  # fmt: skip
        inputs = {"input_features": features["input_features"].to(self.device)}
        if "is_longer" in features:
            inputs["is_longer"] = features["is_longer"].to(self.device)
        return self._pooled(self.model.get_audio_features(**inputs)).float().cpu()

    @torch.no_grad()
    def embed_text(self, prompts: Sequence[str], batch_size: int = 32) -> Tensor:
        """L2-normalised text embeddings of prompts. Shapes: N prompts -> (N, 512)."""
        if self.tokenizer is None:
            raise ValueError(f"{self.checkpoint}: no tokenizer loaded, cannot embed text")
        rows = []
        for i in range(0, len(prompts), batch_size):
            tokens = self.tokenizer(
                list(prompts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt"
            )
            tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
            rows.append(self._pooled(self.model.get_text_features(**tokens)).float().cpu())
        return torch.nn.functional.normalize(torch.cat(rows), dim=-1)
