"""Stages 1-2 of every request, shared by text-to-music and the edits: rows, seeds, tempo, prompts.

:func:`prepare` checks a request and encodes its prompts once; the :class:`Request` it returns draws
the noise of each window and builds the ``AudioOutput``. ``Stages`` is what the edits need of a
``FluxMusicPipeline`` (they take one as their first argument; this module never imports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from fluxmusic.flow import StepCallback
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.pipeline.edit_inputs import EditSettings
from fluxmusic.pipeline.outputs import AudioOutput
from fluxmusic.pipeline.request import per_row, repeat_prompts, with_seed
from fluxmusic.sampling import MAX_SEED, SampleSettings, SettingsError
from fluxmusic.seeding import derive_seed
from fluxmusic.text.base import TextEmbedding

__all__ = ["Request", "Stages", "prepare"]


class Stages(Protocol):
    """The stages of ``FluxMusicPipeline`` that editing and long form call."""

    spec: PipelineSpec
    device: torch.device
    vae: Any
    transformer: Any

    @property
    def sample_rate(self) -> int: ...
    def latent_frames(self, duration: float) -> int: ...
    def settings(self, *, max_duration: float | None = None, **given: object) -> SampleSettings: ...
    def tempo_rows(self, prompts: list[str], bpm: Any, num_per_prompt: int) -> Tensor | None: ...
    def encode_prompts(self, prompts: list[str], negative: list[str]) -> TextEmbedding: ...
    def initial_noise(
        self, batch: int, frames: int, seeds: list[int] | None, generator: torch.Generator | None
    ) -> Tensor: ...
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
    ) -> Tensor: ...
    def decode(self, latent: Tensor, num_samples: int) -> tuple[Tensor, Tensor]: ...


@dataclass
class Request:
    """A checked request: one row per clip.

    Attributes:
        prompts: Each row's prompt (repeated ``num_per_prompt`` times).
        negatives: Each row's unconditional prompt.
        tempo: Each row's (bpm, phase 0) for models with a tempo input, else None.
        settings: The resolved settings, with a seed unless a generator is used.
        seeds: Row i's seed (``settings.seed + i``), None with a generator.
        generator: The one generator of all noise, when given instead of seeds.
        emb: Conditional rows then unconditional rows.

    Shapes:
        tempo: (B, 2); emb: 2B rows.
    """

    prompts: list[str]
    negatives: list[str]
    tempo: Tensor | None
    settings: SampleSettings
    seeds: list[int] | None
    generator: torch.Generator | None
    emb: TextEmbedding

    @property
    def batch(self) -> int:
        """Rows of the request."""
        return len(self.prompts)

    def noise(self, pipe: Stages, frames: int, window: int = 0) -> Tensor:
        """The starting noise of window ``window``: window 0 is text-to-music's (row i from seed
        ``seed + i``); later windows draw from seeds derived from the row's seed and the window index,
        so each window of each row is reproducible alone (or from the generator, in order).

        Shapes:
            -> (B, C, frames / downsample, 64 / downsample).
        """
        seeds = self.seeds
        if window and seeds is not None:
            seeds = [derive_seed(seed, "window", window) for seed in seeds]
        return pipe.initial_noise(self.batch, frames, seeds, self.generator)

    def tempo_at(self, seconds: float) -> Tensor | None:
        """The tempo rows for a window starting ``seconds`` into the piece: the beat phase continues.

        Shapes:
            -> (B, 2) rows of (bpm, phase in beats).
        """
        if self.tempo is None or seconds == 0:
            return self.tempo
        bpm = self.tempo[:, 0]
        return torch.stack((bpm, bpm * (seconds / 60.0)), dim=1)

    def output(
        self, waveforms: Tensor, mels: Tensor, sample_rate: int, edit: EditSettings | None = None
    ) -> AudioOutput:
        """The ``AudioOutput`` of this request."""
        tempi = None if self.tempo is None else [float(b) or None for b in self.tempo[:, 0].tolist()]
        return AudioOutput(
            waveforms, sample_rate, self.prompts, self.seeds, mels, tempi, self.settings, self.negatives, edit
        )


def prepare(
    pipe: Stages,
    prompt: str | Sequence[str],
    settings: SampleSettings,
    num_per_prompt: int = 1,
    generator: torch.Generator | None = None,
) -> Request:
    """Check a request (1) and encode its prompts (2).

    Raises:
        TypeError, ValueError: bad prompts, counts, negative prompts, tempi or seeds, naming the argument.
    """
    prompts = repeat_prompts(prompt, num_per_prompt)
    negatives = per_row("negative prompts", settings.negative_prompt, len(prompts), num_per_prompt)
    tempo = pipe.tempo_rows(prompts, settings.bpm, num_per_prompt)
    batch = len(prompts)
    if generator is None:
        settings = with_seed(settings)
    if settings.seed is not None and settings.seed + batch - 1 > MAX_SEED:
        limit = MAX_SEED - batch + 1
        raise SettingsError("seed", f"must be at most {limit} for {batch} clips, got {settings.seed}")
    emb = pipe.encode_prompts(prompts, negatives)
    seeds = None if generator is not None else [settings.seed + i for i in range(batch)]
    return Request(prompts, negatives, tempo, settings, seeds, generator, emb)
