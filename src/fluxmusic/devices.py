"""Device and dtype policy: which device ``auto`` means, and when bf16 is worth using."""

from __future__ import annotations

import torch

from fluxmusic.errors import InputError

__all__ = ["DTYPES", "check_available", "cpu_has_fast_bf16", "resolve_device", "resolve_dtype"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else is parsed and must exist here.

    Raises:
        InputError: not a device name torch knows, or a device this machine does not have.
    """
    if str(device) != "auto":
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
        check_available(chosen)
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_available(device: torch.device) -> None:
    """Refuse a CUDA or MPS device this machine does not have, before anything is loaded onto it.

    Raises:
        InputError: naming the device and what is available.
    """
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device {device} asked for, but this machine has no CUDA GPU; use cpu or auto")
        if device.index is not None and device.index >= count:
            raise InputError(
                f"device {device} not found: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(
                f"device {device} asked for, but Apple MPS is not available here; use cpu or auto"
            )


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
