"""Non-finite numbers never reach a checkpoint: a NaN loss or gradient skips its optimizer step (counted in
``metrics.csv``), ``run.max_nonfinite`` skipped steps in a row stop the run in one line, a checkpoint with
non-finite weights is never written (so ``keep_last`` can never rotate the last finite one away), and a
micro-batch whose items were all skipped is counted, not a crash. For the transformer and the VAE tenant.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from train_helpers import (  # noqa: E402
    checkpoint_is_finite,
    component_config,
    metrics_rows,
    silent_first_manifest,
    tiny_config,
    write_toml,
    write_tones,
)

from fluxmusic.training.checkpoint import latest_checkpoint, list_checkpoints, load_training_state  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tones(tmp_path_factory.mktemp("tones"), n=4)


def _poison_batches(monkeypatch: pytest.MonkeyPatch, calls: Iterator[int] | set[int]) -> None:
    """Put a NaN into the latents of the micro-batches whose (1-based) preparation count is in ``calls``."""
    import fluxmusic.training.loop as loop

    real, count = loop.prepare_batch, [0]

    def prepare(*args: object, **kwargs: object) -> tuple:
        latents, text, tempo = real(*args, **kwargs)
        count[0] += 1
        if count[0] in calls:
            latents = latents.clone()
            latents[(0,) * latents.dim()] = float("nan")
        return latents, text, tempo

    monkeypatch.setattr(loop, "prepare_batch", prepare)


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return {
        f"{n}:{k}": v
        for n in ("model", "ema")
        for k, v in load_file(str(checkpoint / f"{n}.safetensors")).items()
    }


def test_nan_batches_skip_their_steps_and_every_checkpoint_stays_finite(
    tones: Path,
    tmp_path: Path,
    cli,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    run = tmp_path / "run"
    config = tiny_config(run, tones, run={"max_steps": 4, "checkpoint_every": 1, "keep_last": 10})
    _poison_batches(monkeypatch, {3, 5})  # one micro-batch of step 2 and one of step 3 (grad_accum = 2)
    status, out, err = cli("train", "--config", str(write_toml(config, tmp_path / "c.toml")), "-q")
    assert status == 0, err
    assert "trained 4 steps" in out
    checkpoints = dict(list_checkpoints(run))
    assert sorted(checkpoints) == [1, 2, 3, 4] and all(checkpoint_is_finite(c) for c in checkpoints.values())
    first, second, third, fourth = (_weights(checkpoints[s]) for s in (1, 2, 3, 4))
    assert all(torch.equal(first[k], second[k]) and torch.equal(first[k], third[k]) for k in first)  # skipped
    assert any(not torch.equal(first[k], fourth[k]) for k in first)  # step 4 trained
    state = load_training_state(checkpoints[4])
    assert state["skipped_nonfinite"] == 2
    adam_steps = [
        float(next(iter(load_training_state(c)["optimizer"]["state"].values()))["step"])
        for c in checkpoints.values()
    ]
    assert adam_steps == [1, 1, 1, 2]  # AdamW took steps 1 and 4 only
    rows = metrics_rows(run)
    assert [(r["step"], r["skipped_nonfinite"]) for r in rows] == [("2", "1"), ("4", "2")]
    assert all(float(r["loss"]) == float(r["loss"]) for r in rows)  # the logged means are finite


def test_consecutive_nonfinite_steps_stop_the_run_in_one_line(
    tones: Path,
    tmp_path: Path,
    cli,
    one_line,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    run = tmp_path / "run"
    config = tiny_config(run, tones, run={"max_steps": 20, "log_every": 10, "checkpoint_every": 2})
    _poison_batches(monkeypatch, set(range(3, 1000)))  # everything from step 2 on
    toml = write_toml(config, tmp_path / "c.toml")
    status, _, err = cli("train", "--config", str(toml), "--set", "run.max_nonfinite=3", "-q")
    assert status == 2 and one_line(err), err
    assert "3 optimizer steps in a row" in err and "run.max_nonfinite" in err, err
    assert latest_checkpoint(run) == run / "checkpoints" / "step_000002"  # stopped at step 4, before saving
    assert checkpoint_is_finite(latest_checkpoint(run))


@pytest.mark.parametrize("which", ["model", "ema"])
def test_nonfinite_weights_are_never_checkpointed_and_never_rotate_the_last_finite_one_away(
    tones: Path,
    tmp_path: Path,
    cli,
    one_line,
    monkeypatch: pytest.MonkeyPatch,
    which: str,  # noqa: ANN001
) -> None:
    from fluxmusic.training.ema import EMA

    real, calls = EMA.update, [0]

    def update(self: EMA, *args: object, **kwargs: object) -> None:  # after step 3, the weights turn NaN
        real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            with torch.no_grad():
                (self.params if which == "model" else self.shadow)[0].fill_(float("nan"))

    monkeypatch.setattr(EMA, "update", update)
    run = tmp_path / "run"
    config = tiny_config(run, tones, run={"max_steps": 6, "checkpoint_every": 2, "keep_last": 1})
    status, _, err = cli("train", "--config", str(write_toml(config, tmp_path / "c.toml")), "-q")
    assert status == 2 and one_line(err), err
    assert f"{which}.safetensors" in err and "step_000004" in err and "not finite" in err, err
    assert [s for s, _ in list_checkpoints(run)] == [2] and checkpoint_is_finite(
        run / "checkpoints" / "step_000002"
    )
    assert (run / "latest").read_text().strip() == "step_000002"
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_a_first_micro_batch_with_no_usable_item_is_counted_not_a_crash(tmp_path: Path, cli) -> None:  # noqa: ANN001
    manifest = silent_first_manifest(tmp_path / "data")  # items 0 and 1 are silent: micro-batch 1 is empty
    run = tmp_path / "run"
    config = tiny_config(
        run, manifest, run={"max_steps": 2}, data={"shuffle": False}, optim={"grad_accum": 1, "batch_size": 2}
    )
    status, _, err = cli("train", "--config", str(write_toml(config, tmp_path / "c.toml")), "-q")
    assert status == 0, err
    state = load_training_state(latest_checkpoint(run))
    assert state["empty_batches"] == 1 and state["skipped"] == 2 and state["samples"] == 2
    assert checkpoint_is_finite(latest_checkpoint(run))
    assert metrics_rows(run)[-1]["empty_batches"] == "1"


def test_vae_tenant_skips_a_nonfinite_step(tones: Path, tmp_path: Path, cli, monkeypatch) -> None:  # noqa: ANN001
    import fluxmusic.training.components.vae as vae

    real, calls = vae.forward_loss, [0]

    def forward_loss(*args: object, **kwargs: object) -> tuple:
        total, parts = real(*args, **kwargs)
        calls[0] += 1
        return (total * float("nan"), parts) if calls[0] == 2 else (total, parts)

    monkeypatch.setattr(vae, "forward_loss", forward_loss)
    sizes = {
        "run": {"trainer": "vae", "max_steps": 4, "checkpoint_every": 1, "keep_last": 10},
        "model": {"block_out_channels": [8, 16, 16], "norm_num_groups": 8, "mid_block_add_attention": False},
    }
    run = tmp_path / "vae"
    toml = write_toml(component_config(tones.parent, run, 0.32, sizes), tmp_path / "vae.toml")
    status, _, err = cli("train", "--config", str(toml), "-q")
    assert status == 0, err
    checkpoints = dict(list_checkpoints(run))
    assert all(checkpoint_is_finite(c) for c in checkpoints.values())
    one, two = (load_file(str(checkpoints[s] / "model.safetensors")) for s in (1, 2))
    assert all(torch.equal(one[k], two[k]) for k in one)  # step 2 was skipped
    assert load_training_state(checkpoints[4])["skipped_nonfinite"] == 1
    assert [r["skipped_nonfinite"] for r in metrics_rows(run)] == ["1", "1"]
