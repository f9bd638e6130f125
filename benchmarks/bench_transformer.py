"""MusicFlux forward speed: our bf16 fast path against a reference-equivalent fp32 path.

One classifier-free-guidance step of a preset (default ``small``, 1024 audio + 256 text tokens):

- ``reference``: what the reference implementation does -- fp32, the rotary table rebuilt in float64
  on every call and applied in float64, conditional and unconditional branches as two batch-1 forwards.
- ``fp32``: our fp32 path -- rotary table once per run, one batched CFG forward (batch 2).
- ``bf16``: our fast path -- as ``fp32`` under bf16 autocast.

It also measures this machine's matrix-product peak (fp32 and bf16) in the same run, and the bf16
output's relative error against fp32. Prints a table and writes JSON.

    python benchmarks/bench_transformer.py --preset small --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

import fluxmusic.model.layers as layers
import fluxmusic.model.musicflux as musicflux
from fluxmusic.config import PRESETS, MusicFluxConfig
from fluxmusic.model import MusicFlux, image_ids, text_ids


def forward_flops(config: MusicFluxConfig, img_tokens: int, txt_tokens: int) -> float:
    """Multiply-add FLOPs (x2) of one batch-1 forward: linear layers plus attention products."""
    h, mlp = config.hidden_size, config.mlp_hidden_dim
    length = img_tokens + txt_tokens
    attn = 4 * length * length * h
    double = 2 * length * (4 * h * h + 2 * h * mlp) + attn
    single = 2 * length * (h * (3 * h + mlp) + (h + mlp) * h) + attn
    embed = 2 * (img_tokens * config.in_channels * h + txt_tokens * config.context_in_dim * h)
    final = 2 * img_tokens * h * config.in_channels
    return config.depth * double + config.depth_single_blocks * single + embed + final


def matmul_peak(dtype: torch.dtype, repeats: int) -> float:
    """Best GFLOP/s of square and transformer-shaped matrix products in ``dtype``."""
    best = 0.0
    for m, k, n in ((4096, 4096, 4096), (2560, 512, 3584), (2560, 2560, 512)):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
        F.linear(a, b)
        seconds = _best_time(lambda a=a, b=b: F.linear(a, b), repeats)
        best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _reference_rope_table(ids: Tensor, axes_dim: tuple[int, ...], theta: int) -> Tensor:
    """The reference's float64 table of 2x2 rotation matrices, (B, 1, L, D/2, 2, 2)."""
    parts = []
    for axis, dim in enumerate(axes_dim):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angle = ids[..., axis].to(torch.float64)[..., None] * omega
        rot = torch.stack((torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)), dim=-1)
        parts.append(rot.unflatten(-1, (2, 2)))
    return torch.cat(parts, dim=-3).unsqueeze(1)


def _reference_apply_rope(x: Tensor, table: Tensor) -> Tensor:
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    out = table[..., 0] * pairs[..., 0] + table[..., 1] * pairs[..., 1]
    return out.reshape(x.shape).type_as(x)


@contextlib.contextmanager
def reference_rope() -> Iterator[None]:
    """Swap in the reference's float64 rotary implementation for the duration."""
    saved = musicflux.rope_table, layers.apply_rope
    musicflux.rope_table, layers.apply_rope = _reference_rope_table, _reference_apply_rope
    try:
        yield
    finally:
        musicflux.rope_table, layers.apply_rope = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--img-tokens", type=int, default=1024, help="audio tokens (1024 = 10.24 s)")
    parser.add_argument("--txt-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_transformer.json"
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    model = MusicFlux.random(PRESETS[args.preset]).eval()
    cfg = model.config
    t_lat, f_lat = 2 * args.img_tokens // 8, 16  # 8 mel columns of tokens, as for the AudioLDM2 VAE
    img_ids, txt_ids = image_ids(2, t_lat, f_lat), text_ids(2, args.txt_tokens)
    x = torch.randn(2, args.img_tokens, cfg.in_channels)
    txt = torch.randn(2, args.txt_tokens, cfg.context_in_dim)
    y, t = torch.randn(2, cfg.vec_in_dim), torch.rand(1).expand(2).contiguous()
    flops = 2 * forward_flops(cfg, args.img_tokens, args.txt_tokens)  # batch 2 = one CFG step

    def reference_step() -> Tensor:
        with reference_rope():
            cond = model(x[:1], img_ids[:1], txt[:1], txt_ids[:1], t[:1], y[:1])
            uncond = model(x[1:], img_ids[1:], txt[1:], txt_ids[1:], t[1:], y[1:])
        return torch.cat((cond, uncond))

    velocity = model.bind(img_ids, txt, txt_ids, y)
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, Tensor] = {}
    with torch.inference_mode():
        peak32, peak16 = matmul_peak(torch.float32, args.repeats), matmul_peak(torch.bfloat16, args.repeats)
        paths: list[tuple[str, Callable[[], Tensor], contextlib.AbstractContextManager]] = [
            ("reference", reference_step, contextlib.nullcontext()),
            ("fp32", lambda: velocity(x, t), contextlib.nullcontext()),
            ("bf16", lambda: velocity(x, t), torch.autocast("cpu", dtype=torch.bfloat16)),
        ]
        for name, step, ctx in paths:
            with ctx:  # one autocast region per run: weights are cast once, as in a sampling run
                outputs[name] = step().float()
                seconds = _best_time(step, args.repeats)
            peak = peak16 if name == "bf16" else peak32
            results[name] = {"seconds": seconds, "gflops": flops / seconds / 1e9}
            results[name]["fraction_of_peak"] = results[name]["gflops"] / peak
    base = results["reference"]["seconds"]
    for row in results.values():
        row["speedup_vs_reference"] = base / row["seconds"]
    rel = ((outputs["bf16"] - outputs["fp32"]).norm() / outputs["fp32"].norm()).item()
    ref_diff = (outputs["reference"] - outputs["fp32"]).abs().max().item()

    print(
        f"MusicFlux-{args.preset}, batch 2 (one CFG step), {args.img_tokens} + {args.txt_tokens} tokens, "
        f"{flops / 1e9:.0f} GFLOP, {torch.get_num_threads()} threads"
    )
    print(f"matrix-product peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    print(f"{'path':<10} {'seconds':>8} {'GFLOP/s':>8} {'of peak':>8} {'speed-up':>9}")
    for name, row in results.items():
        print(
            f"{name:<10} {row['seconds']:8.3f} {row['gflops']:8.0f} {row['fraction_of_peak']:8.1%} "
            f"{row['speedup_vs_reference']:8.2f}x"
        )
    print(f"bf16 vs fp32 relative error {rel:.2e}; reference vs fp32 max abs diff {ref_diff:.1e}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "preset": args.preset,
        "batch": 2,
        "img_tokens": args.img_tokens,
        "txt_tokens": args.txt_tokens,
        "gflop_per_step": flops / 1e9,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "peak_gflops": {"fp32": peak32, "bf16": peak16},
        "paths": results,
        "bf16_relative_error": rel,
        "reference_max_abs_diff": ref_diff,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
