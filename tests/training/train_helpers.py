"""Helpers for the training tests: tone clips with captions, tiny-model configs, TOML writing, CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def write_tones(root: Path, n: int = 8, seconds: float = 0.8) -> Path:
    """``n`` distinct tone clips (alternating 16 and 22.05 kHz) and a reference-format manifest."""
    import soundfile as sf

    (root / "audio").mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        rate = 16000 if i % 2 == 0 else 22050
        t = np.arange(int(rate * seconds)) / rate
        wave = 0.3 * np.sin(2 * np.pi * 220 * (1 + i / 4) * t) + 0.05 * np.sin(2 * np.pi * 3 * t)
        sf.write(root / "audio" / f"tone{i}.wav", wave.astype(np.float32), rate)
        items.append({"wav": f"audio/tone{i}.wav", "label": f"a tone number {i % 4}"})
    manifest = root / "train.json"
    manifest.write_text(json.dumps(items))
    return manifest


def tiny_config(run_dir: Path, manifest: Path | None = None, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config dict for the tiny model (fp32, 0.64 s clips, random tiny VAE, Griffin-Lim)."""
    config: dict[str, Any] = {
        "run": {
            "dir": str(run_dir),
            "max_steps": 6,
            "log_every": 2,
            "checkpoint_every": 2,
            "precision": "fp32",
            "tensorboard": False,
            "export": False,
            "threads": 1,
        },
        "model": {"preset": "tiny"},
        "text": {"encoder": "tiny", "options": {"txt_dim": 40, "pooled_dim": 24, "seed": 0}},
        "vae": {"random": {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "layers_per_block": 1}},
        "vocoder": {"type": "griffin-lim", "n_iter": 2},
        "data": {"manifest": str(manifest or ""), "duration": 0.64, "min_duration": 0.5, "num_workers": 0},
        "optim": {"lr": 1e-3, "batch_size": 2, "grad_accum": 2},
        "ema": {"decay": 0.9},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_toml(config: dict[str, Any], path: Path) -> Path:
    """Write a two-level config dict as TOML."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m fluxmusic ARGS`` in a subprocess (one thread, so results match across processes)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fluxmusic", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def shard_config(run_dir: Path, shards: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """``tiny_config`` training on preprocessed shards."""
    config = tiny_config(run_dir, None, **sections)
    config["data"]["shards"] = str(shards)
    return config


def component_config(
    data_dir: Path, run_dir: Path, seconds: float, *layers: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A config dict for a tiny component run (VAE, vocoder): 6 steps, a checkpoint every 2, no export,
    ``seconds``-long clips in 16-frame crops of 2; each of ``layers`` then updates its sections' keys."""
    config: dict[str, Any] = {
        "run": {
            "dir": str(run_dir), "max_steps": 6, "threads": 1, "log_every": 2, "eval_every": 0,
            "checkpoint_every": 2, "export": False,
        },
        "data": {"dir": str(data_dir), "clip_seconds": seconds, "crop_frames": 16, "batch_size": 2,
                 "eval_clips": 0},
    }  # fmt: skip
    for layer in layers:
        for name, values in layer.items():
            config.setdefault(name, {}).update(values)
    return config


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``RUN_DIR/logs/metrics.csv`` (read with its header)."""
    import csv

    with (run_dir / "logs" / "metrics.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def checkpoint_is_finite(checkpoint: Path) -> bool:
    """Whether every tensor of every ``*.safetensors`` file of a checkpoint is finite."""
    import torch
    from safetensors.torch import load_file

    files = sorted(checkpoint.glob("*.safetensors"))
    return bool(files) and all(
        bool(torch.isfinite(t).all())
        for f in files
        for t in load_file(str(f)).values()
        if t.is_floating_point()
    )


def silent_first_manifest(root: Path, n_good: int = 4, n_silent: int = 2) -> Path:
    """``write_tones`` with ``n_silent`` silent clips first: they pass the header check and are skipped
    when loaded, so an unshuffled run's first micro-batch of ``n_silent`` items has no usable row."""
    import soundfile as sf

    manifest = write_tones(root, n=n_good)
    sf.write(root / "audio" / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    items = [{"wav": "audio/silent.wav", "label": f"silence {i}"} for i in range(n_silent)]
    manifest.write_text(json.dumps(items + json.loads(manifest.read_text())))
    return manifest
