"""Frozen CLAP text tower (``laion/larger_clap_music``): MusicFlux's pooled text vector ``y``.

``y`` is the text tower's ``pooler_output`` = tanh(Linear(h[:, 0])), 768-d — not the 512-d projected
CLAP embedding. The tower is read out of a ``ClapModel``-format checkpoint (``text_model.*`` and
``text_projection.*`` keys) and every one of its weights must be present: the reference loads it
through ``ClapTextModel.from_pretrained``, which matches no key and silently initialises at random.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.hub import WeightsNotFoundError, read_state_dict, resolve_folder
from fluxmusic.text.base import FrozenEncoder, TextMode, default_dtype, pad_tokens, set_precision_
from fluxmusic.text.lowmem import materialize_, params_on_meta

__all__ = ["CLAP_REPO", "ClapTextEncoder", "clap_text_config", "load_clap_text_tower"]

logger = logging.getLogger(__name__)

CLAP_REPO = "laion/larger_clap_music"

# Buffers the text tower computes itself (position ids 0..513, zero token types); optional in a file.
_DERIVED_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


def clap_text_config(**overrides: Any) -> Any:
    """``ClapTextConfig()`` defaults (RoBERTa-base sized, projection_dim 512) with ``overrides``."""
    from transformers import ClapTextConfig

    return ClapTextConfig(**overrides)


def load_clap_text_tower(folder: str | os.PathLike[str], dtype: torch.dtype = torch.float32) -> Any:
    """Read the text tower of a ``ClapModel`` checkpoint folder into a ``ClapTextModel``.

    Only ``text_model.*`` tensors are read (lazily from safetensors); the audio tower is skipped.

    Args:
        folder: Folder with ``config.json`` (a ``ClapConfig``) and the weights.
        dtype: dtype of the returned model.

    Raises:
        WeightsNotFoundError: the checkpoint is not ClapModel-format (no ``text_model.*`` or no
            ``text_projection.*`` keys) or lacks any text-tower parameter; names the keys.
    """
    from transformers import ClapConfig, ClapTextModel

    folder = Path(folder)
    config = ClapConfig.from_pretrained(str(folder))
    state = read_state_dict(folder, prefixes=("text_model.", "text_projection."))
    if not any(key.startswith("text_model.") for key in state):
        raise WeightsNotFoundError(
            f"{folder}: no 'text_model.*' weights; expected a ClapModel checkpoint (a bare ClapTextModel "
            "load would silently use random weights)"
        )
    if not any(key.startswith("text_projection.") for key in state):
        raise WeightsNotFoundError(
            f"{folder}: no 'text_projection.*' weights; expected a ClapModel checkpoint"
        )
    tower = {key.removeprefix("text_model."): v for key, v in state.items() if key.startswith("text_model.")}
    with params_on_meta():
        model = ClapTextModel(config.text_config)
    expected = model.state_dict().keys()
    missing = sorted(f"text_model.{k}" for k in expected if k not in tower and k not in _DERIVED_BUFFERS)
    if missing:
        raise WeightsNotFoundError(
            f"{folder}: CLAP text tower weights missing ({len(missing)}): {', '.join(missing)}"
        )
    unexpected = sorted(k for k in tower if k not in expected)
    if unexpected:
        logger.warning("ignoring %d unexpected CLAP text weights: %s", len(unexpected), ", ".join(unexpected))
        tower = {k: v for k, v in tower.items() if k in expected}
    model.load_state_dict(tower, strict=False, assign=True)
    return set_precision_(model, dtype).eval().requires_grad_(False)


class ClapTextEncoder(FrozenEncoder):
    """Frozen CLAP text tower plus its RoBERTa tokenizer.

    ``encode(prompts, mode)`` pads to ``mode.clap_max_length`` with the tokenizer's pad id (1) and
    attends to real tokens only when ``mode.clap_attention_mask``.

    Shapes:
        encode: B prompts -> pooled (B, hidden_size) = (B, 768) for the real tower.
    """

    @property
    def dim(self) -> int:
        """Width of ``pooler_output`` (768)."""
        return int(self.config.hidden_size)

    @property
    def pad_id(self) -> int:
        """Padding id (RoBERTa: 1)."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return 1 if pad is None else int(pad)

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | os.PathLike[str] = CLAP_REPO,
        *,
        subfolder: str | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
    ) -> ClapTextEncoder:
        """Load the text tower of a ``ClapModel`` checkpoint from a local folder or the HF cache.

        The folder needs ``config.json``, the weights (safetensors preferred; ``pytorch_model.bin`` is
        read with ``weights_only=True``) and the tokenizer files.

        Args:
            name_or_dir: Repo id or local folder (default ``laion/larger_clap_music``).
            subfolder: Subfolder inside it, if any.
            device: Device to run on.
            dtype: Compute dtype; default bf16 on CPU/CUDA.
            revision: Repo revision.
            cache_dir: HF cache directory.
            local_files_only: Use only cached files; ``None`` follows ``HF_HUB_OFFLINE``.

        Raises:
            WeightsNotFoundError: files or text-tower weights missing.
        """
        from transformers import AutoTokenizer

        hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
        required = ["config.json", ("tokenizer.json", "vocab.json")]
        folder = resolve_folder(name_or_dir, subfolder, required, need_weights=True, **hub)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))

        def load(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
            return load_clap_text_tower(folder, dtype).to(device)

        return cls.from_folder(load, tokenizer, folder, f"{name_or_dir}/{subfolder or ''}", device, dtype)

    @classmethod
    def from_config(
        cls,
        tokenizer: Any,
        config: Any | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        seed: int = 0,
        **overrides: Any,
    ) -> ClapTextEncoder:
        """Random-weight text tower (cheap meta-device build), for tests and benchmarks.

        Args:
            tokenizer: Any Hugging Face-style tokenizer (e.g. ``byte_level_tokenizer("roberta")``).
            config: A ``ClapTextConfig``; default ``ClapTextConfig()`` (the real tower's shape).
            device: Where to allocate the weights.
            dtype: Compute dtype (default bf16 on CPU/CUDA).
            seed: Seed of the random weights.
            **overrides: ``ClapTextConfig`` fields to override when ``config`` is None.
        """
        from transformers import ClapTextModel

        config = config if config is not None else clap_text_config(**overrides)
        dtype = dtype or default_dtype(device)
        with params_on_meta():
            model = ClapTextModel(config)
        materialize_(model, device=device, dtype=dtype, seed=seed)
        weights_id = f"clap-random-seed{seed}-{config.num_hidden_layers}x{config.hidden_size}"
        return cls(model, tokenizer, weights_id=weights_id)

    def tokenize(self, prompts: list[str], mode: TextMode) -> tuple[Tensor, Tensor]:
        """Token ids padded with the pad id to ``mode.clap_max_length``, and the real-token mask.

        Shapes:
            B prompts -> input_ids (B, L) int64, mask (B, L) bool.
        """
        return pad_tokens(self.tokenizer, prompts, mode.clap_max_length, self.pad_id)

    @torch.no_grad()
    def encode(self, prompts: list[str], mode: TextMode) -> Tensor:
        """The text tower's ``pooler_output``.

        Shapes:
            B prompts -> (B, hidden_size) on ``self.device``.
        """
        ids, mask = self.tokenize(prompts, mode)
        ids, mask = ids.to(self.device), mask.to(self.device)
        attend = mask if mode.clap_attention_mask else torch.ones_like(mask)
        return self.model(input_ids=ids, attention_mask=attend.long()).pooler_output
