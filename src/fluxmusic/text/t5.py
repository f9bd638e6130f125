"""Frozen T5 v1.1 XXL encoder: MusicFlux's per-token text states ``txt``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.hub import folder_fingerprint, resolve_folder
from fluxmusic.text.base import FrozenEncoder, TextMode, default_dtype, pad_tokens, set_precision_
from fluxmusic.text.lowmem import materialize_, params_on_meta
from fluxmusic.text.t5_lean import (
    WeightIndex,
    check_quantize,
    float_embedding_output_,
    quantize_linears_,
    stream_blocks_,
)

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
# With int8 linears the activations run in fp32, and so do the norms and the position bias.
_INT8_FP32 = ("layer_norm", "final_layer_norm", "relative_attention_bias")
_BLOCKS = "encoder.block."


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
        quantize: str | None = None,
        stream: bool = False,
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
            quantize: ``"int8"``: int8 dynamic quantisation of the blocks' linear layers (CPU only;
                see ``fluxmusic.text.t5_lean``), read block by block so the peak stays near the int8 size.
            stream: Keep only the embedding table resident and read each block from the safetensors
                files while it runs (with ``quantize``, quantised on every read: slow, for checks).

        Raises:
            WeightsNotFoundError: files missing (message names them and how to supply them).
            InputError: an unknown ``quantize``, or ``stream`` without safetensors weights.
        """
        from transformers import AutoTokenizer

        check_quantize(quantize)
        hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
        folder = resolve_folder(name_or_dir, subfolder, need_weights=True, **hub)
        tok_folder = resolve_folder(
            name_or_dir, tokenizer_subfolder, [("tokenizer.json", "spiece.model")], **hub
        )
        tokenizer = AutoTokenizer.from_pretrained(str(tok_folder))
        if quantize is not None or stream:
            from transformers import T5Config

            return cls.from_weights(
                folder,
                tokenizer,
                T5Config.from_pretrained(str(folder)),
                device=device,
                dtype=dtype,
                quantize=quantize,
                stream=stream,
                source=f"{name_or_dir}/{subfolder or ''}",
            )

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
        quantize: str | None = None,
        **overrides: Any,
    ) -> T5Encoder:
        """Random-weight encoder built on the meta device and filled cheaply (see ``lowmem``).

        Args:
            tokenizer: Any Hugging Face-style tokenizer (the real one, or ``byte_level_tokenizer("t5")``).
            config: ``T5Config`` or a dict of its fields; default ``T5XXL_CONFIG``.
            device: Where to allocate the weights.
            dtype: Compute dtype (default as in ``from_pretrained``).
            seed: Seed of the random weights.
            quantize: ``"int8"``: quantise the blocks' linears, one block at a time as it is filled (the
                weights are not those of the unquantised build with the same seed; use
                :meth:`quantize_` on a built encoder to compare the two).
            **overrides: Config fields to override, e.g. ``num_layers=2``.
        """
        from transformers import T5EncoderModel

        check_quantize(quantize)
        config = _t5_config(config, overrides)
        dtype = dtype or default_dtype(device)
        with params_on_meta():
            model = T5EncoderModel(config)
        keep = _KEEP_FP32 if dtype == torch.float16 else ()
        if quantize is not None:
            for i, block in enumerate(model.encoder.block):
                quantize_linears_(materialize_(block, dtype=torch.float32, seed=seed + 1 + i))
            keep = _INT8_FP32
        materialize_(model, device=device, dtype=dtype, seed=seed, keep_fp32=keep)
        if quantize is not None:
            float_embedding_output_(model.encoder.embed_tokens)
        suffix = "" if quantize is None else f"-{quantize}"
        weights_id = f"t5-random-seed{seed}-{config.num_layers}x{config.d_model}{suffix}"
        return cls(model, tokenizer, weights_id=weights_id)

    @classmethod
    def from_weights(
        cls,
        folder: str | os.PathLike[str],
        tokenizer: Any,
        config: Any,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        quantize: str | None = None,
        stream: bool = False,
        source: str | None = None,
    ) -> T5Encoder:
        """An encoder read from a folder of ``T5EncoderModel`` safetensors, block by block.

        What :meth:`from_pretrained` runs for ``quantize`` or ``stream``; also usable with any tokenizer
        and config (benchmarks write random weights in the real layout and read them back this way).

        Args:
            folder: ``model.safetensors`` or sharded safetensors with their index.
            tokenizer: Hugging Face-style tokenizer.
            config: The ``T5Config`` (or a dict of its fields).
            device: Where to run (int8 needs the CPU).
            dtype: Compute dtype of unquantised weights (default bf16 on CPU/CUDA).
            quantize: ``"int8"`` or ``None``.
            stream: Read every block from ``folder`` each time it runs.
            source: Recorded in ``weights_id`` (default the folder).

        Raises:
            InputError: no safetensors weights, a block's weights missing, or int8 off the CPU.
        """
        from transformers import T5EncoderModel

        check_quantize(quantize)
        device, dtype = torch.device(device), dtype or default_dtype(device)
        if quantize is not None and device.type != "cpu":
            raise InputError(f"int8 T5 runs on the CPU only, not {device}; drop the quantisation")
        config, folder = _t5_config(config, {}), Path(folder)
        index = WeightIndex(folder)
        suffix = ("" if quantize is None else f"+{quantize}") + ("+stream" if stream else "")
        weights_id = f"{source or folder}@{folder_fingerprint(folder)}{suffix}"

        def load(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
            with params_on_meta():
                model = T5EncoderModel(config)
            blocks = model.encoder.block
            block_dtype = torch.float32 if quantize is not None else dtype
            prepare = quantize_linears_ if quantize is not None else None
            if quantize is None and dtype == torch.float16:

                def prepare(block: torch.nn.Module) -> torch.nn.Module:
                    return set_precision_(block, dtype, _KEEP_FP32)

            if stream:
                stream_blocks_(blocks, index, _BLOCKS, block_dtype, device, prepare)
            else:
                for i, block in enumerate(blocks):
                    block.load_state_dict(index.read(f"{_BLOCKS}{i}.", block_dtype), strict=True, assign=True)
                    if prepare is not None:
                        prepare(block)
            rest = index.read("shared.", dtype)
            model.shared.load_state_dict(rest, assign=True)
            model.encoder.embed_tokens = model.shared
            norm = index.read("encoder.final_layer_norm.", torch.float32 if quantize else dtype)
            model.encoder.final_layer_norm.load_state_dict(norm, assign=True)
            if quantize is not None:
                float_embedding_output_(model.shared)
            resident = (model.shared, model.encoder.final_layer_norm) if stream else (model,)
            for part in resident:
                part.to(device)
            return model.eval()

        return cls(load(device, dtype), tokenizer, weights_id=weights_id, loader=load)

    def quantize_(self, quantize: str = "int8") -> T5Encoder:
        """Quantise this (resident, CPU) encoder's block linears in place, one block at a time.

        Raises:
            InputError: an unknown scheme, a streamed or released encoder, or a non-CPU device.
        """
        check_quantize(quantize)
        if self.device.type != "cpu" or self.released:
            raise InputError("quantize_ needs a resident encoder on the CPU")
        model = self.model
        for block in model.encoder.block:
            quantize_linears_(block.float())
        model.encoder.final_layer_norm.float()
        float_embedding_output_(model.encoder.embed_tokens)
        self.weights_id += f"+{quantize}"
        self._loader = None
        return self

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
