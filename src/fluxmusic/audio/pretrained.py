"""Loading and saving the pretrained audio components (VAE, HiFi-GAN): one folder format, one resolver.

A component folder holds ``config.json`` and one safetensors weight file (never a pickle); it is found
through :func:`fluxmusic.hub.resolve_folder` (a local folder, its ``subfolder``, or a hub id).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from fluxmusic.hub import resolve_folder

__all__ = ["CONFIG_NAME", "PretrainedComponent"]

CONFIG_NAME = "config.json"
P = TypeVar("P", bound="PretrainedComponent")


class PretrainedComponent:
    """``from_pretrained`` / ``save_pretrained`` for a wrapper around one diffusers or transformers model.

    Subclasses set ``weights_name``, ``default_subfolder``, ``default_config`` and ``inner_name`` (the
    attribute, and so the state-dict prefix, that holds the wrapped model) and implement ``_build`` (random
    weights from a full config) and ``_from_folder``. Put this class before ``nn.Module`` in the bases.
    """

    default_repo: ClassVar[str] = "cvssp/audioldm2"
    default_subfolder: ClassVar[str]
    weights_name: ClassVar[str]
    default_config: ClassVar[dict[str, Any]]
    inner_name: ClassVar[str]

    def __init__(self, inner: Any) -> None:
        super().__init__()  # nn.Module's, next in the subclass's bases
        setattr(self, self.inner_name, inner)

    @classmethod
    def _build(cls: type[P], config: dict[str, Any], given: dict[str, Any]) -> P:
        raise NotImplementedError

    @classmethod
    def _from_folder(cls: type[P], folder: Path, dtype: torch.dtype | None) -> P:
        raise NotImplementedError

    @classmethod
    def from_config(
        cls: type[P],
        config: dict[str, Any] | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **overrides: Any,
    ) -> P:
        """Build with random weights from keys layered over ``default_config`` (AudioLDM2's).

        Args:
            config: Keyword arguments of the wrapped model's config.
            device: Target device.
            dtype: Target dtype.
            **overrides: Further keys layered on top (e.g. ``block_out_channels=[32, 64]``).

        Raises:
            fluxmusic.errors.InputError: a key the wrapped model's config does not take.
        """
        given = {**(config or {}), **overrides}
        return cls._build({**cls.default_config, **given}, given).to(device=device, dtype=dtype)  # type: ignore[attr-defined]

    def _inner(self) -> Any:
        return getattr(self, self.inner_name)

    @classmethod
    def from_pretrained(
        cls: type[P],
        name_or_dir: str | os.PathLike[str] | None = None,
        subfolder: str | None = "",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **hub: Any,
    ) -> P:
        """Load from a hub id or a local folder (``folder/subfolder`` when it exists, else the folder).

        Args:
            name_or_dir: Folder or hub id (default: AudioLDM2's, ``cvssp/audioldm2``).
            subfolder: The component's subfolder (``""``: the class's, ``vae`` / ``vocoder``; ``None``: none).
            device: Where to put the weights.
            dtype: Weight dtype (default: as stored).
            **hub: ``revision``, ``cache_dir``, ``local_files_only`` (:func:`fluxmusic.hub.resolve_folder`).

        Raises:
            fluxmusic.hub.WeightsNotFoundError: files missing or not obtainable (one-line message).
        """
        sub = cls.default_subfolder if subfolder == "" else subfolder
        files = (CONFIG_NAME, cls.weights_name)
        folder = resolve_folder(name_or_dir or cls.default_repo, sub, files, component=cls.__name__, **hub)
        return cls._from_folder(folder, dtype).to(device=device, dtype=dtype)  # type: ignore[attr-defined]

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and the safetensors weights into ``directory`` (for from_pretrained)."""
        directory = Path(directory)
        self._inner().save_pretrained(str(directory), safe_serialization=True)
        return directory
