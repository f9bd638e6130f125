"""Frozen T5 v1.1 XXL encoder: MusicFlux's per-token text states ``txt``."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import Tensor

from fluxmusic.hub import resolve_folder
from fluxmusic.text.base import FrozenEncoder, TextMode, default_dtype, pad_tokens, set_precision_
from fluxmusic.text.lowmem import materialize_, params_on_meta

__all__ = ["SD3_REPO", "T5XXL_CONFIG", "T5Encoder"]

logger = logging.getLogger(__name__)

SD3_REPO = "stabilityai/stable-diffusion-3-medium-diffusers"

# transformers ``T5Config`` of the T5 v1.1 XXL encoder shipped with SD3 (reference.md section 4).
T5XXL_CONFIG: dict[str, Any] = {
    "d_model": 4096,
    "d_ff": 10240,
    "num_heads": 64,
    "d_kv": 64,
    "num_layers": 24,
    "vocab_size": 32128,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "layer_norm_epsilon": 1e-6,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "dropout_rate": 0.1,
    "is_encoder_decoder": False,
    "use_cache": False,
}

# Under fp16, T5's feed-forward output projections overflow; keep them in fp32 (as transformers does).
_KEEP_FP32 = ("wo",)


def _t5_config(config: dict[str, Any] | Any, overrides: dict[str, Any]) -> Any:
    from transformers import T5Config

    if isinstance(config, T5Config):
        return T5Config(**{**config.to_dict(), **overrides}) if overrides else config
    return T5Config(**{**config, **overrides})


class T5Encoder(FrozenEncoder):
    """Frozen ``T5EncoderModel`` plus tokenizer.

    Build with ``from_pretrained`` (real weights) or ``from_config`` (random weights, cheap, for tests
    and benchmarks). ``encode(prompts, mode)`` pads every prompt to ``mode.t5_max_length`` with
    ``mode.t5_pad_id`` and attends to real tokens only when ``mode.t5_attention_mask``.

    Shapes:
        encode: B prompts -> states (B, L, d_model) in the model dtype, mask (B, L) bool.
    """

    @property
    def dim(self) -> int:
        """d_model: width of the token states (4096 for XXL)."""
        return int(self.config.d_model)

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | os.PathLike[str] = SD3_REPO,
        *,
        subfolder: str | None = "text_encoder_3",
        tokenizer_subfolder: str | None = "tokenizer_3",
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
    ) -> T5Encoder:
        """Load real weights from a local folder or the Hugging Face cache (SD3's T5-XXL by default).

        Args:
            name_or_dir: Repo id or local folder holding the encoder and tokenizer subfolders.
            subfolder: Subfolder of the encoder weights (``None`` for the folder itself).
            tokenizer_subfolder: Subfolder of the tokenizer files.
            device: Device to run on.
            dtype: Compute dtype; default bf16 on CPU/CUDA (see ``default_dtype``). Under fp16 the
                ``wo`` projections stay fp32.
            revision: Repo revision.
            cache_dir: HF cache directory.
            local_files_only: Use only cached files; ``None`` follows ``HF_HUB_OFFLINE``.

        Raises:
            WeightsNotFoundError: files missing (message names them and how to supply them).
        """
        from transformers import AutoTokenizer

        hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
        folder = resolve_folder(name_or_dir, subfolder, need_weights=True, **hub)
        tok_folder = resolve_folder(
            name_or_dir, tokenizer_subfolder, [("tokenizer.json", "spiece.model")], **hub
        )
        tokenizer = AutoTokenizer.from_pretrained(str(tok_folder))

        def load(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
            from transformers import T5EncoderModel

            model = T5EncoderModel.from_pretrained(str(folder), dtype=dtype)
            return set_precision_(model, dtype, _KEEP_FP32).to(device)

        return cls.from_folder(load, tokenizer, folder, f"{name_or_dir}/{subfolder or ''}", device, dtype)

    @classmethod
    def from_config(
        cls,
        tokenizer: Any,
        config: dict[str, Any] | Any = T5XXL_CONFIG,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        seed: int = 0,
        **overrides: Any,
    ) -> T5Encoder:
        """Random-weight encoder built on the meta device and filled cheaply (see ``lowmem``).

        Args:
            tokenizer: Any Hugging Face-style tokenizer (the real one, or ``byte_level_tokenizer("t5")``).
            config: ``T5Config`` or a dict of its fields; default ``T5XXL_CONFIG``.
            device: Where to allocate the weights.
            dtype: Compute dtype (default as in ``from_pretrained``).
            seed: Seed of the random weights.
            **overrides: Config fields to override, e.g. ``num_layers=2``.
        """
        from transformers import T5EncoderModel

        config = _t5_config(config, overrides)
        dtype = dtype or default_dtype(device)
        with params_on_meta():
            model = T5EncoderModel(config)
        keep = _KEEP_FP32 if dtype == torch.float16 else ()
        materialize_(model, device=device, dtype=dtype, seed=seed, keep_fp32=keep)
        return cls(model, tokenizer, weights_id=f"t5-random-seed{seed}-{config.num_layers}x{config.d_model}")

    def tokenize(self, prompts: list[str], mode: TextMode) -> tuple[Tensor, Tensor]:
        """Token ids padded with ``mode.t5_pad_id`` to ``mode.t5_max_length``, and the real-token mask.

        Shapes:
            B prompts -> input_ids (B, L) int64, mask (B, L) bool.
        """
        return pad_tokens(self.tokenizer, prompts, mode.t5_max_length, mode.t5_pad_id)

    @torch.no_grad()
    def encode(self, prompts: list[str], mode: TextMode) -> tuple[Tensor, Tensor]:
        """Encoder states for every position (pads included) and the real-token mask.

        Shapes:
            B prompts -> states (B, L, d_model), mask (B, L) bool; both on ``self.device``.
        """
        ids, mask = self.tokenize(prompts, mode)
        ids, mask = ids.to(self.device), mask.to(self.device)
        attend = mask if mode.t5_attention_mask else torch.ones_like(mask)
        states = self.model(input_ids=ids, attention_mask=attend.long()).last_hidden_state
        return states, mask
