"""What generation returns and how it is written: ``AudioOutput``, sidecars, spectrograms (all atomic).

Each clip's JSON sidecar is its ``SampleSettings`` narrowed to that clip (its own seed, tempo and
negative prompt) plus how it was run, so ``SampleSettings.from_dict(sidecar)`` regenerates it alone. It
also names the ``operation`` (``text-to-music``, or an edit's: then its ``input`` file name and sha256
and its ``edit`` parameters, from ``AudioOutput.edit``).
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from fluxmusic.audio import write_audio
from fluxmusic.files import atomic_write, atomic_write_text
from fluxmusic.pipeline.edit_inputs import EditSettings
from fluxmusic.sampling import SampleSettings
from fluxmusic.version import __version__


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
        settings: The resolved settings of the request (what the sidecars record).
        negative_prompts: The unconditional prompt of each row.
        edit: What an edit did (operation, input file, parameters); None for text-to-music.

    Shapes:
        waveforms: (B, S); mels: (B, T, 64).
    """

    waveforms: Tensor
    sample_rate: int
    prompts: list[str]
    seeds: list[int] | None
    mels: Tensor
    bpm: list[float | None] | None = None
    settings: SampleSettings | None = None
    negative_prompts: list[str] | None = None
    edit: EditSettings | None = None

    def clip_settings(self, i: int) -> dict[str, Any]:
        """Row ``i``'s settings as a JSON-ready dict: its own prompt, seed, tempo and negative prompt."""
        out: dict[str, Any] = {"prompt": self.prompts[i]}
        if self.settings is not None:
            out.update(self.settings.to_dict())
        out["seed"] = self.seeds[i] if self.seeds is not None else None
        if self.negative_prompts is not None:
            out["negative_prompt"] = self.negative_prompts[i]
        if self.bpm is not None:
            out["bpm"] = self.bpm[i]
        else:
            out.pop("bpm", None)
        return out

    def sidecar(self, i: int, run: Mapping[str, Any]) -> dict[str, Any]:
        """Row ``i``'s sidecar: its settings, the operation (and input) that made it, how it ran (``run``:
        model, device, dtype, text mode), its rate and length, and the package version."""
        record = self.edit.to_dict() if self.edit is not None else {"operation": "text-to-music"}
        return {
            **self.clip_settings(i),
            **record,
            **run,
            "sample_rate": self.sample_rate,
            "num_samples": int(self.waveforms.shape[1]),
            "fluxmusic_version": __version__,
        }


def save_spectrogram(mel: Tensor, path: str | Path, title: str = "") -> Path:
    """A PNG of a log-mel spectrogram (time on x, mel bands on y).

    Shapes:
        mel: (T, 64).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.imshow(
        mel.T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, mel.shape[0] / 100, 0, 64)
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel band")
    ax.set_title(title[:100], fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return Path(path)


def write_clip(path: Path, waveform: Tensor, sample_rate: int) -> Path:
    """Write one clip atomically in the format its suffix names.

    Shapes:
        waveform: (S,)
    """
    import soundfile

    fmt = path.suffix.lower().lstrip(".")

    def write(tmp: str) -> None:
        try:
            write_audio(tmp, waveform, sample_rate, format=fmt)
        except soundfile.LibsndfileError as err:  # libsndfile reports a full disk as a "System error."
            full = shutil.disk_usage(path.parent).free < 4 * waveform.numel() + 2**16
            reason = (errno.ENOSPC, "No space left on device") if full else (errno.EIO, str(err))
            raise OSError(*reason) from None

    return atomic_write(path, write)


def save_outputs(
    output: AudioOutput,
    paths: list[Path],
    run: Mapping[str, Any],
    spectrogram: bool = False,
) -> list[Path]:
    """Write each clip, a ``.json`` sidecar with everything needed to regenerate it, and optionally a PNG.

    Args:
        output: What the pipeline returned (its ``settings`` fill the sidecars).
        paths: One audio path per row.
        run: How it ran, recorded beside the settings (model, device, dtype, text mode).
        spectrogram: Also write a PNG of each log-mel.

    Returns:
        The audio files written.
    """
    written = []
    for i, path in enumerate(paths):
        write_clip(path, output.waveforms[i], output.sample_rate)
        atomic_write_text(path.with_suffix(".json"), json.dumps(output.sidecar(i, run), indent=2) + "\n")
        if spectrogram:
            save_spectrogram(output.mels[i], path.with_suffix(".png"), output.prompts[i])
        written.append(path)
    return written
