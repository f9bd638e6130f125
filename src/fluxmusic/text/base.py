"""The text-conditioning interface: ``TextEmbedding``, ``TextConditioner`` and the encoding modes.

Every text encoder in this package turns a list of prompts into one ``TextEmbedding``: per-token
states ``txt`` for MusicFlux's text stream, a mask saying which positions hold real tokens, and a
pooled vector ``y`` for MusicFlux's vector input.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from fluxmusic.errors import InputError
from fluxmusic.hub import folder_fingerprint

__all__ = [
    "MODES",
    "FrozenEncoder",
    "TextConditioner",
    "TextEmbedding",
    "TextMode",
    "default_dtype",
    "get_mode",
    "pad_tokens",
    "set_precision_",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextMode:
    """How prompts are tokenised and encoded; the reference trains and samples differently.

    Args:
        name: Mode name, one of ``MODES``.
        t5_max_length: T5 sequence length; all positions (pads included) go to MusicFlux.
        t5_pad_id: Token id T5 sequences are right-padded with (1 is ``</s>``, 0 is ``<pad>``).
        t5_attention_mask: Whether the T5 encoder attends only to real tokens (else pads are attended).
        clap_max_length: CLAP (RoBERTa) sequence length; pads use the tokenizer's pad id (1).
        clap_attention_mask: Whether the CLAP text tower attends only to real tokens.
    """

    name: str
    t5_max_length: int = 256
    t5_pad_id: int = 1
    t5_attention_mask: bool = True
    clap_max_length: int = 77
    clap_attention_mask: bool = True


MODES: dict[str, TextMode] = {
    # What the reference's training script feeds its text encoders (reference.md section 6).
    "training": TextMode("training", 256, 1, True, 77, True),
    # What the reference's sampling script feeds them.
    "reference-sampling": TextMode("reference-sampling", 256, 0, False, 256, False),
}


def get_mode(mode: str | TextMode) -> TextMode:
    """Return the ``TextMode`` named ``mode`` (or ``mode`` itself); raise ``ValueError`` if unknown."""
    if isinstance(mode, TextMode):
        return mode
    if mode not in MODES:
        raise InputError(f"unknown text mode {mode!r}; choose one of {sorted(MODES)}")
    return MODES[mode]


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 where the device runs it (CPU, CUDA with bf16 support), fp32 elsewhere."""
    device = torch.device(device)
    if device.type == "cpu":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.float32


@dataclass
class TextEmbedding:
    """Encoded prompts for one batch.

    Args:
        txt: Per-token text states for MusicFlux's text stream.
        txt_mask: True where ``txt`` holds a real token (not padding). Informational: MusicFlux
            receives every position, as the reference does.
        y: Pooled text vector for MusicFlux's ``y`` input.

    Shapes:
        txt: (B, L, D_txt); txt_mask: (B, L) bool; y: (B, D_y).
    """

    txt: Tensor
    txt_mask: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.txt.ndim != 3 or self.txt_mask.ndim != 2 or self.y.ndim != 2:
            raise ValueError(
                f"TextEmbedding wants txt (B, L, D), txt_mask (B, L), y (B, D); got "
                f"{tuple(self.txt.shape)}, {tuple(self.txt_mask.shape)}, {tuple(self.y.shape)}"
            )
        if self.txt_mask.shape != self.txt.shape[:2] or self.y.shape[0] != self.txt.shape[0]:
            raise ValueError(
                f"TextEmbedding batch/length mismatch: txt {tuple(self.txt.shape)}, "
                f"txt_mask {tuple(self.txt_mask.shape)}, y {tuple(self.y.shape)}"
            )
        if self.txt_mask.dtype != torch.bool:
            self.txt_mask = self.txt_mask.bool()

    def __len__(self) -> int:
        return self.txt.shape[0]

    @property
    def batch_size(self) -> int:
        """Number of prompts B."""
        return self.txt.shape[0]

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.txt.device

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> TextEmbedding:
        """Select prompts along the batch axis (int, slice, index list or bool mask); an int keeps B = 1.

        Shapes:
            (B, ...) -> (B', ...).
        """
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.txt.device)
            index = index if index.dtype == torch.bool else index.long()
        return TextEmbedding(self.txt[index], self.txt_mask[index], self.y[index])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> TextEmbedding:
        """Move to ``device`` and cast ``txt`` and ``y`` (never the mask) to ``dtype``."""
        return TextEmbedding(
            self.txt.to(device=device, dtype=dtype),
            self.txt_mask.to(device=device),
            self.y.to(device=device, dtype=dtype),
        )

    def repeat(self, n: int) -> TextEmbedding:
        """Repeat every prompt ``n`` times in place order (a, a, b, b for n = 2).

        Shapes:
            (B, ...) -> (B * n, ...).
        """
        return TextEmbedding(
            self.txt.repeat_interleave(n, dim=0),
            self.txt_mask.repeat_interleave(n, dim=0),
            self.y.repeat_interleave(n, dim=0),
        )

    @staticmethod
    def cat(embeddings: Sequence[TextEmbedding]) -> TextEmbedding:
        """Concatenate along the batch axis, e.g. ``cat([cond, uncond])`` for batched guidance.

        Shapes:
            [(B_i, L, D), ...] -> (sum B_i, L, D); every part must share L and D.
        """
        if not embeddings:
            raise ValueError("TextEmbedding.cat needs at least one embedding")
        return TextEmbedding(
            torch.cat([e.txt for e in embeddings]),
            torch.cat([e.txt_mask for e in embeddings]),
            torch.cat([e.y for e in embeddings]),
        )


