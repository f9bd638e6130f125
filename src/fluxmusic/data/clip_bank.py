"""In-memory clip banks (log-mels, or mel/audio pairs) for the component trainers and evaluation.

The demo dataset is small (a few thousand 5.12 s clips, a few hundred MB as float32), so every clip is
read once, given the training-clip rules (:func:`fluxmusic.audio.load_clip`: mean removed, peak 0.5,
fitted to ``clip_seconds``), turned into its log-mel (:func:`fluxmusic.audio.clip_log_mel`) and kept in
memory; batches are random crops drawn with a ``torch.Generator``.

Clips come from the reference-format manifest ``DATA/{split}.json`` (``[{"wav": ..., "label": ...}]``)
or, while a demo build is still running and has not written it yet, from its per-clip records
``DATA/records/*.json``. A run stores the list it used (``RUN/clips_{split}.json``) and reuses it on
resume, so a dataset that keeps growing does not change a resumed run.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from fluxmusic.audio import HOP_LENGTH, clip_log_mel, load_clip
from fluxmusic.data.manifest import read_manifest
from fluxmusic.errors import InputError
from fluxmusic.files import atomic_write_text

logger = logging.getLogger(__name__)


def list_clips(data_dir: str | os.PathLike[str], split: str) -> list[str]:
    """Audio paths of a split, relative to ``data_dir``, sorted.

    Raises:
        ValueError: No clips found for the split.
    """
    data_dir = Path(data_dir)
    manifest = data_dir / f"{split}.json"
    if manifest.is_file():
        paths = [item.wav for item in read_manifest(manifest)]
    else:
        paths = []
        for record_path in sorted((data_dir / "records").glob("*.json")):
            record = json.loads(record_path.read_text(encoding="utf-8-sig"))
            if record.get("split") == split and not record.get("rejected") and record.get("wav"):
                if (data_dir / record["wav"]).is_file():
                    paths.append(str(record["wav"]))
        logger.info("%s has no manifest yet; %d %s clips from records/", data_dir, len(paths), split)
    if not paths:
        raise InputError(f"no {split} clips in {data_dir} (neither {manifest.name} nor records/*.json)")
    return sorted(paths)


def snapshot_clips(
    run_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str], split: str, max_clips: int = 0
) -> list[str]:
    """The clip list of a run: read ``RUN/clips_{split}.json`` if present, else list and store it.

    Args:
        run_dir: The run folder.
        data_dir: Dataset root.
        split: ``"train"`` or ``"test"``.
        max_clips: Keep the first ``max_clips`` (0: all).
    """
    path = Path(run_dir) / f"clips_{split}.json"
    if path.is_file():
        return list(json.loads(path.read_text(encoding="utf-8-sig")))
    paths = list_clips(data_dir, split)
    if max_clips:
        paths = paths[:max_clips]
    atomic_write_text(path, json.dumps(paths, indent=0) + "\n")
    return paths


@dataclass
class ClipBank:
    """Fitted clips and their log-mels, in memory.

    Attributes:
        waveforms: 16 kHz training clips (mean removed, peak 0.5), or None when not kept.
        mels: Their log-mels, ``frames_for(clip_seconds)`` frames each.

    Shapes:
        waveforms: (N, S) with S = 160 * T
        mels: (N, T, 64)
    """

    waveforms: Tensor | None
    mels: Tensor

    @classmethod
    def load(
        cls,
        data_dir: str | os.PathLike[str],
        paths: list[str],
        clip_seconds: float,
        keep_waveforms: bool = True,
        chunk: int = 64,
    ) -> ClipBank:
        """Read ``paths`` (relative to ``data_dir``), skipping silent clips.

        Raises:
            ValueError: Every clip was silent.
        """
        waves = []
        for rel in paths:
            clip = load_clip(Path(data_dir) / rel, clip_seconds, offset=0.0)
            if clip.silent:
                logger.warning("skipping silent clip %s", rel)
                continue
            waves.append(clip.waveform)
        if not waves:
            raise InputError(f"all {len(paths)} clips are silent")
        waveforms = torch.stack(waves)
        mels = torch.cat([clip_log_mel(w, clip_seconds) for w in waveforms.split(chunk)])
        frames = mels.shape[1]
        waveforms = waveforms[:, : frames * HOP_LENGTH]
        logger.info("clip bank: %d clips x %d frames", len(waves), frames)
        return cls(waveforms if keep_waveforms else None, mels)

    def __len__(self) -> int:
        return self.mels.shape[0]

    @property
    def frames(self) -> int:
        """Frames per clip."""
        return self.mels.shape[1]

    def _draw(self, generator: torch.Generator, batch_size: int, crop_frames: int) -> tuple[Tensor, Tensor]:
        if not 0 < crop_frames <= self.frames:
            raise InputError(f"crop_frames must be in [1, {self.frames}], got {crop_frames}")
        index = torch.randint(0, len(self), (batch_size,), generator=generator)
        start = torch.randint(0, self.frames - crop_frames + 1, (batch_size,), generator=generator)
        return index, start

    def mel_crops(self, generator: torch.Generator, batch_size: int, crop_frames: int) -> Tensor:
        """Random log-mel crops (clip and start uniform), as the VAE takes them.

        Shapes:
            output: (B, 1, crop_frames, 64)
        """
        index, start = self._draw(generator, batch_size, crop_frames)
        crops = [self.mels[i, s : s + crop_frames] for i, s in zip(index.tolist(), start.tolist())]
        return torch.stack(crops)[:, None]

    def pair_crops(
        self, generator: torch.Generator, batch_size: int, crop_frames: int
    ) -> tuple[Tensor, Tensor]:
        """Random aligned (log-mel, audio) crops: frames ``[a, a + n)``, samples ``[160 a, 160 (a + n))``.

        Shapes:
            mel: (B, crop_frames, 64)
            waveform: (B, 160 * crop_frames)
        """
        if self.waveforms is None:
            raise ValueError("this ClipBank was loaded without waveforms")
        index, start = self._draw(generator, batch_size, crop_frames)
        mels, waves = [], []
        for i, s in zip(index.tolist(), start.tolist()):
            mels.append(self.mels[i, s : s + crop_frames])
            waves.append(self.waveforms[i, s * HOP_LENGTH : (s + crop_frames) * HOP_LENGTH])
        return torch.stack(mels), torch.stack(waves)
