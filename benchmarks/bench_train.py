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

Throughput is training tokens per second: (audio + text tokens) x micro-batches / wall time, timed over
``--steps`` optimizer steps after one warm-up step. Prints a table and writes JSON.

    python benchmarks/bench_train.py --steps 2 --accum 2 --batch 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_transformer import forward_flops, reference_rope
from torch import Tensor

from fluxmusic.config import PRESETS
from fluxmusic.data.seeding import generator
from fluxmusic.flow import flow_matching_loss, interpolate, velocity_target
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids
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


def our_loop(model: MusicFlux, precision: str, accum: int) -> Callable[[int, list[Batch]], None]:
    """One optimizer step of ``fluxmusic train``: accumulate, clip, AdamW, EMA."""
    config = TrainConfig.from_dict({"data": {"shards": "unused"}, "run": {"precision": precision}})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    ema = EMA(list(model.named_parameters()), decay=0.9999)
    rope_cache: dict = {}

    def step(index: int, batches: list[Batch]) -> None:
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


def reference_loop(model: MusicFlux) -> Callable[[int, list[Batch]], None]:
    """The reference's per-micro-batch stepping, fp32, rotary rebuilt per call, per-parameter EMA."""
    params = dict(model.named_parameters())
    optimizer = torch.optim.AdamW(params.values(), lr=1e-5, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in params.items()}
    gen = torch.Generator().manual_seed(0)

    def step(index: int, batches: list[Batch]) -> None:
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


def measure(step: Callable[[int, list[Batch]], None], batches: list[Batch], accum: int, steps: int) -> float:
    """Seconds per micro-batch over ``steps`` optimizer steps, after one warm-up step."""
    step(0, batches[:accum])
    start = time.perf_counter()
    for i in range(steps):
        step(i + 1, batches[accum * (i + 1) : accum * (i + 2)])
    return (time.perf_counter() - start) / (steps * accum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--img-tokens", type=int, default=1024, help="audio tokens per clip (1024 = 10.24 s)")
    parser.add_argument("--txt-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="clips per micro-batch")
    parser.add_argument("--accum", type=int, default=2, help="micro-batches per optimizer step")
    parser.add_argument("--steps", type=int, default=2, help="timed optimizer steps (after one warm-up step)")
    parser.add_argument(
        "--checkpointing", action="store_true", help="also time bf16 with activation checkpointing"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_train.json")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = PRESETS[args.preset]
    batches = make_batches(
        args.accum * (args.steps + 1), args.batch, args.img_tokens, args.txt_tokens, config
    )
    tokens = args.batch * (args.img_tokens + args.txt_tokens)
    variants: list[tuple[str, Callable[[MusicFlux], Callable[[int, list[Batch]], None]], bool]] = [
        ("reference", reference_loop, False),
        ("fp32", lambda m: our_loop(m, "fp32", args.accum), False),
        ("bf16", lambda m: our_loop(m, "bf16", args.accum), False),
    ]
    if args.checkpointing:
        variants.append(("bf16+ckpt", lambda m: our_loop(m, "bf16", args.accum), True))
    flops = 3 * forward_flops(config, args.img_tokens, args.txt_tokens) * args.batch  # forward + backward
    results: dict[str, dict[str, float]] = {}
    for name, build, checkpointing in variants:
        model = MusicFlux.random(config, seed=0).train()
        model.gradient_checkpointing = checkpointing
        seconds = measure(build(model), batches, args.accum, args.steps)
        results[name] = {"seconds_per_micro_batch": seconds, "tokens_per_s": tokens / seconds,
                         "gflops": flops / seconds / 1e9}  # fmt: skip
        del model
    base = results["reference"]["tokens_per_s"]
    for row in results.values():
        row["speedup_vs_reference"] = row["tokens_per_s"] / base

    print(f"{args.preset}: micro-batch {args.batch} x ({args.img_tokens} + {args.txt_tokens}) tokens, "
          f"{args.accum} micro-batches per optimizer step, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'loop':<11} {'s/micro-batch':>14} {'tokens/s':>10} {'GFLOP/s':>9} {'vs reference':>13}")
    for name, row in results.items():
        print(f"{name:<11} {row['seconds_per_micro_batch']:>14.2f} {row['tokens_per_s']:>10.0f} "
              f"{row['gflops']:>9.1f} {row['speedup_vs_reference']:>12.2f}x")  # fmt: skip
    report = {
        "preset": args.preset,
        "batch": args.batch,
        "img_tokens": args.img_tokens,
        "txt_tokens": args.txt_tokens,
        "grad_accum": args.accum,
        "timed_optimizer_steps": args.steps,
        "gflop_per_micro_batch": flops / 1e9,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "loops": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
