from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fluxmusic.checkpoints import (
    CheckpointError,
    convert,
    infer_config,
    load_musicflux,
    read_state_dict,
    save_musicflux,
)
from fluxmusic.config import PRESETS, RELEASED_PRESETS
from fluxmusic.model import MusicFlux


def _tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return MusicFlux(PRESETS["tiny"]).state_dict()


def _write_reference_format(path: Path, state: dict) -> None:
    """The reference trainer's layout: model, ema, optimizer state and the argparse Namespace."""
    opt = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
        "param_groups": [{"lr": 3e-5}],
    }
    torch.save(
        {
            "model": {k: v + 1 for k, v in state.items()},
            "ema": state,
            "opt": opt,
            "args": argparse.Namespace(model="tiny", lr=3e-5),
        },
        path,
    )


def test_reference_format_loads_ema(tmp_path: Path) -> None:
    state = _tiny_state()
    _write_reference_format(tmp_path / "musicflow_tiny.pt", state)
    model = load_musicflux(tmp_path / "musicflow_tiny.pt")
    assert model.config == PRESETS["tiny"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    model_key = read_state_dict(tmp_path / "musicflow_tiny.pt", key="model")
    assert torch.equal(model_key["img_in.bias"], state["img_in.bias"] + 1)


def test_bare_state_dict_and_prefixes(tmp_path: Path) -> None:
    state = _tiny_state()
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "bare.pt")
    model = load_musicflux(tmp_path / "bare.pt", preset="tiny")
    assert torch.equal(model.state_dict()["final_layer.linear.weight"], state["final_layer.linear.weight"])


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"ema": _tiny_state(), "payload": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    message = str(err.value)
    assert "\n" not in message and "refusing to load" in message and "evil.pt" in message
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError, match="refusing"):
        read_state_dict(raw)
    assert not marker.exists()


def test_misshaped_checkpoint_names_keys(tmp_path: Path) -> None:
    state = _tiny_state()
    state["img_in.weight"] = torch.zeros(64, 30)
    del state["final_layer.linear.bias"]
    state["guidance_in.in_layer.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_musicflux(tmp_path / "bad.safetensors", preset="tiny")
    message = str(err.value)
    assert "img_in.weight (64, 30) vs (64, 32)" in message
    assert "missing (1): final_layer.linear.bias" in message
    assert "unexpected (1): guidance_in.in_layer.weight" in message


@pytest.mark.parametrize("name", RELEASED_PRESETS)
def test_preset_inferred_from_shapes(name: str) -> None:
    with torch.device("meta"):
        state = MusicFlux(PRESETS[name]).state_dict()
    assert infer_config(state) == (name, PRESETS[name])


def test_convert_roundtrip_writes_safetensors_and_config(tmp_path: Path) -> None:
    state = _tiny_state(1)
    _write_reference_format(tmp_path / "ref.pt", state)
    out, preset = convert(tmp_path / "ref.pt", tmp_path / "converted")
    assert preset == "tiny"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["hidden_size"] == 64 and config["preset"] == "tiny"
    model = load_musicflux(out)
    assert torch.equal(model.state_dict()["txt_in.weight"], state["txt_in.weight"])


def test_config_json_rebuilds_unknown_shapes(tmp_path: Path) -> None:
    config = PRESETS["tiny"].__class__(
        hidden_size=48,
        num_heads=4,
        depth=1,
        depth_single_blocks=1,
        axes_dim=(4, 4, 4),
        context_in_dim=16,
        vec_in_dim=8,
    )
    save_musicflux(MusicFlux(config), tmp_path / "custom")
    assert load_musicflux(tmp_path / "custom").config == config
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes((tmp_path / "custom" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="match no preset"):
        load_musicflux(alone)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_state_dict(tmp_path / "junk.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError):
        read_state_dict(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="unknown preset"):
        convert(tmp_path / "junk.pt", tmp_path / "o", preset="huge")
