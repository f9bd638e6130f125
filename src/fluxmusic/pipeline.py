"""FluxMusicPipeline: prompts -> audio, in numbered stages.

1. check the request;  2. encode prompts (conditional and unconditional);  3. draw the starting noise on
the CPU from per-item seeds;  4. integrate the flow with batched classifier-free guidance;  5. decode
latents -> log-mel (VAE) -> waveform (vocoder) and trim to the requested duration.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from fluxmusic.audio import AudioVAE, Vocoder
from fluxmusic.components import (
    BUNDLED_NAME,
    RELEASED,
    Components,
    PipelineSpec,
    bundled_model_dir,
    load_model_dir,
    load_released,
    save_model_dir,
)
from fluxmusic.flow import SAMPLERS, classifier_free_guidance, sample
from fluxmusic.flow.guidance import check_eta, check_interval
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids, unpack
from fluxmusic.text.base import TextConditioner, TextEmbedding
from fluxmusic.text.tempo import MAX_BPM, MIN_BPM, prompt_bpm

logger = logging.getLogger(__name__)

N_MELS = 64
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class AudioOutput:
    """Generated audio.

    Attributes:
        waveforms: Mono waveforms in [-1, 1] (float32, CPU), one row per generated clip.
        sample_rate: Samples per second.
        prompts: The prompt of each row.
        seeds: The seed of each row's starting noise (None when a generator was passed).
        mels: The decoded log-mel spectrograms, time-major.
        bpm: The tempo each row was asked for through the model's tempo input (None: none given), or
            None for models without one.

    Shapes:
        waveforms: (B, S); mels: (B, T, 64).
    """

    waveforms: Tensor
    sample_rate: int
    prompts: list[str]
    seeds: list[int] | None
    mels: Tensor
    bpm: list[float | None] | None = None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU."""
    if str(device) != "auto":
        try:
            return torch.device(device)
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), as oneDNN reports it.

    Without it (e.g. AVX2-only CPUs) bf16 autocast is emulated and runs many times slower than fp32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: play safe
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Transformer compute dtype. ``auto``: bf16 autocast on CUDA and on CPUs with native bf16, else fp32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


