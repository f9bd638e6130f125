"""The component registry: the one place that knows vocoder and text-encoder types.

A model folder's ``vocoder`` and ``text_encoder`` entries are ``{"type": NAME, **options}``. Each type is
one :class:`ComponentType`: how to build it from its options, and (for types that store weights in the
folder) how to save an instance and which option keys name folders inside the model folder. Adding a
vocoder or an encoder is one class plus one entry in :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fluxmusic.errors import InputError

__all__ = [
    "REGISTRY",
    "ComponentType",
    "build_component",
    "component_folders",
    "component_types",
    "save_component",
]

Builder = Callable[[dict[str, Any], Path, torch.device], Any]
Saver = Callable[[Any, Path], dict[str, Any]]


@dataclass(frozen=True)
class ComponentType:
    """One kind of component a model folder can name.

    Attributes:
        name: The entry's ``type``.
        build: ``(options, model folder, device) -> component``; folder options are already resolved.
        saves: The class whose instances :attr:`save` writes (``None``: described by its entry only).
        save: ``(component, model folder) -> entry``: write the component's files, return its entry.
        folders: Option keys that may name folders inside the model folder (relative paths).
        defaults: Options an entry may leave out.
        options: The option keys an entry may hold (``None``: the builder checks its own).
    """

    name: str
    build: Builder
    saves: Callable[[], type] | None = None
    save: Saver | None = None
    folders: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    options: tuple[str, ...] | None = None


def _hifigan(options: dict[str, Any], root: Path, device: torch.device) -> Any:
    from fluxmusic.audio import HifiGanVocoder

    return HifiGanVocoder.from_pretrained(options["path"], options.get("subfolder"), device=device)


def _save_hifigan(vocoder: Any, root: Path) -> dict[str, Any]:
    vocoder.save_pretrained(root / "vocoder")
    return {"type": "hifigan", "path": "vocoder"}


def _griffin_lim(options: dict[str, Any], root: Path, device: torch.device) -> Any:
    from fluxmusic.audio import GriffinLimVocoder

    return GriffinLimVocoder(**options)


def _save_griffin_lim(vocoder: Any, root: Path) -> dict[str, Any]:
    return {"type": "griffin-lim", "n_iter": vocoder.n_iter, "momentum": vocoder.momentum}


def _hifigan_class() -> type:
    from fluxmusic.audio import HifiGanVocoder

    return HifiGanVocoder


def _griffin_lim_class() -> type:
    from fluxmusic.audio import GriffinLimVocoder

    return GriffinLimVocoder


def _text(kind: str) -> Builder:
    def build(options: dict[str, Any], root: Path, device: torch.device) -> Any:
        from fluxmusic.text.factory import build_conditioner

        return build_conditioner(kind, device=device, **options)

    return build


REGISTRY: dict[str, dict[str, ComponentType]] = {
    "vocoder": {
        "hifigan": ComponentType(
            "hifigan",
            _hifigan,
            _hifigan_class,
            _save_hifigan,
            folders=("path",),
            defaults=(("path", "vocoder"),),
            options=("path", "subfolder"),
        ),
        "griffin-lim": ComponentType(
            "griffin-lim", _griffin_lim, _griffin_lim_class, _save_griffin_lim, options=("n_iter", "momentum")
        ),
    },
    "text_encoder": {
        "t5-clap": ComponentType("t5-clap", _text("t5-clap"), folders=("t5", "clap")),
        "minilm": ComponentType("minilm", _text("minilm"), folders=("model_dir",)),
        "tiny": ComponentType("tiny", _text("tiny")),
    },
}
"""slot (``vocoder``, ``text_encoder``) -> type name -> :class:`ComponentType`."""


def component_types(slot: str) -> tuple[str, ...]:
    """The type names a slot accepts."""
    return tuple(REGISTRY[slot])


def _entry(slot: str, entry: Any, where: Path) -> tuple[ComponentType, dict[str, Any]]:
    if slot == "vocoder" and isinstance(entry, str):  # the short form: a HiFi-GAN folder
        entry = {"type": "hifigan", "path": entry}
    if not isinstance(entry, dict):
        raise InputError(f"{where}: {slot!r} must be an object with a 'type', got {entry!r}")
    name = entry.get("type")
    if not isinstance(name, str) or name not in REGISTRY[slot]:
        raise InputError(
            f"unknown {slot} type {name!r} in {where}; use one of {', '.join(component_types(slot))}"
        )
    kind = REGISTRY[slot][name]
    options = {k: v for k, v in entry.items() if k != "type"}
    unknown = sorted(set(options) - set(kind.options)) if kind.options is not None else []
    if unknown:
        raise InputError(
            f"{where}: bad {slot} options {unknown} for type {name!r}; it takes {', '.join(kind.options)}"
        )
    return kind, {**dict(kind.defaults), **options}


def component_folders(slot: str, entry: Any, root: Path) -> list[str]:
    """The folders inside ``root`` that an entry's component reads (copied when bundling)."""
    kind, options = _entry(slot, entry, root)
    return [
        options[k] for k in kind.folders if isinstance(options.get(k), str) and (root / options[k]).is_dir()
    ]


def build_component(slot: str, entry: Any, root: Path, device: torch.device, **extra: Any) -> Any:
    """Build the component an entry names; folder options are relative to ``root`` when they exist there.

    Args:
        slot: ``vocoder`` or ``text_encoder``.
        entry: The entry from ``fluxmusic.json`` (or built by the trainer).
        root: The model folder.
        device: Where the weights go.
        **extra: More options for the builder (e.g. ``embedding_cache_dir`` for text encoders).

    Raises:
        ValueError: an unknown type or a malformed entry, naming the folder.
        fluxmusic.hub.WeightsNotFoundError: its files are missing.
    """
    kind, options = _entry(slot, entry, root)
    for key in kind.folders:
        if isinstance(options.get(key), str) and (root / options[key]).exists():
            options[key] = str(root / options[key])
    try:
        return kind.build({**options, **extra}, root, device)
    except TypeError as err:  # unknown options in the entry
        raise InputError(
            f"{root}: bad {slot} options {sorted(options)} for type {kind.name!r}: {err}"
        ) from None


def save_component(slot: str, component: Any, root: Path) -> dict[str, Any]:
    """Write a component's files into ``root``; returns its entry.

    Raises:
        ValueError: no registered type saves this class.
    """
    savers = {kind.saves(): kind for kind in REGISTRY[slot].values() if kind.saves and kind.save}
    for cls in type(component).__mro__:  # the most specific registered class wins
        if cls in savers:
            return savers[cls].save(component, root)  # type: ignore[misc]
    raise InputError(f"cannot save a {slot} of type {type(component).__name__}")
