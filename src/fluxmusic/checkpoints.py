"""Safe loading of MusicFlux weights (reference ``.pt``, safetensors, our model folders) and conversion.

Reference checkpoints are pickles; they are only ever read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers (``argparse.Namespace``, which the reference
trainer stores next to the weights, is the one allow-listed class: building it runs no code).
Everything we write is safetensors with a ``config.json`` beside it, written atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from fluxmusic.config import PRESETS, RELEASED_PRESETS, MusicFluxConfig
from fluxmusic.errors import InputError
from fluxmusic.files import atomic_write, atomic_write_text
from fluxmusic.model import MusicFlux

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
STATE_KEYS = ("ema", "model", "state_dict", "module")


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit the model; the message says why and what to do."""


def read_state_dict(path: str | Path, key: str | None = None) -> dict[str, Tensor]:
    """Read a state dict from a reference ``.pt``/``.pth``, a safetensors file, or one of our folders.

    Args:
        path: The file or folder.
        key: For a pickled dict of state dicts, which entry to take (default: ``"ema"`` if present,
            else ``"model"``, ``"state_dict"`` or ``"module"``); a bare state dict needs none.

    Raises:
        CheckpointError: missing file, unsafe or corrupt pickle, or no state dict inside.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; pass a .pt, .safetensors file or a model folder"
        )
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"cannot read safetensors file {path}: {err}") from None
    else:
        state = _state_dict_from_pickle(path, key)
    return {_strip_prefix(k): v for k, v in state.items()}


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


_PLAIN_GLOBALS = ("torch.", "collections.OrderedDict", "argparse.Namespace", "_codecs.encode")


def _pickle_globals(path: Path) -> list[str] | None:
    """The classes and functions a pickle names, read without running it; ``None``: not a pickle."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                data = archive.read(names[0]) if names else b""
        else:
            with open(path, "rb") as handle:
                data = handle.read(1 << 24)
        found, strings = [], []
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings.append(str(arg))
            elif opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(".".join(strings[-2:]))
        return found
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, IndexError):
        return None


