"""Build large encoders without paying for their initialisation.

``params_on_meta()`` constructs a module with its parameters on the meta device (no memory, no init
cost) while buffers such as position ids stay real; ``materialize_(module, ...)`` then allocates the
parameters and fills them cheaply with a fixed-seed random pattern. Used for tests and benchmarks of
T5-XXL, whose plain initialisation takes over a minute on CPU. Real weights are loaded elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["count_parameters", "materialize_", "params_on_meta"]

logger = logging.getLogger(__name__)

# Length of the random block every parameter is tiled from (not a power of two, so rows differ).
_BLOCK = 4_194_319


@contextlib.contextmanager
def params_on_meta() -> Iterator[None]:
    """Within this context, every registered ``nn.Parameter`` is moved to the meta device.

    Buffers are created normally, so they keep their computed values. Patches
    ``nn.Module.register_parameter`` for the duration of the context (not thread-safe).
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def count_parameters(module: nn.Module) -> int:
    """Number of distinct parameter elements (tied parameters counted once); works on meta."""
    return sum(p.numel() for p in module.parameters())


def _fan_in_std(param: torch.Tensor) -> float:
    return float(param.shape[-1]) ** -0.5


@torch.no_grad()
def materialize_(
    module: nn.Module,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    keep_fp32: tuple[str, ...] = (),
) -> nn.Module:
    """Allocate meta parameters on ``device`` and fill them with a cheap fixed-seed random pattern.

    Biases become 0, 1-D weights (norm scales) 1, and every other weight a normal pattern with
    std ``fan_in ** -0.5``, tiled from one block of ``_BLOCK`` random numbers drawn from a
    ``torch.Generator`` seeded with ``seed`` (start offsets differ per parameter). Tied parameters stay
    tied; buffers are moved to ``device`` unchanged. The whole module ends in eval mode.

    Args:
        module: Module built under ``params_on_meta()`` (or on the meta device without buffers).
        device: Where to allocate.
        dtype: Floating dtype of the parameters.
        seed: Seed of the random block.
        keep_fp32: Submodule names (last path component, e.g. ``"wo"``) whose parameters stay fp32.
    """
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(_BLOCK, generator=generator)
    blocks: dict[tuple[torch.dtype, float], torch.Tensor] = {}  # (dtype, std) -> doubled, scaled block
    done: dict[int, nn.Parameter] = {}
    for module_name, sub in module.named_modules():
        param_dtype = torch.float32 if module_name.rsplit(".", 1)[-1] in keep_fp32 else dtype
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            if id(param) in done:
                sub._parameters[name] = done[id(param)]
                continue
            if param.device.type != "meta":
                new = nn.Parameter(param.to(device=device, dtype=param_dtype), requires_grad=False)
            else:
                data = torch.empty(param.shape, dtype=param_dtype, device=device)
                if name == "bias":
                    data.zero_()
                elif data.ndim == 1:
                    data.fill_(1.0)
                else:
                    key = (param_dtype, _fan_in_std(data))
                    if key not in blocks:
                        scaled = torch.cat((base, base)) * key[1]
                        blocks[key] = scaled.to(device=device, dtype=param_dtype)
                    _tile_(data, blocks[key], offset=(len(done) * 7919) % _BLOCK)
                new = nn.Parameter(data, requires_grad=False)
            done[id(param)] = new
            sub._parameters[name] = new
        for name, buf in list(sub._buffers.items()):
            if buf is not None:
                if buf.device.type == "meta":
                    raise ValueError(f"buffer {module_name}.{name} is on meta; build under params_on_meta()")
                sub._buffers[name] = buf.to(device)
    logger.debug("materialised %d parameters (%s, seed %d)", len(done), dtype, seed)
    return module.eval()


def _tile_(data: torch.Tensor, block: torch.Tensor, offset: int) -> None:
    flat = data.view(-1)
    start = 0
    while start < flat.numel():
        size = min(flat.numel() - start, _BLOCK)
        flat[start : start + size].copy_(block[offset : offset + size])
        start += size
