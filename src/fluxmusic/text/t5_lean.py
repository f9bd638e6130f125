"""Lean T5-XXL: int8 dynamic quantisation of its linear layers, and blocks streamed from safetensors.

T5-XXL's encoder is 4.76 B parameters (9.5 GB in bf16), about ten times everything else FluxMusic runs.
Two ways to hold it in less memory, usable together or alone:

- **int8** (:func:`quantize_linears_`): every ``nn.Linear`` of the blocks becomes a dynamically
  quantised int8 linear (per-output-channel weight scales, activations quantised per call; PyTorch's
  fbgemm kernels, which use AVX-512 VNNI). 1 byte per weight instead of 2, and about 1.3-1.5x the speed
  of bf16 matrix products on an AVX-512 CPU. Activations then run in fp32 (the embedding output is cast).
- **streaming** (:func:`stream_blocks_`): the blocks stay on the meta device; before each block runs its
  weights are read from the safetensors files (one block, about 0.39 GB in bf16, at a time) and they are
  dropped again after it. Exactly the resident model's output, for a few seconds of reading per call
  (from the page cache when the files were read recently).

Shapes:
    The encoder's input and output shapes are unchanged: input_ids (B, L) -> states (B, L, d_model).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor, nn

from fluxmusic.errors import InputError

__all__ = ["QUANTIZE", "WeightIndex", "float_embedding_output_", "quantize_linears_", "stream_blocks_"]

logger = logging.getLogger(__name__)

QUANTIZE = ("int8",)
"""Quantisation schemes a T5 encoder may be built with (``None`` = none)."""

_INDEX = "model.safetensors.index.json"


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """torch.ao's eager quantisation warns that it is deprecated on every call; it still is the fast path."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantize_per_(tensor|channel)")
        yield


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    return "fbgemm" if "fbgemm" in engines else ("qnnpack" if "qnnpack" in engines else engines[0])


def check_quantize(quantize: str | None) -> None:
    """Refuse an unknown scheme, or int8 where this torch build has no int8 kernels.

    Raises:
        InputError: naming the scheme and the ones available.
    """
    if quantize is None:
        return
    if quantize not in QUANTIZE:
        raise InputError(f"unknown T5 quantisation {quantize!r}; use one of {', '.join(QUANTIZE)} or none")
    if not any(e in torch.backends.quantized.supported_engines for e in ("fbgemm", "qnnpack")):
        raise InputError("this torch build has no int8 CPU kernels (fbgemm or qnnpack); use no quantisation")


@torch.no_grad()
def quantize_linears_(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` by an int8 dynamically quantised linear, in place.

    Weights get one scale per output channel; each call quantises its input per tensor. The linears
    must be on the CPU; they are cast to fp32 first (what the int8 kernels quantise from). Only one
    linear at a time exists in fp32, so the peak stays at the int8 size plus one fp32 weight.

    Shapes:
        Each linear keeps (..., in) -> (..., out), now fp32 in and out.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    torch.backends.quantized.engine = _engine()
    names = [name for name, sub in module.named_modules() if isinstance(sub, nn.Linear)]
    with _quiet_quantization():
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            linear = getattr(parent, child).float()
            holder = nn.Sequential(linear)
            spec = {nn.Linear: per_channel_dynamic_qconfig}
            quantize_dynamic(holder, spec, dtype=torch.qint8, inplace=True)
            setattr(parent, child, holder[0])
    return module


def float_embedding_output_(embedding: nn.Module) -> None:
    """Cast an embedding's output to fp32 (the int8 linears take fp32), keeping its table's dtype."""

    def to_float(_module: nn.Module, _inputs: tuple[Any, ...], output: Tensor) -> Tensor:
        return output.float()

    embedding.register_forward_hook(to_float)


class WeightIndex:
    """Which safetensors file of a model folder holds each tensor (sharded or single file).

    Args:
        folder: Holds ``model.safetensors.index.json`` (sharded) or ``model.safetensors``.

    Raises:
        InputError: no safetensors weights in ``folder`` (streaming needs safetensors).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index, single = self.folder / _INDEX, self.folder / "model.safetensors"
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            self.files = {key: self.folder / name for key, name in weight_map.items()}
        elif single.is_file():
            with safe_open(str(single), framework="pt") as handle:
                self.files = {key: single for key in handle.keys()}
        else:
            raise InputError(
                f"{self.folder}: streaming T5 needs safetensors weights ({_INDEX} or model.safetensors)"
            )

    def keys(self) -> list[str]:
        """Every tensor name."""
        return list(self.files)

    def read(self, prefix: str, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        """The tensors whose names start with ``prefix`` (the prefix removed), cast to ``dtype``.

        Each file is mapped only while its tensors are copied out, so nothing stays resident but the
        returned tensors.
        """
        by_file: dict[Path, list[str]] = {}
        for key, path in self.files.items():
            if key.startswith(prefix):
                by_file.setdefault(path, []).append(key)
        out: dict[str, Tensor] = {}
        for path, keys in by_file.items():
            with safe_open(str(path), framework="pt") as handle:
                for key in keys:
                    tensor = handle.get_tensor(key)
                    out[key.removeprefix(prefix)] = tensor if dtype is None else tensor.to(dtype)
        return out


def _to_meta_(block: nn.Module) -> None:
    for sub in block.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None:
                sub._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=False)


def stream_blocks_(
    blocks: nn.ModuleList,
    index: WeightIndex,
    prefix: str,
    dtype: torch.dtype,
    device: torch.device,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
) -> None:
    """Make each block of ``blocks`` load its weights just before it runs and drop them right after.

    Args:
        blocks: Modules whose parameters are (or may be put) on the meta device.
        index: Where the weights are.
        prefix: Name prefix of the blocks in the files, e.g. ``"encoder.block."`` (block i reads
            ``f"{prefix}{i}."``).
        dtype: Compute dtype of the loaded weights.
        device: Where they are loaded.
        prepare: Applied to a block after loading, e.g. :func:`quantize_linears_` (its linears go back
            to meta ``nn.Linear`` modules when the block is dropped).
    """
    for i, block in enumerate(blocks):
        _to_meta_(block)
        linears = {n: m.bias is not None for n, m in block.named_modules() if isinstance(m, nn.Linear)}

        def load(module: nn.Module, _inputs: tuple[Any, ...], i: int = i) -> None:
            state = index.read(f"{prefix}{i}.", dtype)
            missing = [k for k, p in module.named_parameters() if k not in state]
            if missing:
                raise InputError(f"{index.folder}: block {i} weights missing: {', '.join(missing[:5])}")
            module.load_state_dict(state, strict=False, assign=True)
            module.to(device)
            if prepare is not None:
                prepare(module)

        def drop(module: nn.Module, _inputs: tuple[Any, ...], _output: Any, linears: dict = linears) -> None:
            for name, bias in linears.items():
                current = module.get_submodule(name)
                if type(current) is not nn.Linear:  # a prepared (quantised) linear: back to a meta Linear
                    parent_name, _, child = name.rpartition(".")
                    parent = module.get_submodule(parent_name) if parent_name else module
                    setattr(parent, child, _meta_linear(current, bias))
            _to_meta_(module)

        block.register_forward_pre_hook(load)
        block.register_forward_hook(drop)
    logger.debug("streaming %d blocks from %s", len(blocks), index.folder)


def _meta_linear(quantized: nn.Module, bias: bool) -> nn.Linear:
    with torch.device("meta"):
        return nn.Linear(quantized.in_features, quantized.out_features, bias=bias)
