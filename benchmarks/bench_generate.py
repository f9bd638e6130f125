"""Prompt to waveform on this machine: the reference's algorithm against our default and each preset.

One 10.24 s clip with the real FluxMusic-Small configuration and random weights: T5-XXL (written once
as sharded bf16 safetensors in the real layout, with T5's own initialisation scales), the CLAP text
tower, MusicFlux-Small, the AudioLDM2 VAE and HiFi-GAN. Each configuration runs in its own subprocess
(honest peak resident memory), warm: components built and one short generation run first, then the
timed one on another prompt.

- ``reference``: what a CPU user of the reference code runs: fp32 transformer with the reference's
  float64 rotary path, 50 Euler steps, guidance 7, conditional and unconditional passes as separate
  batch-1 forwards, T5 resident (bf16: fp32 does not fit this machine), CLAP, VAE and vocoder in fp32,
  the reference sampling script's text mode.
- ``default``: ours as ``FluxMusicPipeline.from_pretrained("small")`` builds it, with its defaults
  (``pipe.settings()``: the ``balanced`` preset): bf16 autocast with batched guidance, T5 blocks streamed
  from the safetensors files, bf16 channels-last VAE decode, bf16 vocoder (``load_released``'s lean
  stages).
- ``preset:NAME``: the same with each quality preset the sampling module defines.
- ``lean-checks``: each lean stage against its full-precision form (T5 int8 vs bf16, VAE, vocoder).

    python benchmarks/bench_generate.py --json benchmarks/results/bench_generate.json
    python benchmarks/bench_generate.py --quick      # 2 T5 layers, 2.56 s, few steps: for development
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
PROMPTS = ("a calm piano piece with soft strings", "an upbeat jazz trio with walking bass")
FALLBACK_PRESETS = {
    "dpmpp_2m-20": {"sampler": "dpmpp_2m", "steps": 20},
    "dpmpp_2m-10": {"sampler": "dpmpp_2m", "steps": 10},
}
"""Benched when the sampling module defines no quality presets (settings that exist today)."""


def cpu_info() -> dict[str, Any]:
    """CPU model and the flags that decide bf16/int8 speed."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    from fluxmusic.devices import cpu_has_fast_bf16

    wanted = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx2")
    return {
        "model": model,
        "flags": {f: f in flags for f in wanted},
        "onednn_bf16": cpu_has_fast_bf16(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def write_t5_weights(folder: Path, layers: int, seed: int = 0) -> Path:
    """Random T5-XXL encoder weights in the real sharded layout, bf16, one shard per block (once)."""
    from safetensors.torch import save_file
    from transformers import T5Config, T5EncoderModel

    from fluxmusic.text.lowmem import materialize_, params_on_meta
    from fluxmusic.text.t5 import T5XXL_CONFIG

    marker = folder / "bench-t5.json"
    if marker.is_file() and json.loads(marker.read_text()) == {"layers": layers, "seed": seed}:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    config = T5Config(**{**T5XXL_CONFIG, "num_layers": layers})
    config.save_pretrained(str(folder))
    with params_on_meta():
        model = T5EncoderModel(config)
    weight_map: dict[str, str] = {}

    def save(prefix: str, module: torch.nn.Module, name: str) -> None:
        state = {f"{prefix}{k}": v.contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(folder / name))
        weight_map.update(dict.fromkeys(state, name))

    for i, block in enumerate(model.encoder.block):
        materialize_(block, dtype=torch.bfloat16, seed=seed + 1 + i)
        with torch.no_grad():  # T5's init: q is d_kv**-0.5 smaller than fan-in scaling (no 1/sqrt(d) in T5)
            block.layer[0].SelfAttention.q.weight.mul_(config.d_kv**-0.5)
        save(f"encoder.block.{i}.", block, f"block-{i:02d}.safetensors")
        block.to("meta")
    embed = materialize_(model.shared, dtype=torch.bfloat16, seed=seed)
    with torch.no_grad():
        embed.weight.mul_(config.d_model**0.5)  # std 1, as T5 initialises its embedding
    save("shared.", embed, "embed.safetensors")
    save("encoder.final_layer_norm.", materialize_(model.encoder.final_layer_norm), "norm.safetensors")
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    marker.write_text(json.dumps({"layers": layers, "seed": seed}))
    return folder


class Stages:
    """Per-stage wall time and peak resident memory (sampled in a thread)."""

    def __init__(self) -> None:
        from bench_pipeline import PeakRSS

        self.rss = PeakRSS(0.02)
        self.rows: dict[str, dict[str, float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.rss.reset()
        start = time.perf_counter()
        yield
        self.rows[name] = {"seconds": time.perf_counter() - start, "peak_rss_gb": self.rss.peak / 1e9}
        row = self.rows[name]
        print(f"    {name:<30} {row['seconds']:8.2f} s   peak {row['peak_rss_gb']:5.2f} GB", flush=True)

    def total(self) -> tuple[float, float]:
        return sum(r["seconds"] for r in self.rows.values()), max(
            r["peak_rss_gb"] for r in self.rows.values()
        )


def _t5(args: argparse.Namespace, **kw: Any) -> Any:
    from transformers import T5Config

    from fluxmusic.text import T5Encoder, byte_level_tokenizer

    folder = Path(args.weights_dir)
    return T5Encoder.from_weights(
        folder, byte_level_tokenizer("t5"), T5Config.from_pretrained(str(folder)), **kw
    )


def build_pipeline(args: argparse.Namespace, reference: bool) -> Any:
    import psutil

    from fluxmusic.audio import AudioVAE, HifiGanVocoder
    from fluxmusic.config import PRESETS
    from fluxmusic.model import MusicFlux
    from fluxmusic.modelfolder.released import lean_audio_, lean_text, released_spec
    from fluxmusic.pipeline import FluxMusicPipeline
    from fluxmusic.text import ClapTextEncoder, FluxMusicConditioner, byte_level_tokenizer

    stream = lean_text(torch.device("cpu")) if args.t5 == "auto" else args.t5 == "stream"
    if reference:  # resident, as the reference holds it, unless the shared machine cannot spare 12 GB
        stream = psutil.virtual_memory().available < 12e9
        print(f"  reference T5: {'streamed (machine short of memory)' if stream else 'resident bf16'}")
    t5 = _t5(args, dtype=torch.bfloat16, stream=stream)
    args.t5_used = "stream" if stream else "resident"
    clap = ClapTextEncoder.from_config(
        byte_level_tokenizer("roberta"), dtype=torch.float32 if reference else None
    )
    text = FluxMusicConditioner(t5, clap, "reference-sampling" if reference else "training")
    vae, vocoder = AudioVAE.from_config(), HifiGanVocoder.from_config()
    if not reference:  # as FluxMusicPipeline.from_pretrained("small") on this machine
        lean_audio_(vae, vocoder, torch.device("cpu"))
    dtype = "float32" if reference else "auto"
    transformer = MusicFlux.random(PRESETS["small"])
    return FluxMusicPipeline(
        transformer, vae, vocoder, text, released_spec("small"), device="cpu", dtype=dtype
    )


def reference_generate(pipe: Any, prompt: str, duration: float, steps: int, stage: Stages) -> torch.Tensor:
    """The reference's sampling loop: separate fp32 cond/uncond forwards, float64 rope, Euler, guidance 7."""
    from bench_transformer import reference_rope

    from fluxmusic.model import image_ids, pack, text_ids, unpack

    with stage("1. encode text"):
        emb = pipe.encode_prompts([prompt], ["low quality, gentle"])
    frames = pipe.latent_frames(duration)
    noise = pipe.initial_noise(1, frames, [2024], None)
    t_lat, f_lat = noise.shape[-2:]
    ids, tids, model = image_ids(1, t_lat, f_lat), text_ids(1, emb.txt.shape[1]), pipe.transformer
    x = pack(noise)
    with stage(f"2. sample ({steps} steps)"), torch.inference_mode(), reference_rope():
        grid = torch.linspace(1.0, 0.0, steps + 1).tolist()
        for t, t_next in zip(grid[:-1], grid[1:], strict=True):
            tt = torch.full((1,), t)
            v_c = model(x=x, img_ids=ids, txt=emb.txt[:1], txt_ids=tids, t=tt, y=emb.y[:1])
            v_u = model(x=x, img_ids=ids, txt=emb.txt[1:], txt_ids=tids, t=tt, y=emb.y[1:])
            x = x + (t_next - t) * (v_u + 7.0 * (v_c - v_u))
    latent = unpack(x, t_lat, f_lat)
    return _decode(pipe, latent, duration, stage)


def _decode(pipe: Any, latent: torch.Tensor, duration: float, stage: Stages) -> torch.Tensor:
    with stage("3. vae decode"), torch.inference_mode():
        mel = pipe.vae.decode(latent.float())
    with stage("4. vocoder"), torch.inference_mode():
        return pipe.vocoder(mel, num_samples=round(duration * pipe.sample_rate)).float()


def ours_generate(pipe: Any, prompt: str, settings: Any, stage: Stages) -> torch.Tensor:
    """Our pipeline's stages, as ``pipe.generate`` runs them."""
    with stage("1. encode text"):
        negative = (
            settings.negative_prompt
            if isinstance(settings.negative_prompt, str)
            else settings.negative_prompt[0]
        )
        emb = pipe.encode_prompts([prompt], [negative])
    noise = pipe.initial_noise(1, pipe.latent_frames(settings.duration), [2024], None)
    with stage(f"2. sample ({settings.sampler} {settings.steps})"):
        latent = pipe.denoise(noise, emb, None, settings, progress=False)
    return _decode(pipe, latent, settings.duration, stage)


def discover_presets() -> tuple[list[str], str]:
    """The quality preset names of ``fluxmusic.sampling`` (``QUALITIES``), else ``FALLBACK_PRESETS``."""
    import fluxmusic.sampling as sampling

    names = getattr(sampling, "QUALITIES", None)
    if isinstance(names, (tuple, list)) and names:
        return list(names), "fluxmusic.sampling.QUALITIES (values from the model folder's defaults)"
    return list(FALLBACK_PRESETS), "fallback: fluxmusic.sampling defines no quality presets yet"


def preset_settings(pipe: Any, name: str | None, duration: float) -> Any:
    """``pipe.settings`` for the model default (``name`` None) or a quality preset."""
    if name is None:
        return pipe.settings(duration=duration)
    if name in FALLBACK_PRESETS and name not in discover_presets()[0]:
        return pipe.settings(duration=duration, **FALLBACK_PRESETS[name])
    return pipe.settings(duration=duration, quality=name)


def resolved_without_models(name: str | None, duration: float) -> dict[str, Any]:
    """What ``preset_settings`` gives for released Small, without building anything (to skip reruns)."""
    from fluxmusic.modelfolder.released import released_spec
    from fluxmusic.sampling import SampleSettings

    spec = released_spec("small")
    kw: dict[str, Any] = {} if name is None else {"quality": name}
    if name in FALLBACK_PRESETS and name not in discover_presets()[0]:
        kw = dict(FALLBACK_PRESETS[name])
    return SampleSettings.resolve(spec.defaults, default_duration=duration, duration=duration, **kw).to_dict()


def lean_checks(args: argparse.Namespace, stage: Stages) -> dict[str, Any]:
    """Each lean stage against its full-precision form, at real size."""
    from fluxmusic.audio import AudioVAE, HifiGanVocoder
    from fluxmusic.text import MODES

    rel = lambda a, b: float((a.float() - b.float()).norm() / b.float().norm())  # noqa: E731
    out: dict[str, Any] = {}
    mode, prompts = MODES["training"], [PROMPTS[1], "low quality, gentle"]
    stream = _t5(args, dtype=torch.bfloat16, stream=True)
    stream.encode(prompts[:1], mode)
    with stage("t5 bf16 streamed encode"):
        ref = stream.encode(prompts, mode)[0].float()
    del stream
    with stage("t5 int8 build"):
        int8 = _t5(args, quantize="int8")
    int8.encode(prompts[:1], mode)
    with stage("t5 int8 encode"):
        got = int8.encode(prompts, mode)[0].float()
    cosine = torch.nn.functional.cosine_similarity(got, ref, dim=-1).mean()
    out["t5_int8_vs_bf16"] = {"rel_l2": rel(got, ref), "mean_cosine": float(cosine)}
    del int8
    torch.manual_seed(0)
    vae, vocoder = AudioVAE.from_config(), HifiGanVocoder.from_config()
    latent = torch.randn(1, 8, 256, 16)
    with torch.inference_mode():
        with stage("vae decode fp32"):
            mel = vae.decode(latent)
        with stage("vae decode bf16 channels-last"):
            lean = vae.lean_decode_().decode(latent)
        with stage("vocoder fp32"):
            wave = vocoder(mel)
        with stage("vocoder bf16"):
            lean_wave = vocoder.lean_()(mel)
    out["vae_bf16_vs_fp32"] = {"rel_l2": rel(lean, mel), "max_abs": float((lean - mel).abs().max())}
    out["vocoder_bf16_vs_fp32"] = {"rel_l2": rel(lean_wave, wave)}
    return out


def worker(args: argparse.Namespace) -> None:
    stage, name = Stages(), args.worker
    report: dict[str, Any] = {"config": name}
    if name == "lean-checks":
        report["checks"] = lean_checks(args, stage)
    else:
        reference = name == "reference"
        with stage("build"):
            pipe = build_pipeline(args, reference)
        report["t5"] = args.t5_used
        preset = name.removeprefix("preset:") if name.startswith("preset:") else None
        if reference:
            run: Callable[[str, int | None], torch.Tensor] = lambda p, s: reference_generate(  # noqa: E731
                pipe, p, args.duration, s or args.reference_steps, stage
            )
        else:
            settings = preset_settings(pipe, preset, args.duration)
            report["settings"] = settings.to_dict()
            run = lambda p, s: ours_generate(  # noqa: E731
                pipe, p, settings if s is None else replace(settings, steps=s), stage
            )
        print("  warm-up (2 steps)")
        run(PROMPTS[0], 2)
        stage.rows.clear()
        print("  timed run")
        wave = run(PROMPTS[1], None)
        report["stages"] = stage.rows
        report["seconds"], report["peak_rss_gb_generation"] = stage.total()
        report["finite"] = bool(torch.isfinite(wave).all())
        report["num_samples"] = int(wave.shape[-1])
    report["peak_rss_gb_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    Path(args.worker_out).write_text(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_generate.json")
    parser.add_argument("--quick", action="store_true", help="2 T5 layers, 2.56 s clip, 4 reference steps")
    parser.add_argument("--duration", type=float, default=10.24)
    parser.add_argument("--reference-steps", type=int, default=50)
    parser.add_argument(
        "--t5",
        default="auto",
        choices=("auto", "stream", "resident"),
        help="our T5 (default auto: as from_pretrained loads it, streamed on a CPU)",
    )
    parser.add_argument("--weights-dir", default=None, help="where the random T5 weights are written once")
    parser.add_argument("--only", nargs="*", default=None, help="configurations to run (default all)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    layers = 2 if args.quick else 24
    if args.quick:
        args.duration, args.reference_steps = min(args.duration, 2.56), min(args.reference_steps, 4)
    args.weights_dir = args.weights_dir or os.path.join(tempfile.gettempdir(), f"fluxmusic-bench-t5-{layers}")
    if args.worker:
        return worker(args)

    info = cpu_info()
    print(f"CPU: {info['model']}; {info['cores']} cores, torch {info['torch']}, {info['threads']} threads")
    print("flags: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items()))
    print(f"native bf16 (oneDNN): {'yes' if info['onednn_bf16'] else 'no'}")
    print(f"writing / reusing random T5-XXL weights ({layers} layers) in {args.weights_dir}")
    start = time.perf_counter()
    write_t5_weights(Path(args.weights_dir), layers)
    print(f"  ready in {time.perf_counter() - start:.0f} s")
    presets, source = discover_presets()
    default = resolved_without_models(None, args.duration)
    same = [p for p in presets if resolved_without_models(p, args.duration) == default]
    if same:
        print(f"presets {', '.join(same)} resolve to the default settings: measured once, as 'default'")
    ordered = sorted((p for p in presets if p not in same), key=lambda p: p != "draft")  # cheapest first
    configs = ["default", "reference", *(f"preset:{p}" for p in ordered), "lean-checks"]
    configs = [c for c in configs if args.only is None or c in args.only]
    results: dict[str, Any] = {}
    for config in configs:
        print(f"[{config}]", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = handle.name
        common = ["--duration", str(args.duration), "--reference-steps", str(args.reference_steps)]
        command = [
            sys.executable,
            __file__,
            "--worker",
            config,
            "--worker-out",
            out,
            "--t5",
            args.t5,
            *common,
        ]
        command += ["--weights-dir", args.weights_dir] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, cwd=HERE)
        if done.returncode != 0:
            print(f"  {config} failed (exit {done.returncode})")
            continue
        results[config] = json.loads(Path(out).read_text())
        os.unlink(out)
        print(f"  process peak {results[config]['peak_rss_gb_process']:.2f} GB")
        report = summarise(args, info, results, presets, source, same, table=config == configs[-1])
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")  # after every configuration
    print(f"wrote {args.json}")


def summarise(
    args: argparse.Namespace,
    info: dict,
    results: dict[str, Any],
    presets: list,
    source: str,
    same: list,
    table: bool = True,
) -> dict[str, Any]:
    ref, ours = results.get("reference", {}), results.get("default", {})
    report: dict[str, Any] = {
        "clip_seconds": args.duration,
        "quick": args.quick,
        "cpu": info,
        "t5": args.t5,
        "reference_seconds": ref.get("seconds"),
        "fluxmusic_seconds": ours.get("seconds"),
        "peak_memory_gb": ours.get("peak_rss_gb_process"),
        "reference_peak_memory_gb": ref.get("peak_rss_gb_process"),
        "presets_source": source,
        "presets": {},
        "configs": results,
    }
    if ref.get("seconds") and ours.get("seconds"):
        report["speedup"] = ref["seconds"] / ours["seconds"]
    for name in presets:
        row = results.get(f"preset:{name}") or (ours if name in same else None)
        if row:
            entry = {"seconds": row["seconds"], "peak_memory_gb": row["peak_rss_gb_process"]}
            entry["settings"] = row.get("settings")
            entry["same_as_default"] = name in same
            if ref.get("seconds"):
                entry["speedup"] = ref["seconds"] / row["seconds"]
            report["presets"][name] = entry
    if not table:
        return report
    print(f"\n{'configuration':<24} {'seconds':>9} {'speed-up':>9} {'peak GB':>8}")
    for name, row in results.items():
        if "seconds" in row:
            speed = f"{ref['seconds'] / row['seconds']:8.2f}x" if ref.get("seconds") else "       -"
            print(f"{name:<24} {row['seconds']:9.1f} {speed} {row['peak_rss_gb_process']:8.2f}")
    if "lean-checks" in results:
        print("lean stages vs full precision: " + json.dumps(results["lean-checks"]["checks"]))
    return report


if __name__ == "__main__":
    main()
