"""How close each solver setting gets to a converged solution from the same noise, at several guidance scales.

The released sizes sample with the bundled model's calibration (``balanced``: 16 ``ab2`` steps, shift 3)
at the reference's guidance 7, far above the bundled model's 2.5; this measures, on the bundled model,
whether the solver's advantage over 50 Euler steps holds at that guidance. Distance: mean relative L2 of
the final latents to ``--converged`` (200 Heun calls) from the same noise, over ``--prompts``; NFE =
transformer calls per clip (a guided call of the doubled batch counts once).

    python benchmarks/bench_solvers.py --json benchmarks/results/bench_solvers.json
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import torch
from bench_presets import Counter, distance, parse_row, run_row

from fluxmusic import FluxMusicPipeline
from fluxmusic.files import atomic_write_json

HERE = Path(__file__).resolve().parent
PROMPTS = (
    "a fast fiddle reel at 140 BPM",
    "slow piano chorale, 70 bpm",
    "a string quartet playing a gentle waltz at 96 BPM",
    "a flute jig at 120 BPM",
)
ROWS = ("euler:50:1:0", "euler:16:3:0", "dpmpp_2m:16:3:0", "ab2:8:3:0", "ab2:16:3:0", "ab2:32:3:0")
"""The reference's 50 Euler steps, then 16-call rivals and the three ``ab2`` presets."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--guidance", type=float, nargs="+", default=[2.5, 7.0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), help="SAMPLER:STEPS:SHIFT:CACHE")
    p.add_argument("--converged", default="heun:100:1:0")
    p.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=HERE / "results" / "bench_solvers.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = FluxMusicPipeline.from_pretrained(args.model, device="cpu", dtype="float32")
    counter, prompts = Counter(pipe.transformer), list(args.prompts)
    batch = len(prompts)
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpu": platform.processor(), "torch": torch.__version__},
        "model_defaults": pipe.spec.defaults,
        "results": {},
    }
    for guidance in args.guidance:
        start = time.perf_counter()
        converged = run_row(
            pipe, prompts, {"guidance": guidance, **parse_row(args.converged)}, args.seed, batch, counter
        )
        rows = {}
        for text in args.rows:
            out = run_row(pipe, prompts, {"guidance": guidance, **parse_row(text)}, args.seed, batch, counter)
            rows[text] = {"nfe": out["nfe"], "distance": distance(out["latents"], converged["latents"])}
            print(
                f"  guidance {guidance:g} {text:<16} NFE {out['nfe']:4.0f}",
                f"distance {rows[text]['distance']:.3f}",
                flush=True,
            )
        report["results"][f"{guidance:g}"] = {"rows": rows, "seconds": time.perf_counter() - start}
        atomic_write_json(args.json, report)
    print(f"\n{'row':<16} {'NFE':>4} " + " ".join(f"{'g ' + format(g, 'g'):>8}" for g in args.guidance))
    for text in args.rows:
        cells = [report["results"][f"{g:g}"]["rows"][text] for g in args.guidance]
        print(f"{text:<16} {cells[0]['nfe']:4.0f} " + " ".join(f"{c['distance']:8.3f}" for c in cells))
    print(
        f"distance to {args.converged} from the same noise, mean over {len(prompts)} prompts;",
        f"wrote {args.json}",
    )
    return report


if __name__ == "__main__":
    main()
