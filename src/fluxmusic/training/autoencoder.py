"""Train the bundled mel VAE: AudioLDM2's architecture (diffusers ``AutoencoderKL``) with fewer channels.

Loss: L1 (and optionally L2) between the log-mel and its reconstruction from a posterior sample, plus a
small KL weight (both per-element means). The network sees a normalised log-mel ``x / in_scale`` and
predicts ``(x - out_shift) / out_scale``; both maps are folded exactly into ``conv_in`` / ``conv_out`` at
export (a pure scale at the input keeps zero padding exact), so the exported :class:`AudioVAE` takes and
returns raw log-mel like AudioLDM2's. After training, ``scaling_factor`` is set to ``1 / std`` of
posterior samples of training clips.

Run (resumable; ``--resume`` continues from the newest checkpoint in ``--out``)::

    OMP_NUM_THREADS=1 python -m fluxmusic.training.autoencoder --config configs/bundled/vae.toml \
        --data /work/data/demo --out /work/runs/bundled_vae [--resume] [--set optim.max_steps=2000]
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.audio import AudioVAE
from fluxmusic.training import component_run as runs
from fluxmusic.data.clip_bank import ClipBank
from fluxmusic.training.component_run import OptimSection, RunSection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSection:
    """``AutoencoderKL`` size. Three levels give the AudioLDM2 downsample of 4 in time and mel."""

    block_out_channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    latent_channels: int = 8
    norm_num_groups: int = 32
    mid_block_add_attention: bool = True

    def __post_init__(self) -> None:
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if len(self.block_out_channels) < 1 or bad:
            raise ValueError(
                f"[model] block_out_channels {self.block_out_channels} must be non-empty multiples of "
                f"norm_num_groups={self.norm_num_groups}"
            )
        if self.layers_per_block < 1 or self.latent_channels < 1:
            raise ValueError(f"[model] layers_per_block and latent_channels must be >= 1, got {self}")

    def vae_config(self) -> dict[str, Any]:
        """Keys for :meth:`AudioVAE.from_config`."""
        return {
            "block_out_channels": list(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "latent_channels": self.latent_channels,
            "norm_num_groups": self.norm_num_groups,
            "mid_block_add_attention": self.mid_block_add_attention,
            "scaling_factor": 1.0,
        }


@dataclass(frozen=True)
class DataSection:
    """Clips and crops. ``max_clips`` 0 uses every training clip; ``eval_clips`` held-out clips."""

    clip_seconds: float = 5.12
    crop_frames: int = 128
    batch_size: int = 8
    max_clips: int = 0
    eval_clips: int = 32
    stats_clips: int = 256

    def __post_init__(self) -> None:
        if self.clip_seconds <= 0 or self.crop_frames < 4 or self.batch_size < 1:
            raise ValueError(f"[data] needs clip_seconds > 0, crop_frames >= 4, batch_size >= 1: {self}")
        if self.max_clips < 0 or self.eval_clips < 0 or self.stats_clips < 1:
            raise ValueError(f"[data] max_clips, eval_clips must be >= 0 and stats_clips >= 1: {self}")


@dataclass(frozen=True)
class LossSection:
    """Weights of the per-element-mean losses (reconstruction in raw log-mel units)."""

    l1: float = 1.0
    l2: float = 0.0
    kl: float = 1e-4

    def __post_init__(self) -> None:
        if min(self.l1, self.l2, self.kl) < 0 or self.l1 + self.l2 <= 0:
            raise ValueError(f"[loss] weights must be >= 0 with l1 + l2 > 0, got {self}")


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    """Everything a VAE run needs; sections map to TOML tables."""

    run: RunSection = field(default_factory=RunSection)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)

    def __post_init__(self) -> None:
        down = 2 ** (len(self.model.block_out_channels) - 1)
        if self.data.crop_frames % down:
            raise ValueError(
                f"data.crop_frames={self.data.crop_frames} must be a multiple of the downsample {down}"
            )


def mel_statistics(mels: Tensor) -> dict[str, Tensor]:
    """Normalisation of the network's input and output: ``in_scale`` = RMS, ``out_shift``/``out_scale``.

    Shapes:
        mels: (N, T, F)
    """
    x = mels.double()
    return {
        "in_scale": x.pow(2).mean().sqrt().float(),
        "out_shift": x.mean().float(),
        "out_scale": x.std().float(),
    }


def forward_loss(
    vae: AudioVAE, mel: Tensor, stats: dict[str, Tensor], loss: LossSection, generator: torch.Generator
) -> tuple[Tensor, dict[str, Tensor]]:
    """One training forward pass in normalised space; returns the total loss and its parts (tensors).

    Shapes:
        mel: (B, 1, T, F) raw log-mel
    """
    ae = vae.autoencoder
    posterior = ae.encode(mel / stats["in_scale"]).latent_dist
    eps = torch.randn(posterior.mean.shape, generator=generator, dtype=posterior.mean.dtype)
    z = posterior.mean + posterior.std * eps.to(posterior.mean.device)
    recon = ae.decode(z).sample * stats["out_scale"] + stats["out_shift"]
    diff = recon - mel
    l1 = diff.abs().mean()
    l2 = diff.pow(2).mean()
    kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
    total = loss.l1 * l1 + loss.l2 * l2 + loss.kl * kl
    return total, {"loss": total.detach(), "l1": l1.detach(), "l2": l2.detach(), "kl": kl.detach()}


def fold_normalization(vae: AudioVAE, stats: dict[str, Tensor]) -> AudioVAE:
    """Fold ``x / in_scale`` into ``conv_in`` and ``y * out_scale + out_shift`` into ``conv_out`` in place."""
    enc_in, dec_out = vae.autoencoder.encoder.conv_in, vae.autoencoder.decoder.conv_out
    with torch.no_grad():
        enc_in.weight.div_(stats["in_scale"])
        dec_out.weight.mul_(stats["out_scale"])
        dec_out.bias.mul_(stats["out_scale"]).add_(stats["out_shift"])
    return vae


@torch.no_grad()
def latent_std(
    vae: AudioVAE, mels: Tensor, generator: torch.Generator, batch_size: int = 8
) -> tuple[float, float]:
    """(std, mean) of posterior samples of the *unscaled* latent over ``mels`` (scaling factor = 1 / std)."""
    samples = []
    for chunk in mels.split(batch_size):
        posterior = vae.autoencoder.encode(chunk[:, None]).latent_dist
        eps = torch.randn(posterior.mean.shape, generator=generator)
        samples.append(posterior.mean + posterior.std * eps)
    z = torch.cat(samples).double()
    return float(z.std()), float(z.mean())


@torch.no_grad()
def held_out_l1(vae: AudioVAE, mels: Tensor, stats: dict[str, Tensor], batch_size: int = 8) -> float:
    """Mean |mel - decode(mode(encode(mel)))| on whole clips (raw log-mel units)."""
    total = 0.0
    for chunk in mels.split(batch_size):
        x = chunk[:, None]
        z = vae.autoencoder.encode(x / stats["in_scale"]).latent_dist.mode()
        recon = vae.autoencoder.decode(z).sample * stats["out_scale"] + stats["out_shift"]
        total += float((recon - x).abs().sum())
    return total / mels.numel()


def build(config: AutoencoderTrainConfig) -> tuple[AudioVAE, torch.optim.AdamW]:
    """Fresh seeded VAE and its optimizer."""
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed)
        vae = AudioVAE.from_config(config.model.vae_config())
    opt = torch.optim.AdamW(
        vae.autoencoder.parameters(),
        lr=config.optim.lr,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    return vae, opt


def train(
    config: AutoencoderTrainConfig,
    train_bank: ClipBank,
    run_dir: str | Path,
    eval_bank: ClipBank | None = None,
    resume: bool = False,
    max_minutes: float = 0.0,
    stop_at: int = 0,
) -> tuple[AudioVAE, dict[str, Tensor], int]:
    """Train (or continue) a VAE run; checkpoints go to ``RUN/checkpoints``.

    Args:
        config: The run's config.
        train_bank: Training clips (log-mels).
        run_dir: Run folder.
        eval_bank: Held-out clips for the periodic whole-clip L1 (optional).
        resume: Continue from the newest checkpoint (a fresh start when there is none).
        max_minutes: Stop (after a checkpoint) once this much wall time has passed (0: no limit).
        stop_at: Stop (after a checkpoint) at this step, keeping the schedule of ``max_steps`` (0: off).

    Returns:
        (VAE with un-folded weights, normalisation statistics, steps done).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    vae, opt = build(config)
    data_gen = torch.Generator().manual_seed(config.run.seed)
    noise_gen = torch.Generator().manual_seed(config.run.seed + 1)
    generators = {"data": data_gen, "noise": noise_gen}
    stats = mel_statistics(train_bank.mels[: config.data.stats_clips])
    step = 0
    latest = runs.latest_checkpoint(run_dir) if resume else None
    if latest is not None:
        weights, optimizers, state = runs.load_checkpoint(latest)
        vae.autoencoder.load_state_dict(weights)
        opt.load_state_dict(optimizers["vae"])
        runs.restore_generators(generators, state)
        stats = {k: state[f"stats.{k}"] for k in stats}
        step = int(state["step"])
        logger.info("resumed from %s (step %d)", latest, step)
    elif resume:
        logger.info("no checkpoint in %s; starting fresh", run_dir)
    cfg_dict = runs.config_to_dict(config)

    def checkpoint() -> None:
        state = {**runs.generator_states(generators), **{f"stats.{k}": v for k, v in stats.items()}}
        runs.save_checkpoint(
            run_dir,
            step,
            vae.autoencoder.state_dict(),
            {"vae": opt.state_dict()},
            state,
            {"trainer": "autoencoder", **cfg_dict},
            config.run.keep_last,
        )

    vae.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    first = step
    bar = tqdm(total=config.optim.max_steps, initial=step, disable=not config.run.progress, mininterval=10)
    sums: dict[str, Tensor] = {}
    count = 0
    o = config.optim
    end = min(o.max_steps, stop_at) if stop_at else o.max_steps
    while step < end:
        for group in opt.param_groups:
            group["lr"] = runs.lr_at(step, o.lr, o.warmup_steps, o.max_steps, o.min_lr_ratio)
        mel = train_bank.mel_crops(data_gen, config.data.batch_size, config.data.crop_frames)
        total, parts = forward_loss(vae, mel, stats, config.loss, noise_gen)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if o.grad_clip > 0:
            parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(vae.autoencoder.parameters(), o.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if step % config.run.log_every == 0 or step == end:
            means = {k: float(v) / count for k, v in sums.items()}
            elapsed = time.perf_counter() - started
            logger.info(
                "step %d lr %.2e %s | %.2f s/step wall, %.2f s/step cpu",
                step,
                opt.param_groups[0]["lr"],
                " ".join(f"{k} {v:.4f}" for k, v in means.items()),
                elapsed / max(1, step - first),
                (time.process_time() - cpu_started) / max(1, step - first),
            )
            bar.set_postfix(l1=f"{means['l1']:.3f}")
            sums, count = {}, 0
        if eval_bank is not None and config.run.eval_every and step % config.run.eval_every == 0:
            vae.eval()
            logger.info("step %d held-out whole-clip L1 %.4f", step, held_out_l1(vae, eval_bank.mels, stats))
            vae.train()
        out_of_time = max_minutes > 0 and time.perf_counter() - started > 60 * max_minutes
        if step % config.run.checkpoint_every == 0 or step == end or out_of_time:
            checkpoint()
        if out_of_time:
            logger.info("stopping after %.1f minutes at step %d (resume with --resume)", max_minutes, step)
            break
    bar.close()
    vae.eval()
    return vae, stats, step


def export(
    vae: AudioVAE, stats: dict[str, Tensor], train_bank: ClipBank, out_dir: str | Path, seed: int = 0
) -> tuple[AudioVAE, dict[str, float]]:
    """Fold the normalisation, set ``scaling_factor = 1 / std(z)`` and save an :class:`AudioVAE` folder.

    Returns:
        (the exported VAE, {"latent_std", "latent_mean", "scaling_factor"}).
    """
    fold_normalization(vae, stats)
    std, mean = latent_std(vae, train_bank.mels, torch.Generator().manual_seed(seed))
    vae.autoencoder.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(out_dir)
    info = {"latent_std": std, "latent_mean": mean, "scaling_factor": 1.0 / std}
    logger.info("exported %s: %s", out_dir, info)
    return vae, info


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    args, out, config = runs.start_run(AutoencoderTrainConfig, "Train the bundled mel VAE.", argv)
    bank, eval_bank = runs.load_clip_banks(out, args.data, config.data, keep_waveforms=False)
    vae, stats, step = train(
        config, bank, out, eval_bank, resume=args.resume, max_minutes=args.max_minutes, stop_at=args.stop_at
    )
    if step >= config.optim.max_steps and not args.no_export:
        n = min(len(bank), config.data.stats_clips)
        _, info = export(vae, stats, ClipBank(None, bank.mels[:n]), out / "final", config.run.seed)
        if eval_bank is not None:
            exported = AudioVAE.from_pretrained(out / "final", subfolder=None).eval()
            with torch.no_grad():
                recon = torch.cat(
                    [
                        exported.decode(exported.encode(m[:, None]).mode())[:, 0]
                        for m in eval_bank.mels.split(8)
                    ]
                )
            info["held_out_mel_l1"] = float((recon - eval_bank.mels).abs().mean())
        (out / "final_summary.json").write_text(json.dumps({"step": step, **info}, indent=2) + "\n")
        logger.info("final: %s", info)


if __name__ == "__main__":
    main()
