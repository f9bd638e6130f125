"""LoRA adapters for MusicFlux through peft: inject, save, load and remove.

Targets (``LoRAConfig.targets``):
    ``attention``: double blocks' ``img_attn``/``txt_attn`` ``qkv`` and ``proj``; single blocks' ``linear1``
    (fused qkv + MLP input) and ``linear2`` (attention output + MLP output).
    ``mlp``: double blocks' ``img_mlp``/``txt_mlp`` linears (single blocks' fused linears are included too).

An adapter folder holds peft's ``adapter_config.json`` and ``adapter_model.safetensors`` (keys without
the adapter name, as ``peft.get_peft_model_state_dict`` writes them). Removing the adapter puts the
original ``nn.Linear`` modules back, so the model computes exactly what it did before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fluxmusic.errors import InputError

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "adapter_state",
    "add_lora",
    "has_lora",
    "load_lora",
    "lora_config",
    "merge_lora",
    "remove_lora",
    "save_adapter",
    "ship_adapter",
    "target_pattern",
]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_NAME = "default"

_ATTENTION = r"double_blocks\.\d+\.(img_attn|txt_attn)\.(qkv|proj)"
_MLP = r"double_blocks\.\d+\.(img_mlp|txt_mlp)\.(0|2)"
_SINGLE = r"single_blocks\.\d+\.(linear1|linear2)"


def _peft() -> Any:
    try:
        import peft
    except ImportError as err:  # pragma: no cover - peft is a dependency
        raise ImportError("LoRA needs peft: pip install 'peft>=0.12'") from err
    return peft


def target_pattern(targets: Iterable[str]) -> str:
    """A full-match regex over module names for the chosen target groups."""
    targets = set(targets)
    parts = [_SINGLE]
    if "attention" in targets:
        parts.append(_ATTENTION)
    if "mlp" in targets:
        parts.append(_MLP)
    return "^(" + "|".join(parts) + ")$"


def lora_config(rank: int, alpha: float, dropout: float, targets: Iterable[str], base: str = "") -> Any:
    """A ``peft.LoraConfig`` for MusicFlux."""
    peft = _peft()
    return peft.LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_pattern(targets),
        bias="none",
        base_model_name_or_path=base or None,
    )


def add_lora(model: nn.Module, config: Any) -> nn.Module:
    """Inject LoRA layers into ``model`` in place and freeze everything but them; returns ``model``."""
    peft = _peft()
    peft.inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    for name, param in model.named_parameters():
        param.requires_grad_(".lora_" in name)
    return model


def has_lora(model: nn.Module) -> bool:
    """Whether LoRA layers are injected."""
    from peft.tuners.lora import LoraLayer

    return any(isinstance(m, LoraLayer) for m in model.modules())


def remove_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRA layer by its original base layer (no merge); returns ``model``."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA layer into its base linear (``W + scale * B A``) and remove it; returns ``model``.

    The merged model is a plain MusicFlux again (no peft modules, the base's speed) that computes what the
    model with the adapter computed, up to float rounding.
    """
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
    return remove_lora(model)


def adapter_state(named: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Adapter tensors in peft's file format (the adapter name removed from the keys)."""
    marker = f".{ADAPTER_NAME}."
    return {k.replace(marker, "."): v for k, v in named.items() if ".lora_" in k}


def save_adapter(
    out_dir: str | os.PathLike[str], config: Any, state: Mapping[str, Tensor], name: str = ADAPTER_WEIGHTS
) -> Path:
    """Write ``adapter_config.json`` and the adapter weights (safetensors) into ``out_dir``."""
    from safetensors.torch import save_file

    from fluxmusic.files import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter_state(state).items()}
    atomic_write(out / name, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_adapter_config(out / ADAPTER_CONFIG, config)
    return out


def _config_dict(config: Any) -> dict[str, Any]:
    """A ``peft.LoraConfig`` as ``adapter_config.json`` holds it (sets as sorted lists)."""
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.to_dict().items()}


