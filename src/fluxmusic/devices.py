"""Device and dtype policy: which device ``auto`` means, and when bf16 is worth using."""

from __future__ import annotations

import torch

from fluxmusic.errors import InputError

__all__ = ["DTYPES", "cpu_has_fast_bf16", "resolve_device", "resolve_dtype"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else is parsed as a torch device.

    Raises:
        ValueError: not a device name torch knows.
    """
    if str(device) != "auto":
        try:
            return torch.device(device)
        except RuntimeError:
            raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), as oneDNN reports it.

    Without it (e.g. AVX2-only CPUs) bf16 autocast is emulated and runs many times slower than fp32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: play safe
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Transformer compute dtype. ``auto``: bf16 autocast on CUDA and on CPUs with native bf16, else fp32.

    Raises:
        ValueError: an unknown dtype name.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; use auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]
