"""The UI's result files: each result's wav, flac, spectrogram and sidecar, in the server's private folder.

Files are named by the server (a counter and the seed), never by a client, and only the newest
``keep`` results are kept on disk; the folder goes with the service's temporary folder at shutdown.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxmusic.web.service import Result

__all__ = ["ResultFiles", "ResultStore"]


@dataclass(frozen=True)
class ResultFiles:
    """One result on disk and what the UI shows beside it."""

    number: int
    wav: str
    flac: str
    spectrogram: str
    settings: dict[str, Any]

    def row(self) -> list[Any]:
        """Its line in the history table."""
        s = self.settings
        prompt = s.get("prompt", "")
        return [
            self.number,
            s.get("operation", ""),
            prompt[:60],
            s.get("seed"),
            round(s["num_samples"] / s["sample_rate"], 2),
        ]


HISTORY_HEADERS = ["#", "operation", "prompt", "seed", "seconds"]


class ResultStore:
    """Writes results for the UI and removes the oldest beyond ``keep``."""

    def __init__(self, root: Path, keep: int = 200) -> None:
        self.root, self.keep = Path(root), keep
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0
        self._folders: list[Path] = []

    def save(self, result: Result) -> ResultFiles:
        """Write clip 0 of ``result`` as wav and flac, its spectrogram PNG and its sidecar JSON."""
        from fluxmusic.pipeline.outputs import save_spectrogram, write_clip

        with self._lock:
            self._count += 1
            number = self._count
            folder = self.root / f"{number:05d}"
            self._folders.append(folder)
            old = self._folders[: -self.keep] if len(self._folders) > self.keep else []
            self._folders = self._folders[len(old) :]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        folder.mkdir()
        out, settings = result.output, result.sidecar
        stem = f"fluxmusic-{number:05d}-{settings.get('seed')}"
        wav, flac = folder / f"{stem}.wav", folder / f"{stem}.flac"
        write_clip(wav, out.waveforms[0], out.sample_rate)
        write_clip(flac, out.waveforms[0], out.sample_rate)
        png = save_spectrogram(out.mels[0], folder / f"{stem}.png", out.prompts[0])
        (folder / f"{stem}.json").write_text(json.dumps(settings, indent=2) + "\n")
        return ResultFiles(number, str(wav), str(flac), str(png), settings)
