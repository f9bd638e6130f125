"""The component registry: one place that knows vocoder and text-encoder types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import GriffinLimVocoder
from fluxmusic.modelfolder import registry
from fluxmusic.modelfolder.index import MODEL_INDEX
from fluxmusic.modelfolder.load import load_model_dir
from fluxmusic.modelfolder.registry import ComponentType, build_component, component_types, save_component


def test_known_types() -> None:
    assert component_types("vocoder") == ("hifigan", "griffin-lim")
    assert component_types("text_encoder") == ("t5-clap", "minilm", "tiny")


def test_griffin_lim_round_trips_through_its_entry(tmp_path: Path) -> None:
    entry = save_component("vocoder", GriffinLimVocoder(n_iter=3, momentum=0.5), tmp_path)
    assert entry == {"type": "griffin-lim", "n_iter": 3, "momentum": 0.5}
    built = build_component("vocoder", entry, tmp_path, torch.device("cpu"))
    assert isinstance(built, GriffinLimVocoder) and built.n_iter == 3


@pytest.mark.parametrize(
    "slot,entry,needle",
    [
        ("vocoder", {"type": "wavenet"}, "unknown vocoder type 'wavenet'"),
        ("vocoder", 7, "must be an object"),
        ("text_encoder", {"type": ["minilm"]}, "unknown text_encoder type"),
        ("vocoder", {"type": "griffin-lim", "n_iters": 3}, "bad vocoder options"),
    ],
)
def test_bad_entries_are_named(tmp_path: Path, slot: str, entry: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        build_component(slot, entry, tmp_path, torch.device("cpu"))


def test_a_new_vocoder_is_one_class_plus_one_registration(
    tiny_pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    class Silence(GriffinLimVocoder):
        """A vocoder that only writes silence (a stand-in for a new architecture)."""

        def forward(self, mel: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
            return torch.zeros(mel.shape[0], num_samples or 160 * mel.shape[-2])

    kind = ComponentType(
        "silence",
        build=lambda options, root, device: Silence(**options),
        saves=lambda: Silence,
        save=lambda vocoder, root: {"type": "silence", "n_iter": vocoder.n_iter},
    )
    monkeypatch.setitem(registry.REGISTRY["vocoder"], "silence", kind)
    monkeypatch.setattr(tiny_pipeline, "vocoder", Silence(n_iter=1))
    folder = tiny_pipeline.save_pretrained(tmp_path / "m")
    assert json.loads((folder / MODEL_INDEX).read_text())["vocoder"] == {"type": "silence", "n_iter": 1}
    assert isinstance(load_model_dir(folder, torch.device("cpu")).vocoder, Silence)
