"""FluxMusicPipeline: prompts -> audio, in numbered stages.

1. resolve and check the request (:class:`fluxmusic.sampling.SampleSettings`);  2. encode prompts
(conditional and unconditional);  3. draw the starting noise on the CPU from per-item seeds;
4. integrate the flow with batched classifier-free guidance (:meth:`FluxMusicPipeline.denoise`, which
editing calls with a start time and a per-step callback);  5. decode latents -> log-mel (VAE) ->
waveform (vocoder) and trim to the requested duration. Editing and long form (``pipe.variation``,
``pipe.inpaint``, ``pipe.continuation``, ``pipe.long_form``) come from :mod:`.methods`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from fluxmusic.audio import AudioVAE, Vocoder
from fluxmusic.devices import resolve_device, resolve_dtype
from fluxmusic.errors import InputError
from fluxmusic.flow import StepCallback, classifier_free_guidance, sample
from fluxmusic.flow.cache import StepCache
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids, unpack
from fluxmusic.modelfolder.find import load_components
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.modelfolder.load import Components, save_model_dir
from fluxmusic.pipeline.methods import EditingMethods
from fluxmusic.pipeline.outputs import AudioOutput
from fluxmusic.pipeline.prepare import prepare
from fluxmusic.pipeline.request import tempo_rows
from fluxmusic.sampling import SETTING_FIELDS, SampleSettings
from fluxmusic.text.base import TextConditioner, TextEmbedding
from fluxmusic.text.cache import EmbeddingMemo

logger = logging.getLogger(__name__)

N_MELS = 64


class FluxMusicPipeline(EditingMethods):
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
        self.text_memo = EmbeddingMemo()
        cfg = transformer.config
        if (text_encoder.txt_dim, text_encoder.pooled_dim) != (cfg.context_in_dim, cfg.vec_in_dim):
            raise InputError(
                f"text encoder gives widths ({text_encoder.txt_dim}, {text_encoder.pooled_dim}) but the "
                f"transformer expects ({cfg.context_in_dim}, {cfg.vec_in_dim})"
            )
        if cfg.in_channels != cfg.patch_size**2 * vae.latent_channels:
            raise InputError(
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
        lean: bool = True,
    ) -> FluxMusicPipeline:
        """Load a pipeline by name or folder.

        Args:
            name_or_path: ``None`` or ``"bundled"`` for the small model shipped in the package; a
                released size (``small``, ``base``, ``large``, ``giant``, ``giant-full``), resolved through
                the Hugging Face cache; or a model folder (see ``fluxmusic.modelfolder``).
            device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
            dtype: Transformer compute dtype: ``auto`` (bf16 on CUDA and on CPUs with native bf16, else
                fp32), ``float32``, ``bfloat16``, ``float16``.
            text_mode: ``training`` (matches how FluxMusic was trained) or ``reference-sampling`` (how
                its sampling script encodes prompts); T5 + CLAP only.
            release_text_encoder: Free text-encoder weights after encoding (default: on for released sizes).
            lean: Released sizes: stream T5-XXL's blocks from disk on a CPU (bit-identical, about 9 GB
                less memory) and decode with the VAE and vocoder in bf16 where bf16 is native (within 2%
                of fp32); ``False`` keeps every stage resident in its own precision. Model folders: no effect.

        Raises:
            fluxmusic.hub.WeightsNotFoundError: files missing (offline); one line naming each.
            ValueError: unknown name or a malformed model folder.
        """
        dev = resolve_device(device)
        parts, released = load_components(name_or_path, dev, text_mode=text_mode, lean=lean)
        release = released if release_text_encoder is None else release_text_encoder
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
        from fluxmusic.model.lora import load_lora

        load_lora(self.transformer, path, weight_name)
        self.transformer.to(self.device).eval()

    def unload_lora(self) -> None:
        """Remove the LoRA adapter: the original linears are put back; outputs equal the base model's."""
        from fluxmusic.model.lora import remove_lora

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

    def tempo_rows(
        self, prompts: list[str], bpm: float | tuple[float | None, ...] | None, num_per_prompt: int
    ) -> Tensor | None:
        """Each row's (bpm, phase) for a model with a tempo input, else ``None`` (see ``request.tempo_rows``).

        Shapes:
            -> (B, 2).
        """
        return tempo_rows(self.transformer.config.has_tempo_input, prompts, bpm, num_per_prompt, self.device)

    def encode_prompts(self, prompts: list[str], negative: list[str]) -> TextEmbedding:
        """Conditional rows then unconditional rows; each prompt encoded alone, once per warm process
        while it stays among the last 16 (``self.text_memo``).

        Shapes:
            B prompts and B negatives -> TextEmbedding of 2B rows.
        """
        unique = list(dict.fromkeys(prompts + negative))
        with torch.inference_mode():
            table = self.text_memo.encode(self.text_encoder, unique)
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

    def settings(
        self, *, max_duration: float | None = None, quality: str | None = None, **given: object
    ) -> SampleSettings:
        """Resolve sampling settings: ``given`` (``None`` = not given) over the ``quality`` preset (``draft``,
        ``balanced``, ``best``; ``None``: none) and this model's defaults.

        ``max_duration`` defaults to the model's limit for one window (long form passes its own).

        Raises:
            TypeError, ValueError: a bad value, naming the argument.
        """
        spec, limit = self.spec, self.spec.max_duration if max_duration is None else max_duration
        return SampleSettings.resolve(
            spec.defaults,
            default_duration=spec.default_duration,
            max_duration=limit,
            quality=quality,
            **given,
        )

    def denoise(
        self,
        noise: Tensor,
        emb: TextEmbedding,
        tempo: Tensor | None,
        settings: SampleSettings,
        *,
        progress: bool = True,
        t_start: float = 1.0,
        callback: StepCallback | None = None,
        caches: tuple[StepCache, StepCache] | None = None,
    ) -> Tensor:
        """Integrate the flow with batched guidance from ``t_start`` to 0 (stage 4).

        With ``settings.cache_threshold > 0`` the transformer caches steps (``fluxmusic.flow.cache``): one
        fresh ``StepCache`` for the guided batch and one for the conditional rows of a guidance interval,
        or the two given in ``caches`` (to read their counters afterwards).

        Args:
            noise: The state at ``t_start`` (the starting noise, or a noised input for editing).
            emb: Conditional rows then unconditional rows (:meth:`encode_prompts`).
            tempo: Each conditional row's (bpm, phase) for models with a tempo input, else ``None``.
            settings: Steps, sampler, guidance and shift.
            progress: Show a progress bar.
            t_start: Start time (1 = pure noise).
            callback: Called after every step on the packed tokens (see ``fluxmusic.flow.sample``).
            caches: The (guided, conditional) step caches to use; default fresh ones when caching is on.

        Shapes:
            noise: (B, C, T', F') -> latent (B, C, T', F'); emb: 2B rows; tempo: (B, 2).
        """
        batch, (t_lat, f_lat) = noise.shape[0], noise.shape[-2:]
        patch = self.transformer.config.patch_size
        ids = image_ids(2 * batch, t_lat, f_lat, self.device, patch=patch)
        tids = text_ids(2 * batch, emb.txt.shape[1], self.device)
        both = None if tempo is None else torch.cat((tempo, torch.zeros_like(tempo)))  # no tempo uncond
        if caches is None and settings.cache_threshold > 0:
            caches = (StepCache(settings.cache_threshold), StepCache(settings.cache_threshold))
        guided_cache, cond_cache = (None, None) if caches is None else caches
        bind = self.transformer.bind
        velocity = bind(ids, emb.txt, tids, emb.y, tempo=both, cache=guided_cache)
        interval = settings.guidance_interval
        conditional = (  # the unguided steps of an interval run the conditional rows alone
            None
            if interval is None
            else bind(
                ids[:batch], emb.txt[:batch], tids[:batch], emb.y[:batch], tempo=tempo, cache=cond_cache
            )
        )
        guided = classifier_free_guidance(
            velocity, settings.guidance, interval, conditional, settings.guidance_eta
        )
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        with torch.inference_mode(), autocast:
            tokens = sample(
                guided,
                pack(noise, patch),
                steps=settings.steps,
                method=settings.sampler,
                shift=settings.shift,
                progress=progress,
                t_start=t_start,
                callback=callback,
            )
        return unpack(tokens.float(), t_lat, f_lat, patch)

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
        quality: str | None = None,
        cache_threshold: float | None = None,
    ) -> AudioOutput:
        """Generate ``num_per_prompt`` clips per prompt.

        Every setting left ``None`` takes the ``quality`` preset's value, else the model's default
        (``fluxmusic.json``), else the fallback of :data:`fluxmusic.sampling.FALLBACKS`; the resolved
        values come back in ``out.settings``.

        Args:
            prompt: One prompt or a list.
            negative_prompt: The unconditional branch (one for all, or one per prompt); default the
                model's (empty for models trained with caption dropout).
            duration: Seconds (default: the model's training length).
            steps: Sampler steps (fallback 50).
            guidance: Classifier-free guidance scale (fallback 7.0; 1.0 disables the negative branch's pull).
            guidance_interval: ``(lo, hi)``: guide only at times ``lo <= t <= hi`` (t = 1 is noise) and
                use the conditional velocity alone elsewhere, at half the cost per step (fallback: guidance
                at every step).
            guidance_eta: Weight of the guidance update's part along the conditional denoised
                estimate (projected guidance, :func:`fluxmusic.flow.classifier_free_guidance`): 1.0 is
                plain guidance, 0.0 pushes only the content (fallback 1.0).
            sampler: One of ``fluxmusic.flow.SAMPLERS`` (fallback ``euler``).
            shift: Time-grid shift (1.0 = uniform, the reference's; fallback 1.0).
            seed: Row i uses seed ``seed + i``, so any single clip can be regenerated alone.
            generator: Alternatively, one generator for all noise (seeds are then not reported).
            num_per_prompt: Clips per prompt.
            progress: Show a progress bar.
            bpm: For models with a tempo input (``transformer.config.has_tempo_input``, e.g. the bundled
                model): the tempo of every clip, or one per prompt (``None`` entries: read from that
                prompt). Default: read from each prompt ("132 BPM", else a tempo word such as "slow",
                :func:`fluxmusic.text.tempo.prompt_bpm`); a prompt naming no tempo gets none.
            quality: ``"draft"``, ``"balanced"``, ``"best"`` or ``"reference"`` (the reference's 50 Euler
                steps): the model's sampling preset (sampler, steps, shift, cache threshold;
                docs/performance.md); explicit arguments override it.
            cache_threshold: Step caching: reuse the transformer blocks' output on steps whose input changed
                by less than this (0 = off; fallback 0).

        Raises:
            TypeError, ValueError: a bad argument (the message names it).
        """
        if seed is not None and generator is not None:
            raise InputError("give seed or generator, not both")
        given = locals()  # the parameters named like SampleSettings fields, exactly
        settings = self.settings(quality=quality, **{name: given[name] for name in SETTING_FIELDS})
        return self.generate(prompt, settings, num_per_prompt, generator=generator, progress=progress)

    def generate(
        self,
        prompt: str | Sequence[str],
        settings: SampleSettings,
        num_per_prompt: int = 1,
        *,
        generator: torch.Generator | None = None,
        progress: bool = True,
    ) -> AudioOutput:
        """Text-to-music with resolved settings (what :meth:`__call__` runs after resolving them).

        Raises:
            TypeError, ValueError: bad prompts or counts, naming the argument.
        """
        req = prepare(self, prompt, settings, num_per_prompt, generator)  # 1. check, 2. text
        noise = req.noise(self, self.latent_frames(req.settings.duration))  # 3. noise
        latent = self.denoise(noise, req.emb, req.tempo, req.settings, progress=progress)  # 4. flow
        waveforms, mels = self.decode(latent, round(req.settings.duration * self.sample_rate))  # 5. audio
        return req.output(waveforms, mels, self.sample_rate)
