"""The full real-configuration pipeline on this machine: per-stage time and peak memory.

T5-XXL + CLAP text encoders (bf16, random weights, T5 released after encoding), MusicFlux (default
``small``), the AudioLDM2 VAE and HiFi-GAN vocoder, all built from their exact configs with random
weights (nothing is downloaded), generate one clip (default 10.24 s, 50 Euler steps with batched CFG).
Prints a table and writes JSON.

    python benchmarks/bench_pipeline.py --steps 50
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch

from fluxmusic.audio import AudioVAE, HifiGanVocoder
from fluxmusic.config import PRESETS
from fluxmusic.flow import classifier_free_guidance, sample
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids, unpack
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.pipeline import FluxMusicPipeline
from fluxmusic.text.conditioner import FluxMusicConditioner


class PeakRSS:
    """Samples this process's resident memory in a thread; ``peak`` since the last ``reset``."""

    def __init__(self, interval: float = 0.05) -> None:
        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self.process.memory_info().rss

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--duration", type=float, default=10.24)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_pipeline.json")
    args = parser.parse_args()

    rss = PeakRSS()
    stages: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        rss.reset()
        start = time.perf_counter()
        yield
        stages[name] = {"seconds": time.perf_counter() - start, "peak_rss_gb": rss.peak / 1e9}
        print(f"  {name:<22} {stages[name]['seconds']:8.1f} s   peak {stages[name]['peak_rss_gb']:5.2f} GB")

    print(f"building components (exact configs, random weights, {args.preset})")
    with stage("build text encoders"):
        text = FluxMusicConditioner.random(dtype=torch.bfloat16)
    with stage("build transformer"):
        transformer = MusicFlux.random(PRESETS[args.preset])
    with stage("build vae + vocoder"):
        vae, vocoder = AudioVAE.from_config(), HifiGanVocoder.from_config()
    spec = PipelineSpec(default_duration=10.24, max_duration=max(40.96, args.duration), name="bench")
    pipe = FluxMusicPipeline(
        transformer, vae, vocoder, text, spec, device="cpu", dtype=args.dtype, release_text_encoder=True
    )

    prompt, negative = ["a calm piano piece with soft strings"], ["low quality, gentle"]
    print("generating")
    with stage("1. encode text"):
        emb = pipe.encode_prompts(prompt, negative)
    frames = pipe.latent_frames(args.duration)
    with stage("2. noise"):
        noise = pipe.initial_noise(1, frames, [2024], None)
    t_lat, f_lat = noise.shape[-2:]
    velocity = pipe.transformer.bind(
        image_ids(2, t_lat, f_lat), emb.txt, text_ids(2, emb.txt.shape[1]), emb.y
    )
    autocast = torch.autocast("cpu", dtype=pipe.dtype, enabled=pipe.dtype != torch.float32)
    with stage(f"3. sample ({args.steps} steps)"), torch.inference_mode(), autocast:
        tokens = sample(classifier_free_guidance(velocity, 7.0), pack(noise), steps=args.steps, progress=True)
    latent = unpack(tokens.float(), t_lat, f_lat)
    with stage("4. vae decode"), torch.inference_mode():
        mel = pipe.vae.decode(latent)
    with stage("5. vocoder"), torch.inference_mode():
        waveform = pipe.vocoder(mel, num_samples=round(args.duration * 16000))
    rss.stop()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    total = sum(v["seconds"] for k, v in stages.items() if k[0].isdigit())
    print(f"clip: {tuple(waveform.shape)} samples, finite: {bool(torch.isfinite(waveform).all())}")
    print(f"generation total {total:.1f} s; peak resident memory of the whole run {peak_gb:.2f} GB")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "preset": args.preset,
        "duration": args.duration,
        "steps": args.steps,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "stages": stages,
        "generation_seconds": total,
        "peak_rss_gb": peak_gb,
        "num_samples": int(waveform.shape[-1]),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
