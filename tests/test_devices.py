"""Device and dtype policy."""

from __future__ import annotations

import pytest
import torch

from fluxmusic import devices


def test_auto_dtype_uses_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.resolve_dtype("auto", cpu) == torch.float32
    assert devices.resolve_dtype("auto", cuda) == torch.bfloat16
    assert devices.resolve_dtype("bfloat16", cpu) == torch.bfloat16  # an explicit choice is kept
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.resolve_dtype("auto", cpu) == torch.bfloat16
    assert devices.resolve_dtype(None, torch.device("mps")) == torch.float32


def test_unknown_device_and_dtype_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        devices.resolve_device("gpu0")
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        devices.resolve_dtype("int8", torch.device("cpu"))