def write_adapter_config(path: Path, config: Any) -> None:
    """peft's ``adapter_config.json`` for ``config`` (sets written as lists)."""
    from fluxmusic.files import atomic_write

    text = json.dumps(_config_dict(config), indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_lora(
    model: nn.Module, path: str | os.PathLike[str], weight_name: str = ADAPTER_WEIGHTS
) -> nn.Module:
    """Inject the adapter stored in ``path`` (a folder with ``adapter_config.json``) into ``model``.

    Raises:
        FileNotFoundError: missing adapter files.
        ValueError: the adapter does not fit the model (missing or mis-shaped tensors).
    """
    from safetensors.torch import load_file

    peft = _peft()
    folder = Path(path)
    if not (folder / ADAPTER_CONFIG).is_file() or not (folder / weight_name).is_file():
        raise FileNotFoundError(
            f"{folder} is not a LoRA adapter folder (needs {ADAPTER_CONFIG} and {weight_name})"
        )
    if has_lora(model):
        raise InputError("a LoRA adapter is already loaded; unload it first")
    config = peft.LoraConfig.from_pretrained(str(folder))
    config.inference_mode = True
    add_lora(model, config)
    state = load_file(str(folder / weight_name))
    expected = adapter_state({k: v for k, v in model.state_dict().items() if ".lora_" in k})
    missing = sorted(set(expected) - set(state))
    misshaped = [k for k in set(expected) & set(state) if expected[k].shape != state[k].shape]
    if missing or misshaped or set(state) - set(expected):
        remove_lora(model)
        raise InputError(
            f"adapter {folder} does not fit this transformer: {len(missing)} missing, "
            f"{len(misshaped)} mis-shaped, {len(set(state) - set(expected))} unexpected tensors"
        )
    peft.set_peft_model_state_dict(model, state, adapter_name=ADAPTER_NAME)
    model.requires_grad_(False)
    return model


_SHIPPED_KEYS = (  # what defines a plain LoRA in peft's adapter_config.json
    "peft_type",
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "bias",
    "fan_in_fan_out",
    "use_rslora",
    "use_dora",
    "rank_pattern",
    "alpha_pattern",
)
_INFO_KEYS = ("base_model_name_or_path", "revision", "peft_version", "inference_mode", "task_type")


def ship_adapter(src: str | os.PathLike[str], dst: str | os.PathLike[str], dtype: torch.dtype) -> Path:
    """Copy an adapter folder for shipping: float weights in ``dtype``, the config cut to what defines it.

    The config keeps only keys every peft release reads (no training machine's base path, no fields a
    newer peft added), so the copy loads with any supported peft.

    Raises:
        FileNotFoundError: ``src`` is not an adapter folder.
        ValueError: the config sets something beyond plain LoRA (it would be lost).
    """
    from safetensors.torch import load_file, save_file

    from fluxmusic.files import atomic_write

    src, dst = Path(src), Path(dst)
    if not (src / ADAPTER_CONFIG).is_file() or not (src / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{src} is not a LoRA adapter folder (needs {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS})"
        )
    config = json.loads((src / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    defaults = json.loads(json.dumps(_config_dict(lora_config(1, 1.0, 0.0, ("attention",))), default=str))
    unusual = sorted(
        k
        for k, v in config.items()
        if k not in _SHIPPED_KEYS and k not in _INFO_KEYS and k in defaults and v != defaults[k]
    )
    if unusual:
        raise InputError(f"{src / ADAPTER_CONFIG} sets {unusual}; only plain LoRA adapters can be shipped")
    text = json.dumps({k: config[k] for k in _SHIPPED_KEYS if k in config}, indent=2) + "\n"
    state = {
        k: v.to(dtype) if v.is_floating_point() else v
        for k, v in load_file(str(src / ADAPTER_WEIGHTS)).items()
    }
    dst.mkdir(parents=True)
    atomic_write(dst / ADAPTER_CONFIG, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    atomic_write(dst / ADAPTER_WEIGHTS, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    return dst
