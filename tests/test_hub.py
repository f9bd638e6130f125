"""One hub resolver: local folders, the offline rule, and one WeightsNotFoundError naming the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxmusic import hub
from fluxmusic.errors import FluxmusicError
from fluxmusic.hub import WeightsNotFoundError, is_offline, resolve_file, resolve_folder


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
@pytest.mark.parametrize(
    "value,offline", [("1", True), ("yes", True), ("ON", True), ("0", False), ("", False)]
)
def test_one_offline_rule(monkeypatch: pytest.MonkeyPatch, var: str, value: str, offline: bool) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv(var, value)
    assert is_offline() is offline
    assert is_offline(local_files_only=True) is True
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub's own setting counts too
    assert is_offline() is True


def test_local_folder_its_subfolder_or_itself(tmp_path: Path) -> None:
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    assert resolve_folder(tmp_path, "vae", ("config.json",), component="AudioVAE") == tmp_path / "vae"
    assert resolve_folder(tmp_path / "vae", "vae", ("config.json",), component="AudioVAE") == tmp_path / "vae"


def test_missing_files_are_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_folder(
            tmp_path, None, ("config.json", "weights.safetensors"), component="X", need_weights=True
        )
    message = str(info.value)
    assert "X:" in message and "weights.safetensors" in message and "model.safetensors" in message
    assert "\n" not in message and isinstance(info.value, FluxmusicError)
    with pytest.raises(WeightsNotFoundError, match="no such local folder"):
        resolve_folder(tmp_path / "nowhere", component="X")


def test_offline_and_uncached_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsNotFoundError) as folder:
        resolve_folder("someone/something", "vocoder", ("config.json",), component="HifiGanVocoder")
    assert "someone/something/vocoder/config.json" in str(folder.value)
    assert "offline" in str(folder.value) and "hf download" in str(folder.value)
    with pytest.raises(WeightsNotFoundError) as file:
        resolve_file("someone/something", "musicflow_s.pt", component="transformer")
    assert "someone/something/musicflow_s.pt" in str(file.value) and "HF_HUB_OFFLINE" in str(file.value)


def test_every_component_uses_the_one_error() -> None:
    """The four 'weights not found' errors of before are one: audio, text and model folders raise it."""
    import fluxmusic.audio.vae as vae
    import fluxmusic.modelfolder.load as load
    import fluxmusic.text.clap as clap
    import fluxmusic.text.minilm as minilm

    for module in (vae, clap, minilm, load):
        assert not [
            name
            for name, value in vars(module).items()
            if isinstance(value, type)
            and issubclass(value, FileNotFoundError)
            and value is not WeightsNotFoundError
        ], module.__name__
    assert hub.WeightsNotFoundError is WeightsNotFoundError