class FluxMusicPipeline:
    """Text-to-music generation with a MusicFlux transformer, an audio VAE, a vocoder and text encoders.

    Build with :meth:`from_pretrained` or from components (every component is a settable attribute).

    Args:
        transformer: The velocity network.
        vae: Mel VAE (its latent is what the transformer denoises).
        vocoder: Log-mel -> waveform.
        text_encoder: Prompts -> ``TextEmbedding`` (its widths must match the transformer's inputs).
        spec: Durations and defaults.
        device: Where to run.
        dtype: Transformer compute dtype (autocast); fp32 runs without autocast.
        release_text_encoder: Free the text encoder's weights after each encoding (saves memory
            with T5-XXL; it reloads on the next call when it came from files).
    """

    def __init__(
        self,
        transformer: MusicFlux,
        vae: AudioVAE,
        vocoder: Vocoder,
        text_encoder: TextConditioner,
        spec: PipelineSpec | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = "float32",
        release_text_encoder: bool = False,
        text_encoder_entry: dict | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.transformer = transformer.to(self.device).eval()
        self.vae = vae.to(self.device).eval()
        self.vocoder = vocoder.to(self.device) if isinstance(vocoder, torch.nn.Module) else vocoder
        self.text_encoder = text_encoder
        self.spec = spec or PipelineSpec()
        self.release_text_encoder = release_text_encoder
        self.text_encoder_entry = text_encoder_entry
        cfg = transformer.config
        if (text_encoder.txt_dim, text_encoder.pooled_dim) != (cfg.context_in_dim, cfg.vec_in_dim):
            raise ValueError(
                f"text encoder gives widths ({text_encoder.txt_dim}, {text_encoder.pooled_dim}) but the "
                f"transformer expects ({cfg.context_in_dim}, {cfg.vec_in_dim})"
            )
        if cfg.in_channels != cfg.patch_size**2 * vae.latent_channels:
            raise ValueError(
                f"transformer takes {cfg.in_channels} features per token, VAE gives "
                f"{cfg.patch_size}^2 x {vae.latent_channels}"
            )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = "auto",
        text_mode: str = "training",
        release_text_encoder: bool | None = None,
    ) -> FluxMusicPipeline:
        """Load a pipeline by name or folder.

        Args:
            name_or_path: ``None`` or ``"bundled"`` for the small model shipped in the package; a
                released size (``small``, ``base``, ``large``, ``giant``, ``giant-full``), resolved through
                the Hugging Face cache; or a model folder (see ``fluxmusic.components``).
            device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
            dtype: Transformer compute dtype: ``auto`` (bf16 on CUDA and on CPUs with native bf16, else
                fp32), ``float32``, ``bfloat16``, ``float16``.
            text_mode: ``training`` (matches how FluxMusic was trained) or ``reference-sampling`` (how
                its sampling script encodes prompts); T5 + CLAP only.
            release_text_encoder: Free text-encoder weights after encoding (default: on for released sizes).

        Raises:
            fluxmusic.components.ComponentsUnavailableError: files missing (offline); one line naming each.
            ValueError: unknown name or a malformed model folder.
        """
        dev = resolve_device(device)
        name = BUNDLED_NAME if name_or_path is None else str(name_or_path)
        if name in RELEASED:
            parts: Components = load_released(name, dev, text_mode=text_mode)
            release = True if release_text_encoder is None else release_text_encoder
        elif name == BUNDLED_NAME or Path(name).is_dir():
            folder = bundled_model_dir() if name == BUNDLED_NAME else Path(name)
            if name == BUNDLED_NAME and not folder.is_dir():
                raise FileNotFoundError(
                    f"this installation has no bundled model ({folder}); pass --model with a released "
                    "size or a model folder"
                )
            parts = load_model_dir(folder, dev, require_hashes=name == BUNDLED_NAME)
            release = bool(release_text_encoder)
        else:
            raise ValueError(
                f"unknown model {name!r}: not a folder, and not one of {BUNDLED_NAME}, {', '.join(RELEASED)}"
            )
        return cls(
            parts.transformer,
            parts.vae,
            parts.vocoder,
            parts.text_encoder,
            parts.spec,
            device=dev,
            dtype=dtype,
            release_text_encoder=release,
            text_encoder_entry=parts.text_encoder_entry,
        )

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write this pipeline as a model folder that :meth:`from_pretrained` loads."""
        parts = Components(
            self.transformer, self.vae, self.vocoder, self.text_encoder, self.spec, self.text_encoder_entry
        )
        return save_model_dir(parts, out_dir)

    def load_lora(self, path: str | Path, weight_name: str = "adapter_model.safetensors") -> None:
        """Add a LoRA adapter (``adapter_config.json`` + safetensors weights) to the transformer.

        ``path`` is what ``fluxmusic train`` with ``lora.enabled`` exports (``RUN_DIR/export``), or one of
        its checkpoints (``weight_name="adapter_ema.safetensors"`` for the EMA adapter). Needs ``peft``.

        Raises:
            FileNotFoundError: not an adapter folder.
            ValueError: an adapter is already loaded, or this one does not fit the transformer.
        """
        from fluxmusic.training.lora import load_lora

        load_lora(self.transformer, path, weight_name)
        self.transformer.to(self.device).eval()

    def unload_lora(self) -> None:
        """Remove the LoRA adapter: the original linears are put back; outputs equal the base model's."""
        from fluxmusic.training.lora import remove_lora

        remove_lora(self.transformer)

    # -- stage helpers -------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Output sample rate (Hz)."""
        return int(self.vocoder.sample_rate)

    def latent_frames(self, duration: float) -> int:
        """Log-mel frames generated for ``duration`` seconds: rounded up to what packing needs."""
        multiple = self.transformer.config.patch_size * self.vae.downsample
        frames = math.ceil(duration * self.sample_rate / 160)
        return multiple * math.ceil(frames / multiple)

    def _check(
        self,
        prompts: list[str],
        duration: float,
        steps: int,
        guidance: float,
        sampler: str,
        num_per_prompt: int,
    ) -> None:
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("give at least one non-empty prompt")
        if not (math.isfinite(duration) and 0 < duration <= self.spec.max_duration):
            raise ValueError(
                f"duration must be in (0, {self.spec.max_duration}] seconds for this model, got {duration}"
            )
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not math.isfinite(guidance):
            raise ValueError(f"guidance must be a finite number, got {guidance}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if num_per_prompt < 1:
            raise ValueError(f"num_per_prompt must be >= 1, got {num_per_prompt}")

    def tempo_rows(
        self, prompts: list[str], bpm: float | Sequence[float | None] | None, num_per_prompt: int
    ) -> Tensor | None:
        """The (bpm, phase 0) row of every clip for a model with a tempo input, else ``None``.

        ``prompts`` is already repeated ``num_per_prompt`` times; ``bpm`` is one value, one per
        original prompt, or ``None`` (read each prompt).

        Shapes:
            -> (B, 2), bpm 0 for clips without a tempo.
        """
        if not self.transformer.config.has_tempo_input:
            if bpm is not None:
                raise ValueError("this model has no tempo input; ask for the tempo in the prompt instead")
            return None
        if bpm is None or isinstance(bpm, numbers.Real):
            given = [bpm] * len(prompts)
        else:
            listed = list(bpm)
            if len(listed) * num_per_prompt != len(prompts):
                raise ValueError(
                    f"got {len(listed)} bpm values for {len(prompts) // num_per_prompt} prompts; "
                    "give one, or one per prompt"
                )
            given = [b for b in listed for _ in range(num_per_prompt)]
        rows = []
        for prompt, value in zip(prompts, given, strict=True):
            if value is not None and not (MIN_BPM <= float(value) <= MAX_BPM):
                raise ValueError(f"bpm must be between {MIN_BPM:g} and {MAX_BPM:g}, got {value}")
            chosen = prompt_bpm(prompt) if value is None else float(value)
            rows.append((chosen or 0.0, 0.0))
        return torch.tensor(rows, dtype=torch.float32, device=self.device)

    def encode_prompts(self, prompts: list[str], negative: list[str]) -> TextEmbedding:
        """Conditional rows then unconditional rows, each unique prompt encoded once.

        Shapes:
            B prompts and B negatives -> TextEmbedding of 2B rows.
        """
        unique = list(dict.fromkeys(prompts + negative))
        with torch.inference_mode():
            table = self.text_encoder.encode(unique)
        if self.release_text_encoder:
            self.text_encoder.release()
        rows = [unique.index(p) for p in prompts + negative]
        return table[rows].to(self.device, torch.float32)

    def initial_noise(
        self, batch: int, frames: int, seeds: list[int] | None, generator: torch.Generator | None
    ) -> Tensor:
        """Starting noise drawn on the CPU, one seed per row (or all rows from ``generator``).

        Shapes:
            -> (B, C, frames / downsample, 64 / downsample).
        """
        shape = (self.vae.latent_channels, frames // self.vae.downsample, N_MELS // self.vae.downsample)
        if seeds is not None:
            rows = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
            return torch.stack(rows).to(self.device)
        return torch.randn((batch, *shape), generator=generator).to(self.device)

    def decode(self, latent: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
        """Latents -> (waveforms (B, num_samples), log-mels (B, T, 64))."""
        with torch.inference_mode():
            mel = self.vae.decode(latent.float())
            waveform = self.vocoder(mel, num_samples=num_samples)
        return waveform.float().cpu().clamp(-1, 1), mel.squeeze(1).float().cpu()

    # -- the call ------------------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        duration: float | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
        guidance_eta: float | None = None,
        sampler: str | None = None,
        shift: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_per_prompt: int = 1,
        progress: bool = True,
        bpm: float | Sequence[float | None] | None = None,
    ) -> AudioOutput:
        """Generate ``num_per_prompt`` clips per prompt.

        Args:
            prompt: One prompt or a list.
            negative_prompt: The unconditional branch (one for all, or one per prompt); default the
                model's (empty for models trained with caption dropout).
            duration: Seconds (default: the model's training length).
            steps: Sampler steps (default 50).
            guidance: Classifier-free guidance scale (default 7.0; 1.0 disables the negative branch's pull).
            guidance_interval: ``(lo, hi)``: guide only at times ``lo <= t <= hi`` (t = 1 is noise) and
                use the conditional velocity alone elsewhere, at half the cost per step (default: the
                model's, else guidance at every step).
            guidance_eta: Weight of the guidance update's part along the conditional denoised
                estimate (projected guidance, :func:`fluxmusic.flow.classifier_free_guidance`): 1.0 is
                plain guidance, 0.0 pushes only the content (default: the model's, else 1.0).
            sampler: ``euler``, ``heun`` or ``midpoint``.
            shift: Time-grid shift (1.0 = uniform, the reference's; default: the model's, else 1.0).
            seed: Row i uses seed ``seed + i``, so any single clip can be regenerated alone.
            generator: Alternatively, one generator for all noise (seeds are then not reported).
            num_per_prompt: Clips per prompt.
            progress: Show a progress bar.
            bpm: For models with a tempo input (``transformer.config.tempo_frame_seconds > 0``, e.g. the
                bundled model): the tempo of every clip, or one per prompt (``None`` entries: read from
                that prompt). Default: read from each prompt ("132 BPM", else a tempo word such as
                "slow", :func:`fluxmusic.text.tempo.prompt_bpm`); a prompt naming no tempo gets none.
        """
        d = self.spec.defaults
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        duration = self.spec.default_duration if duration is None else float(duration)
        steps = int(d.get("steps", 50) if steps is None else steps)
        guidance = float(d.get("guidance", 7.0) if guidance is None else guidance)
        sampler = d.get("sampler", "euler") if sampler is None else sampler
        interval = check_interval(
            d.get("guidance_interval") if guidance_interval is None else guidance_interval
        )
        eta = check_eta(d.get("guidance_eta", 1.0) if guidance_eta is None else guidance_eta)
        shift = float(d.get("shift", 1.0) if shift is None else shift)
        if not (math.isfinite(shift) and shift > 0):
            raise ValueError(f"shift must be a positive number (1.0 = uniform), got {shift}")
        self._check(prompts, duration, steps, guidance, sampler, num_per_prompt)  # 1. check
        prompts = [p for p in prompts for _ in range(num_per_prompt)]
        negative_prompt = d.get("negative_prompt", "") if negative_prompt is None else negative_prompt
        negatives = (
            [negative_prompt] * len(prompts)
            if isinstance(negative_prompt, str)
            else [n for n in negative_prompt for _ in range(num_per_prompt)]
        )
        if len(negatives) != len(prompts):
            raise ValueError(
                f"got {len(negatives) // num_per_prompt} negative prompts for "
                f"{len(prompts) // num_per_prompt} prompts; give one, or one per prompt"
            )

        tempo = self.tempo_rows(prompts, bpm, num_per_prompt)
        emb = self.encode_prompts(prompts, negatives)  # 2. text
        batch, frames = len(prompts), self.latent_frames(duration)
        if generator is None and seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        seeds = None if generator is not None else [seed + i for i in range(batch)]
        noise = self.initial_noise(batch, frames, seeds, generator)  # 3. noise
        t_lat, f_lat = noise.shape[-2:]
        patch = self.transformer.config.patch_size

        ids = image_ids(2 * batch, t_lat, f_lat, self.device, patch=patch)  # 4. flow with batched guidance
        tids = text_ids(2 * batch, emb.txt.shape[1], self.device)
        both = None if tempo is None else torch.cat((tempo, torch.zeros_like(tempo)))  # no tempo uncond
        velocity = self.transformer.bind(ids, emb.txt, tids, emb.y, tempo=both)
        conditional = (  # the unguided steps of an interval run the conditional rows alone
            None
            if interval is None
            else self.transformer.bind(ids[:batch], emb.txt[:batch], tids[:batch], emb.y[:batch], tempo=tempo)
        )
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        with torch.inference_mode(), autocast:
            tokens = sample(
                classifier_free_guidance(velocity, guidance, interval, conditional, eta),
                pack(noise, patch),
                steps=steps,
                method=sampler,
                shift=shift,
                progress=progress,
            )
        latent = unpack(tokens.float(), t_lat, f_lat, patch)
        waveforms, mels = self.decode(latent, round(duration * self.sample_rate))  # 5. audio
        tempi = None if tempo is None else [float(b) or None for b in tempo[:, 0].tolist()]
        return AudioOutput(waveforms, self.sample_rate, prompts, seeds, mels, tempi)
