"""Data parallelism on PyTorch's own stack, run for real: 2 CPU processes, gloo, DDP and FSDP2."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO, shard_config, write_toml

from fluxmusic.training.distributed import DistContext, choose_strategy

DRIVER = """
import os, sys
from safetensors.torch import save_file
from fluxmusic.training.config import load_config
from fluxmusic.training.loop import train
result = train(load_config(sys.argv[1]))
state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
save_file(state, os.path.join(sys.argv[2], "rank%s.safetensors" % os.environ["RANK"]))
"""


def torchrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), **(env or {})}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _config(run: Path, shards: Path, strategy: str) -> dict:
    return shard_config(
        run,
        shards,
        run={"max_steps": 40, "log_every": 5, "checkpoint_every": 40, "strategy": strategy},
        optim={"lr": 2e-3, "batch_size": 2, "grad_accum": 1},
        data={"caption_dropout": 0.0},
    )


def _losses(run: Path) -> list[float]:
    with (run / "logs" / "metrics.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def ddp_run(tone_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    config = write_toml(_config(tmp / "run", tone_shards, "ddp"), tmp / "ddp.toml")
    (tmp / "driver.py").write_text(DRIVER)
    result = torchrun(str(tmp / "driver.py"), str(config), str(tmp))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp


def test_ddp_two_gloo_ranks_learn_and_stay_identical(ddp_run: Path) -> None:
    losses = _losses(ddp_run / "run")
    assert len(losses) == 8
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses  # the overfit set is being learnt
    rank0, rank1 = (
        load_file(str(ddp_run / "rank0.safetensors")),
        load_file(str(ddp_run / "rank1.safetensors")),
    )
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # both ranks end with identical parameters
    saved = load_file(str(ddp_run / "run" / "checkpoints" / "step_000040" / "model.safetensors"))
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)


@pytest.fixture(scope="module")
def fsdp_run(tone_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fsdp")
    config = write_toml(_config(tmp / "run", tone_shards, "fsdp"), tmp / "fsdp.toml")
    result = torchrun("-m", "fluxmusic", "train", "--config", str(config), "-q")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained 40 steps" in result.stdout
    return tmp / "run"


def test_fsdp_two_gloo_ranks_via_cli_match_ddp(ddp_run: Path, fsdp_run: Path) -> None:
    ckpt = fsdp_run / "checkpoints" / "step_000040"
    ddp_ckpt = ddp_run / "run" / "checkpoints" / "step_000040"
    for name in ("model.safetensors", "ema.safetensors"):
        fsdp, ddp = load_file(str(ckpt / name)), load_file(str(ddp_ckpt / name))  # gathered full weights
        assert fsdp.keys() == ddp.keys()
        assert all(torch.allclose(fsdp[k], ddp[k], atol=1e-5) for k in fsdp)  # same math, other reductions


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_distributed_sigkill_then_resume_is_bit_exact(
    strategy: str, ddp_run: Path, fsdp_run: Path, tone_shards: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path / "run", tone_shards, strategy)
    config["run"]["checkpoint_every"] = 10
    path = write_toml(config, tmp_path / "c.toml")
    killed = torchrun(
        "-m", "fluxmusic", "train", "--config", str(path), "-q", env={"FLUXMUSIC_FAULT": "kill-after-step:25"}
    )
    assert killed.returncode != 0
    assert (tmp_path / "run" / "latest").read_text().strip() == "step_000020"
    resumed = torchrun("-m", "fluxmusic", "train", "--resume", str(tmp_path / "run"), "-q")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reference = (ddp_run / "run" if strategy == "ddp" else fsdp_run) / "checkpoints" / "step_000040"
    for name in ("model.safetensors", "ema.safetensors"):
        left, right = (
            load_file(str(reference / name)),
            load_file(str(tmp_path / "run" / "checkpoints" / "step_000040" / name)),
        )
        assert all(torch.equal(left[k], right[k]) for k in left)


def _ctx(world: int, device: str) -> DistContext:
    return DistContext(0, world, 0, torch.device(device), "gloo" if world > 1 else None)


def test_auto_strategy() -> None:
    assert choose_strategy("auto", "giant", _ctx(1, "cpu")) == "none"
    assert choose_strategy("auto", "small", _ctx(2, "cpu")) == "ddp"
    assert choose_strategy("auto", "giant", _ctx(2, "cpu")) == "ddp"  # FSDP only pays off on GPUs
    assert choose_strategy("auto", "giant", _ctx(8, "cuda")) == "fsdp"
    assert choose_strategy("auto", "biggiant", _ctx(8, "cuda")) == "fsdp"
    assert choose_strategy("fsdp", "tiny", _ctx(2, "cpu")) == "fsdp"
    assert choose_strategy("ddp", "tiny", _ctx(1, "cpu")) == "none"
    with pytest.raises(ValueError, match="torchrun"):
        choose_strategy("none", "tiny", _ctx(2, "cpu"))
