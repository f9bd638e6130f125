"""Finding a model by name: the bundled model, a released FluxMusic size, or a model folder."""

from __future__ import annotations

from pathlib import Path

import torch

from fluxmusic.errors import InputError
from fluxmusic.hub import WeightsNotFoundError
from fluxmusic.modelfolder.load import BUNDLED_NAME, Components, bundled_model_dir, load_model_dir
from fluxmusic.modelfolder.released import RELEASED, load_released

__all__ = ["load_components"]


def load_components(
    name_or_path: str | Path | None, device: torch.device, text_mode: str = "training", lean: bool = True
) -> tuple[Components, bool]:
    """Find a model by name: ``None``/``"bundled"``, a released size, or a model folder.

    ``lean``: a released size's lean stages (``fluxmusic.modelfolder.released.load_released``).

    Returns:
        (the components, whether they are a released size).

    Raises:
        WeightsNotFoundError: files missing (offline); one line naming each.
        ValueError: an unknown name or a malformed model folder.
    """
    name = BUNDLED_NAME if name_or_path is None else str(name_or_path)
    if name in RELEASED:
        return load_released(name, device, text_mode=text_mode, lean=lean), True
    if name == BUNDLED_NAME:
        folder = bundled_model_dir()
        if not folder.is_dir():
            raise WeightsNotFoundError(
                f"this installation has no bundled model ({folder}); pass --model with a released "
                "size or a model folder"
            )
        return load_model_dir(folder, device, require_hashes=True), False
    if Path(name).is_dir():
        return load_model_dir(Path(name), device), False
    raise InputError(
        f"unknown model {name!r}: not a folder, and not one of {BUNDLED_NAME}, {', '.join(RELEASED)}"
    )
