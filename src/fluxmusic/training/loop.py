"""The training loop: rectified-flow MusicFlux training from a laptop CPU to multi-node GPU jobs.

Reads top to bottom: set up the process group, lock and open the run folder; build the frozen VAE and
text encoder, the transformer (LoRA if enabled), its DDP/FSDP wrapper, EMA, AdamW and the schedule;
resume if asked; then for each optimizer step run ``grad_accum`` micro-batches (gradient sync only on the
last), clip, step and update the EMA (neither when the loss or gradient norm is not finite:
:mod:`fluxmusic.training.guard`), and now and then log, checkpoint and render samples.

Every random draw of a micro-batch comes from a generator seeded with ``(seed, rank, step, micro)``;
per-sample draws (crops, posterior samples) from ``(seed, epoch, position)``; so a resumed run repeats
the uninterrupted one bit for bit (on CPU; CUDA kernels may be non-deterministic).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fluxmusic.data.dataset import EpochSampler, SkippedItem
from fluxmusic.errors import InputError
from fluxmusic.flow import flow_matching_loss, interpolate, sample_timesteps, velocity_target
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids
from fluxmusic.seeding import derive_seed, generator
from fluxmusic.text.base import TextEmbedding
from fluxmusic.training import state as run_state
from fluxmusic.training.batches import DataStream, build_data, encode_captions, prepare_batch
from fluxmusic.training.build import build_model, build_text, build_vae, build_vocoder
from fluxmusic.training.checkpoint import latest_checkpoint
from fluxmusic.training.config import CONFIG_NAME, TrainConfig, absolute_paths, saved_config
from fluxmusic.training.distributed import (
    DistContext,
    choose_strategy,
    init_distributed,
    no_sync,
    unwrap,
    wrap_model,
)
from fluxmusic.training.ema import EMA
from fluxmusic.training.faults import maybe_kill
from fluxmusic.training.guard import NonFiniteGuard, guard_loss
from fluxmusic.training.metrics import MetricsLogger
from fluxmusic.training.optim import build_optimizer, clip_and_step
from fluxmusic.training.runs import RunLock, TrainResult, check_resume, open_run_dir, resume_point
from fluxmusic.training.tally import Tally, log_interval

__all__ = ["TrainResult", "absolute_paths", "flow_loss", "resume_config", "train"]

logger = logging.getLogger(__name__)


def resume_config(run_dir: str | os.PathLike[str], overrides: list[str] | None = None) -> TrainConfig:
    """The saved config of a run, with ``--set`` overrides (e.g. ``run.max_steps=20000``)."""
    return TrainConfig.from_dict(saved_config(run_dir, overrides))


def flow_loss(
    model: nn.Module,
    latents: Tensor,
    text: TextEmbedding,
    gen: torch.Generator,
    config: TrainConfig,
    rope_cache: dict[tuple[int, ...], Tensor],
    tempo: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Rectified-flow loss of one micro-batch: t ~ logit-normal, x_t = (1 - t) x0 + t eps, target eps - x0.

    Returns the mean loss over the rows (0 for an empty batch, whose items were all skipped: it still runs,
    adding nothing, so that every rank takes part in the gradient all-reduce) and the per-row losses
    (detached).

    Shapes:
        latents: (B, C, T, F); text: (B, L, D); tempo: (B, 2) or None -> (), (B,).
    """
    device = latents.device
    batch, _, t_lat, f_lat = latents.shape
    patch = unwrap(model).config.patch_size
    x0 = pack(latents, patch)
    t = sample_timesteps(
        batch, gen, mean=config.flow.logit_mean, std=config.flow.logit_std, shift=config.flow.shift
    )
    noise = torch.randn(x0.shape, generator=gen).to(device)
    t = t.to(device)
    img_ids = image_ids(batch, t_lat, f_lat, device, patch=patch)
    txt_ids = text_ids(batch, text.txt.shape[1], device)
    key = (t_lat, f_lat, text.txt.shape[1])
    if key not in rope_cache:  # from batch-1 ids: the batch may be empty
        one = image_ids(1, t_lat, f_lat, device, patch=patch)
        rope_cache[key] = unwrap(model).rope(text_ids(1, key[2], device), one)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.run.precision == "bf16")
    with autocast:
        x_t = interpolate(x0, noise, t)
        pred = model(x_t, img_ids, text.txt, txt_ids, t, text.y, rope=rope_cache[key], tempo=tempo)
    per_row = flow_matching_loss(pred, velocity_target(x0, noise), reduce=False)
    return per_row.sum() / max(batch, 1), per_row.detach()


