"""``FluxMusicConditioner``: FluxMusic's text conditioning, T5-XXL token states plus the CLAP pooler."""

from __future__ import annotations

import logging
import os

import torch

from fluxmusic.errors import InputError
from fluxmusic.text.base import TextConditioner, TextEmbedding, TextMode, get_mode
from fluxmusic.text.clap import CLAP_REPO, ClapTextEncoder, clap_text_config
from fluxmusic.text.t5 import SD3_REPO, T5XXL_CONFIG, T5Encoder
from fluxmusic.text.toy import byte_level_tokenizer

__all__ = ["FluxMusicConditioner"]

logger = logging.getLogger(__name__)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class FluxMusicConditioner(TextConditioner):
    """T5 gives ``txt`` (all ``t5_max_length`` = 256 positions, pads included, as the reference feeds
    MusicFlux); the CLAP text tower's pooler gives ``y``.

    Modes (``fluxmusic.text.MODES``; reference.md section 6):
        ``"training"`` (default): T5 pads with id 1 (``</s>``) to 256 and attends only to real tokens;
        CLAP pads (id 1) to 77 and attends only to real tokens. This is what the released weights saw
        during training.
        ``"reference-sampling"``: T5 pads with id 0 (``<pad>``) to 256 and attends to every position;
        CLAP pads to 256 and attends to every position (RoBERTa has 514 positions). This is what the
        reference's sampling script does.
    In both modes ``txt_mask`` marks T5's real tokens (``</s>`` included); it does not change what
    MusicFlux receives.

    Args:
        t5: T5 encoder.
        clap: CLAP text tower.
        mode: ``"training"``, ``"reference-sampling"`` or a ``TextMode``.
        output_dtype: dtype of the returned ``txt`` and ``y`` (encoders compute in their own dtype).

    Shapes:
        encode: B prompts -> txt (B, 256, 4096), txt_mask (B, 256), y (B, 768) for the real encoders.
    """

    def __init__(
        self,
        t5: T5Encoder,
        clap: ClapTextEncoder,
        mode: str | TextMode = "training",
        output_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.t5 = t5
        self.clap = clap
        self.text_mode = get_mode(mode)
        self.output_dtype = output_dtype

    @classmethod
    def from_pretrained(
        cls,
        t5: str | os.PathLike[str] = SD3_REPO,
        clap: str | os.PathLike[str] = CLAP_REPO,
        *,
        mode: str | TextMode = "training",
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> FluxMusicConditioner:
        """Load both encoders (SD3's T5-XXL, ``laion/larger_clap_music``) from folders or the HF cache.

        ``t5`` is a repo id or folder with ``text_encoder_3/`` and ``tokenizer_3/``; ``clap`` a
        ``ClapModel`` repo id or folder. Missing files raise ``WeightsNotFoundError``.
        """
        hub = {"device": device, "dtype": dtype, "local_files_only": local_files_only, "cache_dir": cache_dir}
        return cls(T5Encoder.from_pretrained(t5, **hub), ClapTextEncoder.from_pretrained(clap, **hub), mode)

    @classmethod
    def random(
        cls,
        *,
        mode: str | TextMode = "training",
        t5_layers: int = 24,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> FluxMusicConditioner:
        """Random weights in the exact T5-XXL / CLAP shapes (``t5_layers`` may be reduced), with
        byte-level tokenizers: for speed and memory measurements with no downloads."""
        t5 = T5Encoder.from_config(
            byte_level_tokenizer("t5"),
            T5XXL_CONFIG,
            device=device,
            dtype=dtype,
            seed=seed,
            num_layers=t5_layers,
        )
        clap = ClapTextEncoder.from_config(
            byte_level_tokenizer("roberta"), device=device, dtype=dtype, seed=seed
        )
        return cls(t5, clap, mode)

    @classmethod
    def tiny(
        cls,
        txt_dim: int = 40,
        pooled_dim: int = 24,
        *,
        mode: str | TextMode = "training",
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> FluxMusicConditioner:
        """A tiny random-weight T5 + CLAP pair (fp32, byte-level tokenizers) for fast tests.

        Defaults match ``PRESETS["tiny"]`` (context_in_dim 40, vec_in_dim 24). Widths must be divisible
        by 4 (the number of heads).
        """
        if txt_dim % 4 or pooled_dim % 4:
            raise InputError(f"tiny conditioner widths must be divisible by 4, got {txt_dim}, {pooled_dim}")
        t5_tok, clap_tok = byte_level_tokenizer("t5"), byte_level_tokenizer("roberta")
        t5_config = dict(
            T5XXL_CONFIG, d_model=txt_dim, d_ff=2 * txt_dim, num_heads=4, d_kv=txt_dim // 4, num_layers=2
        )
        t5 = T5Encoder.from_config(
            t5_tok, t5_config, device=device, dtype=torch.float32, seed=seed, vocab_size=len(t5_tok)
        )
        config = clap_text_config(
            vocab_size=len(clap_tok),
            hidden_size=pooled_dim,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=2 * pooled_dim,
            projection_dim=pooled_dim,
        )
        clap = ClapTextEncoder.from_config(clap_tok, config, device=device, dtype=torch.float32, seed=seed)
        return cls(t5, clap, mode)

    @property
    def mode(self) -> str:
        return self.text_mode.name

    @property
    def txt_dim(self) -> int:
        return self.t5.dim

    @property
    def pooled_dim(self) -> int:
        return self.clap.dim

    @property
    def device(self) -> torch.device:
        return self.t5.device

    @property
    def cache_key(self) -> str:
        m = self.text_mode
        return (
            f"t5-clap|t5={self.t5.weights_id}:{_dtype_name(self.t5.dtype)}|clap={self.clap.weights_id}:"
            f"{_dtype_name(self.clap.dtype)}|mode={m.name}:t5_len={m.t5_max_length}:t5_pad={m.t5_pad_id}:"
            f"t5_mask={int(m.t5_attention_mask)}:clap_len={m.clap_max_length}:clap_mask={int(m.clap_attention_mask)}"
            f"|out={_dtype_name(self.output_dtype)}"
        )

    def encode(self, prompts: list[str]) -> TextEmbedding:
        """Encode prompts with T5 (``txt``) and CLAP (``y``) in the selected mode.

        Shapes:
            B prompts -> txt (B, t5_max_length, txt_dim), txt_mask (B, t5_max_length), y (B, pooled_dim).
        """
        txt, mask = self.t5.encode(prompts, self.text_mode)
        y = self.clap.encode(prompts, self.text_mode).to(self.device)
        return TextEmbedding(txt.to(self.output_dtype), mask, y.to(self.output_dtype))

    def release(self) -> None:
        """Free both encoders' weights; a later ``encode`` reloads them if they came from
        ``from_pretrained`` and raises ``RuntimeError`` otherwise."""
        self.t5.release()
        self.clap.release()

    def to(self, device: torch.device | str) -> FluxMusicConditioner:
        self.t5.to(device)
        self.clap.to(device)
        return self