class TextConditioner(ABC):
    """Turns prompts into ``TextEmbedding`` for MusicFlux.

    Implementations hold frozen encoder weights. ``release()`` frees them; a later ``encode`` reloads
    them from where they were loaded (``from_pretrained`` / the bundled files) and raises
    ``RuntimeError`` for conditioners built in memory, which have nothing to reload from.
    """

    @abstractmethod
    def encode(self, prompts: list[str]) -> TextEmbedding:
        """Encode prompts.

        Shapes:
            len(prompts) = B -> txt (B, L, txt_dim), txt_mask (B, L), y (B, pooled_dim).
        """

    @property
    @abstractmethod
    def txt_dim(self) -> int:
        """Width of ``txt``."""

    @property
    @abstractmethod
    def pooled_dim(self) -> int:
        """Width of ``y``."""

    @property
    @abstractmethod
    def cache_key(self) -> str:
        """Identifies the encoder weights and everything that changes the output (mode, lengths)."""

    @property
    def mode(self) -> str:
        """Encoding mode name (``"default"`` for conditioners with a single mode)."""
        return "default"

    @property
    @abstractmethod
    def device(self) -> torch.device:
        """Device the outputs of ``encode`` are on."""

    @abstractmethod
    def release(self) -> None:
        """Free the encoder weights (see the class docstring for what a later ``encode`` does)."""

    @abstractmethod
    def to(self, device: torch.device | str) -> TextConditioner:
        """Move the encoders to ``device``; returns ``self``."""

    def __call__(self, prompts: list[str]) -> TextEmbedding:
        return self.encode(prompts)


def pad_tokens(tokenizer: Any, prompts: list[str], max_length: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """Tokenise (special tokens added, truncated to ``max_length``) and right-pad with ``pad_id``.

    Padding is done here rather than by the tokenizer so each mode controls the pad id exactly.

    Args:
        tokenizer: Any Hugging Face-style tokenizer: ``tokenizer(list, truncation=True,
            max_length=n)["input_ids"]`` gives one list of ids per prompt.
        prompts: B prompts.
        max_length: L, the padded length.
        pad_id: Id written into every padding position.

    Shapes:
        -> input_ids (B, L) int64, mask (B, L) bool (True on real tokens).
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string")
    encoded = tokenizer(list(prompts), truncation=True, max_length=max_length)["input_ids"]
    ids = torch.full((len(prompts), max_length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), max_length), dtype=torch.bool)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return ids, mask


def set_precision_(model: nn.Module, dtype: torch.dtype, keep_fp32: tuple[str, ...] = ()) -> nn.Module:
    """Cast ``model`` to ``dtype``; under fp16, submodules named in ``keep_fp32`` stay fp32."""
    model.to(dtype)
    if dtype == torch.float16:
        for name, sub in model.named_modules():
            if name.rsplit(".", 1)[-1] in keep_fp32:
                sub.float()
    return model


E = TypeVar("E", bound="FrozenEncoder")


class FrozenEncoder:
    """One frozen model and its tokenizer: device, precision, ``release()`` and reload.

    Args:
        model: The encoder network; put in eval mode with gradients off.
        tokenizer: Its tokenizer (any Hugging Face-style tokenizer object).
        weights_id: Identifies the weights (repo/folder fingerprint, or ``random-seed<N>``).
        loader: ``loader(device, dtype) -> model`` re-reads the weights after ``release()``;
            ``None`` for models built in memory (then ``encode`` after ``release`` raises).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        weights_id: str,
        loader: Callable[[torch.device, torch.dtype], nn.Module] | None = None,
    ) -> None:
        self._model: nn.Module | None = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.config: Any = getattr(model, "config", None)
        self.weights_id = weights_id
        self._loader = loader
        first = next(model.parameters())
        self._device = first.device
        dtypes = {p.dtype for p in model.parameters()}
        self._dtype = next((d for d in dtypes if d != torch.float32), torch.float32)

    @classmethod
    def from_folder(
        cls: type[E],
        load: Callable[[torch.device, torch.dtype], nn.Module],
        tokenizer: Any,
        folder: Path,
        source: str,
        device: torch.device | str,
        dtype: torch.dtype | None,
    ) -> E:
        """An encoder whose weights ``load(device, dtype)`` reads from ``folder`` (and re-reads after
        ``release()``); ``source`` is the repo id or folder and subfolder it came from."""
        dtype = dtype or default_dtype(device)
        weights_id = f"{source}@{folder_fingerprint(folder)}"
        return cls(load(torch.device(device), dtype), tokenizer, weights_id=weights_id, loader=load)

    @property
    def model(self) -> nn.Module:
        """The network, reloaded through ``loader`` if it was released."""
        if self._model is None:
            if self._loader is None:
                raise RuntimeError(
                    f"{type(self).__name__} weights were released and it was built in memory, so there is "
                    "nothing to reload from; build it again"
                )
            logger.info("reloading %s weights (%s)", type(self).__name__, self.weights_id)
            self._model = self._loader(self._device, self._dtype).eval().requires_grad_(False)
        return self._model

    @property
    def device(self) -> torch.device:
        """Device the network runs on."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the network."""
        return self._dtype

    @property
    def released(self) -> bool:
        """Whether the weights are currently freed."""
        return self._model is None

    def release(self) -> None:
        """Drop the network's weights (the tokenizer is kept)."""
        self._model = None

    def to(self, device: torch.device | str) -> FrozenEncoder:
        """Move the network to ``device`` (applies on reload too); returns ``self``."""
        self._device = torch.device(device)
        if self._model is not None:
            self._model.to(self._device)
        return self