def train(config: TrainConfig, resume: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train (or resume) a run described by ``config``; under ``torchrun`` every rank calls this.

    Args:
        config: The experiment.
        resume: A run folder to continue from its newest complete checkpoint (``config`` should be
            :func:`resume_config` of it), or ``"auto"``: continue ``config.run.dir`` if it holds a
            checkpoint, else start it (for preemptible jobs and ``torchrun --max-restarts``).

    Returns:
        The :class:`TrainResult`.
    """
    ctx = init_distributed(config.run.device)
    try:
        return _train(config, ctx, resume)
    finally:
        ctx.shutdown()


def _train(config: TrainConfig, ctx: DistContext, resume: str | os.PathLike[str] | None) -> TrainResult:
    config = absolute_paths(config)
    lock = RunLock(config.run.dir).acquire_on(ctx)  # rank 0 holds the run folder until the end
    try:
        return _run(config, ctx, resume)
    finally:
        lock.release()


def _run(config: TrainConfig, ctx: DistContext, resume: str | os.PathLike[str] | None) -> TrainResult:
    run, optim_cfg = config.run, config.optim
    if run.threads:
        torch.set_num_threads(run.threads)
    run_dir = Path(run.dir)
    checkpoint = resume_point(run_dir, resume)
    if checkpoint is not None:
        check_resume(run_dir, config)
    if ctx.is_main:
        open_run_dir(run_dir)
    ctx.barrier()
    device = ctx.device

    # 1. frozen components: the VAE (audio path, samples, export), the vocoder (rank 0), the text encoder
    renders = ctx.is_main and bool(run.export or config.sample.every)  # rank 0 needs the whole pipeline
    vae = build_vae(config, device) if config.data.manifest or renders else None
    vocoder = build_vocoder(config, device) if renders else None
    data = build_data(config, ctx, run_dir, vae)
    text = build_text(config, device) if data.from_audio or renders else None

    # 2. the transformer, its wrapper, EMA, optimizer and schedule
    model = build_model(config, device)
    _check_widths(config, model, text, data)
    _check_tempo_data(model, data)
    torch.manual_seed(derive_seed(run.seed, "torch", ctx.rank))
    strategy = choose_strategy(run.strategy, config.model.preset, ctx)
    wrapped = wrap_model(model, strategy, ctx)
    trainable = [(n, p) for n, p in unwrap(wrapped).named_parameters() if p.requires_grad]
    ema = EMA(trainable, config.ema.decay)
    optimizer, scheduler = build_optimizer(
        [p for _, p in trainable],
        optim_cfg,
        run.max_steps,
        fused=device.type == "cuda" and strategy != "fsdp",
    )
    trainee = run_state.Trainee(config, ctx, wrapped, ema, optimizer, scheduler)
    state = run_state.RunState()
    if checkpoint is not None:
        state = run_state.restore(checkpoint, trainee)
    if ctx.is_main:
        config.save_json(run_dir / CONFIG_NAME)  # what runs, changes of a resume included
    n_params = sum(p.numel() for _, p in trainable)
    logger.info(
        "training %d parameters (%s, %s, %d rank(s)) in %s",
        n_params,
        config.model.preset,
        strategy,
        ctx.world_size,
        run_dir,
    )
    if run.precision == "bf16" and device.type == "cpu":
        from fluxmusic.devices import cpu_has_fast_bf16

        if not cpu_has_fast_bf16():
            logger.warning(
                "run.precision = 'bf16' on a CPU without native bf16 (AVX-512 BF16 / AMX) is emulated and "
                "many times slower than fp32; set run.precision = 'fp32'"
            )

    # 3. data: sampler, stream, text embeddings (pre-encoded once into the cache)
    sampler = EpochSampler(
        len(data.dataset), optim_cfg.batch_size, run.seed, ctx.rank, ctx.world_size, config.data.shuffle
    )
    stream = iter(DataStream(data.dataset, sampler, state.position, config.data.num_workers))
    if data.from_audio:
        encode_captions(text, data.captions, ctx)
        with torch.inference_mode():
            empty = text.encode([""]).to(device, torch.float32)
        if config.text.encoder == "t5-clap":
            text.release()  # every caption is cached now; T5-XXL reloads only to encode new sample prompts
    else:
        txt, mask, y = data.dataset.empty_text()  # type: ignore[attr-defined]
        empty = TextEmbedding(txt[None], mask[None], y[None]).to(device)
    patch = config.model.musicflux().patch_size
    tokens_per_sample = (data.latent_shape[1] // patch) * (data.latent_shape[2] // patch) + empty.txt.shape[1]
    metrics = MetricsLogger(run_dir, state.step, run.tensorboard, run.max_steps) if ctx.is_main else None
    skip_log = run_dir / "logs" / f"skipped-r{ctx.rank}.jsonl"

    # 4. the loop
    rope_cache: dict[tuple[int, ...], Tensor] = {}
    uses_tempo = unwrap(model).config.has_tempo_input
    tally = Tally(device)
    guard = NonFiniteGuard(run.max_nonfinite, state.skipped_nonfinite)
    last_loss, saved = None, None
    wrapped.train()
    while state.step < run.max_steps:
        for micro in range(optim_cfg.grad_accum):
            state.position, batch = next(stream)
            if batch.skipped:
                _record_skips(skip_log, state.step, batch.skipped)
            gen = generator(run.seed, "step", ctx.rank, state.step, micro)
            latents, batch_text, batch_tempo = prepare_batch(
                batch, gen, config, device, data.latent_shape, empty, vae, text, tempo=uses_tempo
            )
            with no_sync(wrapped, strategy, enabled=micro < optim_cfg.grad_accum - 1):
                loss, per_row = flow_loss(
                    wrapped, latents, batch_text, gen, config, rope_cache, tempo=batch_tempo
                )
                (guard_loss(loss) / optim_cfg.grad_accum).backward()
            tally.add(per_row, len(batch.skipped))
        grad_norm, skipped = clip_and_step([p for _, p in trainable], optimizer, optim_cfg.grad_clip)
        scheduler.step()
        if not isinstance(skipped, bool):
            ema.update(keep=1.0 - skipped)  # skipped on the device: leave the shadow as it is
        elif not skipped:
            ema.update()
        state.step += 1
        tally.end_step(skipped)
        guard.record(skipped, state.step)

        log_now = state.step % run.log_every == 0 or state.step == run.max_steps
        save_now = state.step % run.checkpoint_every == 0 or state.step == run.max_steps
        if log_now or save_now:
            state.skipped_nonfinite = guard.check(state.step)
        if log_now:
            last_loss = log_interval(tally, state, ctx, metrics, grad_norm, scheduler, tokens_per_sample)
        if config.sample.every and state.step % config.sample.every == 0:
            _sample(config, ctx, wrapped, ema, vae, vocoder, text, state.step, device)
        if save_now:
            tally.sync_totals(state, ctx)
            saved = run_state.save(run_dir, trainee, state) or saved
        maybe_kill("kill-after-step", state.step)

    export = None
    if run.export:
        full_ema = ema.full_state()
        if ctx.is_main:
            from fluxmusic.training.samples import export_run

            export = export_run(config, unwrap(wrapped), full_ema, vae, vocoder, text, torch.device("cpu"))
        ctx.barrier()
    if metrics is not None:
        metrics.close()
    return TrainResult(
        run_dir, state.step, saved or latest_checkpoint(run_dir), export, last_loss, unwrap(wrapped)
    )


def _check_widths(config: TrainConfig, model: nn.Module, text: Any, data: Any) -> None:
    cfg = config.model.musicflux()
    if text is not None and (text.txt_dim, text.pooled_dim) != (cfg.context_in_dim, cfg.vec_in_dim):
        raise InputError(
            f"text encoder {config.text.encoder!r} gives widths ({text.txt_dim}, {text.pooled_dim}) but the "
            f"transformer takes ({cfg.context_in_dim}, {cfg.vec_in_dim}); match model.preset/overrides to it"
        )
    if not data.from_audio:
        stored = data.dataset.index["text"]
        if (stored["txt_dim"], stored["pooled_dim"]) != (cfg.context_in_dim, cfg.vec_in_dim):
            raise InputError(
                f"the shards hold text of widths ({stored['txt_dim']}, {stored['pooled_dim']}) but the "
                f"transformer takes ({cfg.context_in_dim}, {cfg.vec_in_dim})"
            )
        if text is not None and text.cache_key != stored["cache_key"]:
            logger.warning("[text] differs from the encoder the shards were made with; samples may be off")
    if cfg.in_channels != cfg.patch_size**2 * data.latent_shape[0]:
        raise InputError(
            f"the transformer takes {cfg.in_channels} features per token; latents have "
            f"{data.latent_shape[0]} channels (x {cfg.patch_size}^2 per patch)"
        )


def _check_tempo_data(model: MusicFlux, data: Any) -> None:
    """A model with a tempo input needs data with tempi (``bpm`` in the manifest, then preprocess)."""
    if not model.config.has_tempo_input:
        return
    if data.from_audio:
        known = sum(item.bpm is not None for item in data.dataset.items)
    else:
        from fluxmusic.data.preprocess import shard_items

        known = sum("tempo" in info for info in shard_items(data.dataset.root))
    if known == 0:
        raise InputError(
            "the transformer has a tempo input but no training item has a tempo; give items a 'bpm' "
            "in the manifest (and run fluxmusic preprocess again for shards)"
        )
    logger.info("tempo: %d of %d items give a bpm", known, len(data.dataset))


def _record_skips(path: Path, step: int, skipped: list[SkippedItem]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for item in skipped:
            f.write(json.dumps({"step": step, **item.to_dict()}, ensure_ascii=False) + "\n")
            logger.warning("skipped item %d (%s): %s", item.index + 1, item.path, item.reason)


def _sample(
    config: TrainConfig,
    ctx: DistContext,
    model: nn.Module,
    ema: EMA,
    vae: Any,
    vocoder: Any,
    text: Any,
    step: int,
    device: torch.device,
) -> None:
    from fluxmusic.training.samples import ema_transformer, render_samples

    full_ema = ema.full_state()
    if ctx.is_main:
        transformer = ema_transformer(config, unwrap(model), full_ema, device)
        render_samples(config, step, transformer, vae, vocoder, text, device)
        del transformer
    ctx.barrier()
