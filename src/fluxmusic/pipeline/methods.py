"""The editing and long-form methods of ``FluxMusicPipeline`` (a mixin; the work is in
:mod:`.editing` and :mod:`.long_form`, whose functions take resolved ``SampleSettings``).

Every method takes the sampling settings by keyword (``steps=``, ``guidance=``, ``seed=``, ``sampler=``,
``shift=``, ``negative_prompt=``, ``bpm=``, ``guidance_interval=``, ``guidance_eta=``), resolved against
the model's defaults as ``pipe(...)`` does, and returns an ``AudioOutput`` whose ``edit`` records the
operation, the input file (name, sha256) and the parameters. See docs/editing.md.
"""

from __future__ import annotations

from typing import Any

import torch

from fluxmusic.errors import InputError
from fluxmusic.pipeline import editing
from fluxmusic.pipeline import long_form as windowed
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS, LONG_FORM_MAX_SECONDS, MASK_EDGE_FRAMES, EditRun
from fluxmusic.pipeline.editing import AudioLike
from fluxmusic.pipeline.outputs import AudioOutput
from fluxmusic.sampling import SampleSettings

__all__ = ["EditingMethods"]


class EditingMethods:
    """Variation, inpainting, continuation and long form, as methods of ``FluxMusicPipeline``."""

    def _edit_settings(
        self, given: dict[str, Any], generator: torch.Generator | None, duration: bool = False
    ) -> SampleSettings:
        if given.get("seed") is not None and generator is not None:
            raise InputError("give seed or generator, not both")
        if not duration and given.get("duration") is not None:
            raise InputError("the output has the input's length; trim the input instead of giving duration")
        return self.settings(max_duration=LONG_FORM_MAX_SECONDS, **given)

    def variation(
        self,
        audio: AudioLike,
        prompt: str | list[str],
        strength: float = 0.5,
        *,
        num_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        progress: bool = True,
        **settings: Any,
    ) -> AudioOutput:
        """A variation of ``audio`` towards ``prompt``: its latent noised to ``strength``, then denoised.

        ``strength`` in (0, 1]: small keeps the input's structure and timbre, 1 is text-to-music (bit for
        bit the same clip as ``pipe(prompt, duration=<input length>, seed=...)``). The output is as long
        as the input (at most the model's ``max_duration``).

        Example:
            >>> out = pipe.variation("sketch.wav", "a bright fiddle reel", strength=0.6, seed=3)

        Raises:
            InputError: strength outside (0, 1]; unreadable, silent or too long audio; bad settings.
        """
        resolved = self._edit_settings(settings, generator)
        return editing.vary(
            self, audio, prompt, resolved, strength, EditRun(num_per_prompt, generator, progress)
        )

    def inpaint(
        self,
        audio: AudioLike,
        prompt: str | list[str],
        regions: list[tuple[float, float]] | list[str],
        *,
        num_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        progress: bool = True,
        crossfade: float = CROSSFADE_SECONDS,
        mask_edge: int = MASK_EDGE_FRAMES,
        **settings: Any,
    ) -> AudioOutput:
        """Regenerate the time ``regions`` of ``audio`` from ``prompt`` and keep the rest sample for sample.

        ``regions``: (start, end) seconds or ``"START:END"`` strings, inside the audio, not overlapping.
        Outside the regions (and their ``crossfade``-second joins) the output is the input's own samples.

        Example:
            >>> out = pipe.inpaint("take.wav", "a calm piano piece", [(2.0, 3.5)], seed=1)

        Raises:
            InputError: regions empty, overlapping or outside the audio; unreadable or silent audio.
        """
        resolved = self._edit_settings(settings, generator)
        return editing.inpaint(
            self,
            audio,
            prompt,
            resolved,
            regions,
            EditRun(num_per_prompt, generator, progress, crossfade, mask_edge),
        )

    def continuation(
        self,
        audio: AudioLike,
        prompt: str | list[str],
        duration: float,
        *,
        overlap: float | None = None,
        num_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        progress: bool = True,
        crossfade: float = CROSSFADE_SECONDS,
        mask_edge: int = MASK_EDGE_FRAMES,
        **settings: Any,
    ) -> AudioOutput:
        """``audio`` followed by new music that continues it: ``duration`` seconds in all, input included.

        The input's samples are kept (up to a ``crossfade`` at its end); beyond the trained window the
        new part is made window by window with ``overlap`` seconds of context (default: half a window).

        Example:
            >>> out = pipe.continuation("intro.wav", "a slow organ chorale", duration=20.0, seed=7)

        Raises:
            InputError: ``duration`` not longer than the input or above the maximum; unreadable audio.
        """
        resolved = self._edit_settings({**settings, "duration": duration}, generator, duration=True)
        return windowed.continuation(
            self,
            audio,
            prompt,
            resolved,
            overlap,
            EditRun(num_per_prompt, generator, progress, crossfade, mask_edge),
        )

    def long_form(
        self,
        prompt: str | list[str],
        duration: float,
        *,
        overlap: float | None = None,
        num_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        progress: bool = True,
        crossfade: float = CROSSFADE_SECONDS,
        mask_edge: int = MASK_EDGE_FRAMES,
        **settings: Any,
    ) -> AudioOutput:
        """A piece of any ``duration`` up to ``LONG_FORM_MAX_SECONDS`` (600 s), window by window.

        Within the model's trained window this is ``pipe(prompt, duration=...)``; above it each window
        continues the last ``overlap`` seconds (default: half a window) and the cost is linear.

        Example:
            >>> out = pipe.long_form("a fast fiddle reel", duration=61.44, seed=2)

        Raises:
            InputError: a duration above the maximum, an overlap not shorter than the window.
        """
        resolved = self._edit_settings({**settings, "duration": duration}, generator, duration=True)
        return windowed.long_form(
            self,
            prompt,
            resolved,
            overlap,
            EditRun(num_per_prompt, generator, progress, crossfade, mask_edge),
        )