def _unpickle(path: Path) -> object:
    """``torch.load(weights_only=True)``, with our own one-line messages instead of torch's advice."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": not the user's business
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError:
        found = _pickle_globals(path)
        if found is None:
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (it cannot be unpickled)") from None
        named = [g for g in found if not g.startswith(_PLAIN_GLOBALS)]
        what = f" ({', '.join(named[:3])})" if named else ""
        raise CheckpointError(
            f"refusing to load {path}: it contains code or objects other than tensors{what}; nothing in it "
            "was run. Only plain-tensor checkpoints are read: save one with torch.save(model.state_dict())"
        ) from None
    except Exception as err:  # the unpickler fails on garbage in many ways; all mean "not a checkpoint"
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({_first_line(err)})") from None


def _tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(v, Tensor) for v in obj.values())


def _state_dict_from_pickle(path: Path, key: str | None) -> dict[str, Tensor]:
    obj = _unpickle(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if _tensor_dict(obj):
        if key is not None:
            raise CheckpointError(f"{path} is a bare state dict; it has no entry {key!r}")
        state = obj
    else:
        keys = [key] if key is not None else [k for k in STATE_KEYS if k in obj]
        if not keys or keys[0] not in obj:
            wanted = keys[0] if keys else "ema/model"
            entries = sorted(map(str, obj))
            raise CheckpointError(f"{path} has no state dict under {wanted!r}; its entries are {entries}")
        state = obj[keys[0]]
        if not _tensor_dict(state):
            raise CheckpointError(f"{path}[{keys[0]!r}] is not a state dict of tensors")
        logger.info("read %s[%r] (%d tensors)", path, keys[0], len(state))
    names = [k for k in state if not isinstance(k, str)]
    if names:
        raise CheckpointError(f"{path}: state dict keys must be parameter names, found {names[:3]!r}")
    return dict(state)


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def infer_config(state: Mapping[str, Tensor]) -> tuple[str | None, MusicFluxConfig]:
    """Find the config whose weights have these shapes.

    The depths, widths and head count follow from the shapes; the rotary ``axes_dim`` does not, so
    it is taken from the released preset with the same shapes.

    Returns:
        (preset name or None, config).

    Raises:
        CheckpointError: the weights match no preset and their ``axes_dim`` cannot be known.
    """
    try:
        hidden, in_channels = state["img_in.weight"].shape
        context = state["txt_in.weight"].shape[1]
        vec = state["vector_in.in_layer.weight"].shape[1]
        head_dim = state["single_blocks.0.norm.query_norm.scale"].shape[0]
    except KeyError as err:
        raise CheckpointError(f"not a MusicFlux state dict: key {err} is missing") from None
    depth = _count_blocks(state, "double_blocks")
    single = _count_blocks(state, "single_blocks")
    mlp_key = "double_blocks.0.img_mlp.0.weight"
    mlp_ratio = state[mlp_key].shape[0] / hidden if mlp_key in state else 4.0
    fields = dict(
        in_channels=in_channels,
        vec_in_dim=vec,
        context_in_dim=context,
        hidden_size=hidden,
        num_heads=hidden // head_dim,
        depth=depth,
        depth_single_blocks=single,
        mlp_ratio=mlp_ratio,
        qkv_bias="double_blocks.0.img_attn.qkv.bias" in state or depth == 0,
    )
    for name in (*RELEASED_PRESETS, "tiny"):
        preset = PRESETS[name]
        if all(getattr(preset, k) == v for k, v in fields.items()):
            return name, preset
    raise CheckpointError(
        f"these weights (hidden {hidden}, {depth} double / {single} single blocks) match no preset; "
        "pass the model config (a config.json beside the weights, or --preset)"
    )


def _count_blocks(state: Mapping[str, Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def load_state_strict(model: MusicFlux, state: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with one error naming missing, unexpected and mis-shaped keys.

    Works for models built on the meta device (the tensors are assigned, not copied).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    misshaped += sorted(
        f"{k} is {str(state[k].dtype).removeprefix('torch.')}, not floating point"
        for k in set(own) & set(state)
        if own[k].is_floating_point() and not state[k].is_floating_point()
    )
    if missing or unexpected or misshaped:
        parts = [
            f"{label} ({len(keys)}): {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if keys
        ]
        raise CheckpointError(
            f"{source} does not fit MusicFlux(hidden={model.config.hidden_size}, depth={model.config.depth}, "
            f"single={model.config.depth_single_blocks}): " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True, assign=True)


def _read_config(path: Path) -> MusicFluxConfig | None:
    config_path = (path if path.is_dir() else path.parent) / CONFIG_NAME
    if not config_path.is_file():
        return None
    try:
        data = json.loads(config_path.read_text())
        return MusicFluxConfig.from_dict(data.get("config", data))
    except (json.JSONDecodeError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"invalid {config_path}: {err}") from None


def load_musicflux(
    path: str | Path,
    preset: str | None = None,
    key: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> MusicFlux:
    """Build a MusicFlux and load weights strictly from a reference ``.pt``, safetensors or our folder.

    The config comes from ``preset`` if given, else from a ``config.json`` beside the weights, else
    from the weights' shapes. The model is built on the meta device, so nothing is initialised twice.

    Raises:
        CheckpointError: unreadable or unsafe file, unknown preset, or weights that do not fit.
    """
    path = Path(path)
    state = read_state_dict(path, key)
    if preset is not None:
        if preset not in PRESETS:
            raise CheckpointError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        config = PRESETS[preset]
    else:
        config = _read_config(path) or infer_config(state)[1]
    with torch.device("meta"):
        model = MusicFlux(config)
    state = {k: v.to(device=device, dtype=dtype or v.dtype) for k, v in state.items()}
    load_state_strict(model, state, source=str(path))
    return model.eval()


def save_musicflux(model: MusicFlux, out_dir: str | Path, extra: Mapping[str, object] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (the config rebuilds the model) atomically.

    Returns:
        The output folder.
    """
    out_dir = Path(out_dir)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(out_dir / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    config = {"model_type": "musicflux", "config": model.config.to_dict(), **(extra or {})}
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return out_dir


def convert(
    src: str | Path, out_dir: str | Path, preset: str | None = None, key: str | None = None
) -> tuple[Path, str | None]:
    """Convert a reference checkpoint into our folder format (safetensors + config.json).

    Returns:
        (output folder, detected or given preset name).

    Raises:
        CheckpointError: an unreadable or unsafe source, or ``out_dir`` exists and is not empty.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} exists and is not an empty folder; choose a new one or remove it first")
    if preset is not None and preset not in PRESETS:
        raise CheckpointError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    state = read_state_dict(src, key)
    name, config = (preset, PRESETS[preset]) if preset is not None else infer_config(state)
    with torch.device("meta"):
        model = MusicFlux(config)
    load_state_strict(model, state, source=str(src))
    return save_musicflux(model, out_dir, extra={"preset": name, "source": Path(src).name}), name
