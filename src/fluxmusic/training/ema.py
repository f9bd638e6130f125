"""Exponential moving average of the trainable weights, one update per optimizer step.

The shadow copies live beside the parameters (same device, same sharding under FSDP2), in fp32.
``shadow <- shadow + (1 - decay) * (param - shadow)`` runs as one fused ``_foreach_lerp_``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["EMA"]


class EMA:
    """EMA of named parameters.

    Args:
        named_params: ``(name, parameter)`` pairs to track (the trainable ones); names are the unwrapped
            model's state-dict keys.
        decay: Per-step decay.
    """

    def __init__(self, named_params: Iterable[tuple[str, nn.Parameter]], decay: float) -> None:
        self.decay = decay
        pairs = list(named_params)
        self.names = [name for name, _ in pairs]
        self.params = [p for _, p in pairs]
        with torch.no_grad():
            self.shadow = [p.detach().clone().float() for p in self.params]

    @torch.no_grad()
    def update(self, keep: Tensor | None = None) -> None:
        """Move the shadow weights toward the current parameters.

        Args:
            keep: A 0-d tensor on the device, 1.0 to update and 0.0 to leave the shadow as it is (an
                optimizer step skipped on the device); None: update.
        """
        current = [p.detach() if p.dtype == torch.float32 else p.detach().float() for p in self.params]
        weight = 1.0 - self.decay if keep is None else keep * (1.0 - self.decay)
        torch._foreach_lerp_(self.shadow, current, weight)

    def local_state(self) -> dict[str, Tensor]:
        """Shadow tensors by name, as held by this rank (DTensor shards under FSDP2)."""
        return dict(zip(self.names, self.shadow))

    def full_state(self) -> dict[str, Tensor]:
        """Full CPU shadow tensors by name (a collective under FSDP2: every rank must call it)."""
        out = {}
        for name, tensor in zip(self.names, self.shadow):
            full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            out[name] = full.detach().cpu().clone()
        return out

    @torch.no_grad()
    def load_full_state(self, state: dict[str, Tensor]) -> None:
        """Copy full tensors into the shadow (each rank keeps its own shard under FSDP2).

        Raises:
            KeyError: ``state`` lacks a tracked name.
        """
        missing = [name for name in self.names if name not in state]
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} tensors, e.g. {missing[:3]}")
        for name, shadow in zip(self.names, self.shadow):
            full = state[name].to(torch.float32)
            if hasattr(shadow, "full_tensor"):
                from torch.distributed.tensor import distribute_tensor

                local = distribute_tensor(full.to(shadow.device), shadow.device_mesh, shadow.placements)
                shadow.copy_(local)
            else:
                shadow.copy_(full.to(shadow.device))
