"""Training speed of MusicFlux on this machine: our loop in fp32 and bf16 against a reference-equivalent loop.

Small-shaped steps by default: FluxMusic-Small, micro-batches of 1024 audio + 256 text tokens (10.24 s
clips with the reference's T5 length), random weights and inputs (speed does not depend on them).

- ``reference``: what the reference trainer does per micro-batch -- fp32, the rotary table rebuilt in
  float64 on every forward (``bench_transformer.reference_rope``), and an optimizer step, a
  per-parameter EMA update and a ``loss.item()`` after *every* micro-batch (it counts micro-batches as
  steps).
- ``fp32``: our loop (``fluxmusic.training.loop.flow_loss``, as ``fluxmusic train`` runs it): rotary
  table once per shape, ``grad_accum`` micro-batches per optimizer step, fused ``_foreach`` EMA once per
  optimizer step, no host sync.
- ``bf16``: the same under bf16 autocast (fp32 master weights, the default ``run.precision``).
- ``bf16+ckpt`` (``--checkpointing``): bf16 with activation checkpointing (less memory, more compute).

Throughput is training tokens per second: (audio + text tokens) x micro-batches / wall time (median over
``--steps`` rounds after a warm-up round; the loops take turns, one optimizer step each per round, and
share one model and optimizer). CPU seconds of the process are reported too: on a shared machine they
show the work done when wall time is inflated by other jobs. Prints a table and writes JSON.

    python benchmarks/bench_train.py --steps 2 --accum 2 --batch 1 [--threads 1] [--checkpointing]

On a machine shared with other jobs, use ``--threads 1`` (or the number of idle cores): with more
threads than free cores, every parallel element-wise kernel waits for its slowest thread at a barrier
and steps get several times slower, whatever the training loop does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_transformer import forward_flops, reference_rope
from torch import Tensor

from fluxmusic.config import PRESETS
from fluxmusic.flow import flow_matching_loss, interpolate, velocity_target
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids
from fluxmusic.seeding import generator
from fluxmusic.text.base import TextEmbedding
from fluxmusic.training.config import TrainConfig
from fluxmusic.training.ema import EMA
from fluxmusic.training.loop import flow_loss

Batch = tuple[Tensor, TextEmbedding]


def make_batches(count: int, batch: int, img_tokens: int, txt_tokens: int, config) -> list[Batch]:  # noqa: ANN001
    """Random latents (8 mel columns of tokens, as the AudioLDM2 VAE gives) and text states."""
    gen = torch.Generator().manual_seed(0)
    t_lat = 2 * img_tokens // 8
    out = []
    for _ in range(count):
        latents = torch.randn(batch, config.in_channels // 4, t_lat, 16, generator=gen)
        txt = torch.randn(batch, txt_tokens, config.context_in_dim, generator=gen)
        mask = torch.ones(batch, txt_tokens, dtype=torch.bool)
        y = torch.randn(batch, config.vec_in_dim, generator=gen)
        out.append((latents, TextEmbedding(txt, mask, y)))
    return out


def our_loop(
    model: MusicFlux, optimizer: torch.optim.Optimizer, precision: str, accum: int, checkpointing: bool
) -> Callable[[int, list[Batch]], None]:
    """One optimizer step of ``fluxmusic train``: accumulate, clip, AdamW, EMA once per step."""
    config = TrainConfig.from_dict({"data": {"shards": "unused"}, "run": {"precision": precision}})
    params = [p for p in model.parameters() if p.requires_grad]
    ema = EMA(list(model.named_parameters()), decay=0.9999)
    rope_cache: dict = {}

    def step(index: int, batches: list[Batch]) -> None:
        model.gradient_checkpointing = checkpointing
        for micro, (latents, text) in enumerate(batches):
            loss, _ = flow_loss(
                model, latents, text, generator(0, "step", 0, index, micro), config, rope_cache
            )
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update()

    return step


def reference_loop(model: MusicFlux, optimizer: torch.optim.Optimizer) -> Callable[[int, list[Batch]], None]:
    """The reference's per-micro-batch stepping, fp32, rotary rebuilt per call, per-parameter EMA."""
    params = dict(model.named_parameters())
    ema = {k: v.detach().clone() for k, v in params.items()}
    gen = torch.Generator().manual_seed(0)

    def step(index: int, batches: list[Batch]) -> None:
        model.gradient_checkpointing = False
        for latents, text in batches:
            batch, _, t_lat, f_lat = latents.shape
            x0 = pack(latents)
            t = torch.sigmoid(torch.randn(batch, generator=gen))
            noise = torch.randn(x0.shape, generator=gen)
            with reference_rope():
                pred = model(interpolate(x0, noise, t), image_ids(batch, t_lat, f_lat), text.txt,
                             text_ids(batch, text.txt.shape[1]), t, text.y)  # fmt: skip
            loss = flow_matching_loss(pred, velocity_target(x0, noise))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            with torch.no_grad():
                for name, param in params.items():
                    ema[name].mul_(0.9999).add_(param.data, alpha=1 - 0.9999)
            loss.item()

    return step


