"""The step guard: a non-finite gradient norm skips the optimizer step (on the host, or on the device with
a fused AdamW), the EMA stays, the count stops a run after ``run.max_nonfinite``; resume overrides of the
optimizer land in its state exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import metrics_rows, tiny_config, write_toml

from fluxmusic.training.checkpoint import list_checkpoints, load_training_state
from fluxmusic.training.config import OptimConfig, load_config
from fluxmusic.training.ema import EMA
from fluxmusic.training.guard import (
    NonFiniteError,
    NonFiniteGuard,
    any_skipped,
    guard_loss,
    nonfinite_tensors,
)
from fluxmusic.training.optim import build_optimizer, clip_and_step, rebase_schedule, set_hyperparameters


@pytest.mark.parametrize("fused", [False, True])
def test_a_nonfinite_gradient_skips_the_step_and_keeps_the_state(fused: bool) -> None:
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.AdamW([param], lr=0.1, fused=fused)
    param.grad = torch.ones(4)
    norm, skipped = clip_and_step([param], optimizer, 1.0)
    assert float(norm) == 2.0 and not bool(skipped)
    weights, state = param.detach().clone(), {k: v.clone() for k, v in optimizer.state[param].items()}
    for bad in (float("nan"), float("inf")):
        param.grad = torch.tensor([1.0, bad, 1.0, 1.0])
        norm, skipped = clip_and_step([param], optimizer, 1.0)
        assert isinstance(skipped, bool) != fused and bool(skipped) and not torch.isfinite(norm)
        assert torch.equal(param.detach(), weights) and param.grad is None
        assert all(torch.equal(v, optimizer.state[param][k]) for k, v in state.items())
    param.grad = torch.ones(4)
    assert not bool(clip_and_step([param], optimizer, 0.0)[1])  # no clipping: the norm still decides
    assert float(optimizer.state[param]["step"]) == 2 and not torch.equal(param.detach(), weights)
    assert not hasattr(optimizer, "found_inf")


def test_guard_loss_poisons_every_gradient_of_a_nonfinite_loss_and_leaves_a_finite_one_exact() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    (guard_loss((w * torch.tensor([3.0, 0.5])).mean())).backward()
    assert torch.equal(w.grad, torch.tensor([1.5, 0.25]))
    w.grad = None
    guard_loss((w * torch.tensor([float("nan"), 0.0])).sum()).backward()  # d/dw of the second row is 0
    assert torch.isnan(w.grad).all()


def test_the_guard_counts_skips_and_stops_after_the_limit_in_a_row() -> None:
    guard = NonFiniteGuard(limit=3, total=5)
    for step, skipped in enumerate([True, True, False, True, True], 1):
        guard.record(skipped, step)
    assert guard.check(5) == 9
    with pytest.raises(NonFiniteError, match="3 optimizer steps in a row .*run.max_nonfinite"):
        guard.record(True, 6)
    on_device = NonFiniteGuard(limit=2)
    on_device.record(torch.tensor(1.0), 1)
    on_device.record(torch.tensor(0.0), 2)
    on_device.record(torch.tensor(1.0), 3)
    assert on_device.check(3) == 2  # counted on the device, read when checked
    on_device.record(torch.tensor(1.0), 4)
    with pytest.raises(NonFiniteError, match="2 optimizer steps in a row"):
        on_device.check(4)
    assert any_skipped(False, True) is True and float(any_skipped(torch.tensor(0.0), True)) == 1.0


def test_the_ema_stays_when_a_step_is_skipped_on_the_device() -> None:
    param = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([("w", param)], decay=0.5)
    with torch.no_grad():
        param.fill_(2.0)
    ema.update(keep=torch.tensor(0.0))
    assert torch.equal(ema.local_state()["w"], torch.zeros(3))
    ema.update(keep=torch.tensor(1.0))
    assert torch.equal(ema.local_state()["w"], torch.ones(3))


def test_nonfinite_tensors_names_files_and_keys() -> None:
    weights = {"model.safetensors": {"a": torch.ones(2), "b": torch.tensor([0.0, float("inf")])},
               "ema.safetensors": {"a": torch.ones(2), "n": torch.arange(3)}}  # fmt: skip
    assert nonfinite_tensors(weights) == {"model.safetensors": ["b"]}


def test_resume_overrides_of_the_optimizer_are_exact() -> None:
    param = torch.nn.Parameter(torch.ones(2))
    config = OptimConfig(lr=1e-3, warmup_steps=4, schedule="cosine")
    optimizer, scheduler = build_optimizer([param], config, max_steps=10)
    for _ in range(2):
        param.grad = torch.ones(2)
        optimizer.step()
        scheduler.step()
    saved_opt, saved_sched = optimizer.state_dict(), scheduler.state_dict()
    again, again_sched = build_optimizer([param], config, max_steps=10)
    again.load_state_dict(saved_opt)
    again_sched.load_state_dict(saved_sched)
    set_hyperparameters(again, config)
    rebase_schedule(again, again_sched, config.lr)  # unchanged: bit for bit the same
    assert again.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == again_sched.get_last_lr()[0]
    changed = OptimConfig(lr=1e-2, warmup_steps=4, schedule="cosine", betas=(0.5, 0.9), weight_decay=0.1)
    set_hyperparameters(again, changed)
    rebase_schedule(again, again_sched, changed.lr)
    group = again.param_groups[0]
    assert group["lr"] == pytest.approx(10 * optimizer.param_groups[0]["lr"]) and group["betas"] == (0.5, 0.9)
    again_sched.step()
    assert again.param_groups[0]["lr"] == pytest.approx(1e-2)  # warm-up ends at the new peak


def test_the_loop_skips_on_the_device_with_a_fused_adamw(
    tones: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA path (fused AdamW: no host sync per step), run on CPU: a NaN micro-batch in step 2 leaves
    the weights, the EMA and AdamW's state of step 1, and is counted when the interval is logged."""
    import fluxmusic.training.loop as loop

    build, prepare, calls = loop.build_optimizer, loop.prepare_batch, [0]

    def fused(params: object, config: object, max_steps: int, fused: bool = False) -> object:
        return build(params, config, max_steps, fused=True)

    def poisoned(*args: object, **kwargs: object) -> tuple:
        latents, text, tempo = prepare(*args, **kwargs)
        calls[0] += 1
        return (latents * float("nan") if calls[0] == 3 else latents), text, tempo

    monkeypatch.setattr(loop, "build_optimizer", fused)
    monkeypatch.setattr(loop, "prepare_batch", poisoned)
    config = tiny_config(tmp_path / "run", tones, run={"max_steps": 4, "checkpoint_every": 1, "keep_last": 9})
    result = loop.train(load_config(write_toml(config, tmp_path / "c.toml")))
    folders = dict(list_checkpoints(result.run_dir))
    for name in ("model.safetensors", "ema.safetensors"):
        one, two, four = (load_file(str(folders[s] / name)) for s in (1, 2, 4))
        assert all(torch.equal(one[k], two[k]) for k in one) and any(
            not torch.equal(one[k], four[k]) for k in one
        )
    states = [load_training_state(folders[s]) for s in (1, 2, 3, 4)]
    assert [float(next(iter(s["optimizer"]["state"].values()))["step"]) for s in states] == [1, 1, 2, 3]
    assert all(group["fused"] for group in states[-1]["optimizer"]["param_groups"])
    assert states[-1]["skipped_nonfinite"] == 1
    rows = metrics_rows(result.run_dir)
    assert [r["skipped_nonfinite"] for r in rows] == ["1", "1"] and all(
        math.isfinite(float(r["loss"])) for r in rows
    )