def measure(
    loops: dict[str, Callable[[int, list[Batch]], None]], batches: list[Batch], accum: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds per micro-batch of each loop, after one warm-up step each.

    The loops take turns (one optimizer step each per round), so a machine whose load changes during the
    run slows them alike.
    """
    wall: dict[str, list[float]] = {name: [] for name in loops}
    cpu: dict[str, list[float]] = {name: [] for name in loops}
    for index in range(rounds + 1):
        chunk = batches[accum * index : accum * (index + 1)]
        for name, step in loops.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            step(index, chunk)
            if index:  # round 0 is the warm-up
                wall[name].append((time.perf_counter() - start) / accum)
                cpu[name].append((time.process_time() - start_cpu) / accum)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in loops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--img-tokens", type=int, default=1024, help="audio tokens per clip (1024 = 10.24 s)")
    parser.add_argument("--txt-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="clips per micro-batch")
    parser.add_argument("--accum", type=int, default=2, help="micro-batches per optimizer step")
    parser.add_argument(
        "--steps", type=int, default=2, help="timed rounds: one optimizer step of every loop each"
    )
    parser.add_argument(
        "--checkpointing", action="store_true", help="also time bf16 with activation checkpointing"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_train.json")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    torch.manual_seed(0)
    config = PRESETS[args.preset]
    batches = make_batches(
        args.accum * (args.steps + 1), args.batch, args.img_tokens, args.txt_tokens, config
    )
    tokens = args.batch * (args.img_tokens + args.txt_tokens)
    # One model and optimizer serve every loop (speed does not depend on the weights' values).
    model = MusicFlux.random(config, seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    loops = {
        "reference": reference_loop(model, optimizer),
        "fp32": our_loop(model, optimizer, "fp32", args.accum, checkpointing=False),
        "bf16": our_loop(model, optimizer, "bf16", args.accum, checkpointing=False),
    }
    if args.checkpointing:
        loops["bf16+ckpt"] = our_loop(model, optimizer, "bf16", args.accum, checkpointing=True)
    flops = 3 * forward_flops(config, args.img_tokens, args.txt_tokens) * args.batch  # forward + backward
    results: dict[str, dict[str, float]] = {}
    for name, (seconds, cpu_seconds) in measure(loops, batches, args.accum, args.steps).items():
        results[name] = {
            "seconds_per_micro_batch": seconds,
            "cpu_seconds_per_micro_batch": cpu_seconds,
            "tokens_per_s": tokens / seconds,
            "tokens_per_cpu_s": tokens / cpu_seconds,
            "gflops": flops / seconds / 1e9,
        }
    base = results["reference"]["tokens_per_s"]
    for row in results.values():
        row["speedup_vs_reference"] = row["tokens_per_s"] / base

    print(f"{args.preset}: micro-batch {args.batch} x ({args.img_tokens} + {args.txt_tokens}) tokens, "
          f"{args.accum} micro-batches per optimizer step, {torch.get_num_threads()} threads")  # fmt: skip
    print(
        f"{'loop':<11} {'s/micro-batch':>14} {'CPU s':>7} {'tokens/s':>9} {'GFLOP/s':>8} {'vs reference':>13}"
    )
    for name, r in results.items():
        print(
            f"{name:<11} {r['seconds_per_micro_batch']:>14.2f} {r['cpu_seconds_per_micro_batch']:>7.2f} "
            f"{r['tokens_per_s']:>9.1f} {r['gflops']:>8.1f} {r['speedup_vs_reference']:>12.2f}x"
        )
    report = {
        "preset": args.preset,
        "batch": args.batch,
        "img_tokens": args.img_tokens,
        "txt_tokens": args.txt_tokens,
        "grad_accum": args.accum,
        "timed_rounds": args.steps,
        "load_average_start": load_start,
        "gflop_per_micro_batch": flops / 1e9,
        "threads": torch.get_num_threads(),
        "load_average_end": os.getloadavg(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "loops": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
