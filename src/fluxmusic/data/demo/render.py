"""Write a clip plan as a MIDI file and render it to an exact-length mono waveform with FluidSynth.

The MIDI file carries the clip's tempo (``set_tempo``), so the rendered audio really plays at that BPM.
FluidSynth renders at ``render_rate``; the result is down-mixed, resampled with soxr, trimmed/padded to the
exact clip length, checked for near-silence and peak-normalised to a level that follows the dynamics.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fluxmusic.data.demo.arrange import DYNAMICS, ClipPlan

logger = logging.getLogger(__name__)

TICKS_PER_QUARTER = 480
_CHANNELS = tuple(c for c in range(16) if c != 9)  # channel 10 (index 9) is GM percussion


class RenderError(RuntimeError):
    """FluidSynth failed or is missing."""


@dataclass(frozen=True)
class RenderResult:
    """A rendered clip.

    Attributes:
        audio: float32 (S,) mono waveform in [-1, 1], exactly the requested length.
        rms_db: RMS level of the raw render in dBFS (before normalisation).
        active: fraction of 20 ms frames of the raw render louder than ``silence_db``.
        peak: peak level after normalisation.
    """

    audio: np.ndarray
    rms_db: float
    active: float
    peak: float


def write_midi(plan: ClipPlan, path: Path, time_signature: str = "4/4") -> None:
    """Write a type-1 MIDI file: tempo/metre track, then one track and channel per voice."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(plan.bpm), time=0))
    num, den = (int(x) for x in time_signature.split("/"))
    if den in (1, 2, 4, 8, 16, 32):
        meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    mid.tracks.append(meta)
    for voice, channel in zip(plan.voices, _CHANNELS, strict=False):
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", program=voice.program, channel=channel, time=0))
        track.append(mido.Message("control_change", control=7, value=100, channel=channel, time=0))
        events: list[tuple[int, int, int, int]] = []  # (tick, order, note, velocity); note-offs first
        for onset, dur, pitch, vel in voice.notes:
            on = int(round(onset * TICKS_PER_QUARTER))
            off = max(on + 1, int(round((onset + dur) * TICKS_PER_QUARTER)))
            events += [(on, 1, int(pitch), int(vel)), (off, 0, int(pitch), 0)]
        now = 0
        for tick, _, note, vel in sorted(events):
            kind = "note_on" if vel > 0 else "note_off"
            track.append(mido.Message(kind, note=note, velocity=vel, channel=channel, time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))


def fluidsynth_available(fluidsynth: str = "fluidsynth", soundfont: Path | None = None) -> bool:
    """True when the FluidSynth executable (and the SoundFont, if given) exist."""
    return shutil.which(fluidsynth) is not None and (soundfont is None or Path(soundfont).is_file())


def render_midi(
    midi_path: Path,
    wav_path: Path,
    soundfont: Path,
    render_rate: int,
    gain: float,
    fluidsynth: str = "fluidsynth",
) -> None:
    """Render a MIDI file to a 16-bit stereo wav with the FluidSynth command line (no audio device)."""
    cmd = [
        fluidsynth, "-n", "-i", "-q", "-F", str(wav_path), "-T", "wav", "-O", "s16",
        "-r", str(render_rate), "-g", f"{gain:g}", str(soundfont), str(midi_path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"fluidsynth failed to run: {exc}") from exc
    if proc.returncode != 0 or not wav_path.is_file():
        raise RenderError(f"fluidsynth exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")


def postprocess(
    raw: np.ndarray,
    raw_rate: int,
    sample_rate: int,
    n_samples: int,
    dynamics: str,
    peak: float,
    silence_db: float = -60.0,
) -> RenderResult:
    """Down-mix, resample, trim/pad to ``n_samples`` and peak-normalise by dynamics.

    A fortissimo clip peaks at ``peak``; each softer marking lowers the target by about 2 dB (pianissimo
    peaks near ``peak / 3``), so loudness still tells the dynamics apart.
    """
    import soxr

    mono = raw.mean(axis=1) if raw.ndim == 2 else raw
    mono = mono.astype(np.float64)
    if raw_rate != sample_rate:
        mono = soxr.resample(mono, raw_rate, sample_rate, quality="HQ")
    out = np.zeros(n_samples, dtype=np.float64)
    out[: min(n_samples, len(mono))] = mono[:n_samples]
    rms_db = 20.0 * np.log10(max(float(np.sqrt(np.mean(out**2))), 1e-12))
    hop = max(1, sample_rate // 50)
    frames = out[: len(out) // hop * hop].reshape(-1, hop)
    frame_db = 20.0 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-12))
    active = float(np.mean(frame_db > silence_db)) if len(frames) else 0.0
    level = [d for d, _ in DYNAMICS].index(dynamics)
    target = peak * 10.0 ** (-2.0 * (len(DYNAMICS) - 1 - level) / 20.0)
    top = float(np.abs(out).max())
    if top > 0:
        out *= target / top
    return RenderResult(
        out.astype(np.float32), round(rms_db, 2), round(active, 3), round(float(np.abs(out).max()), 4)
    )


def render_plan(
    plan: ClipPlan,
    work_dir: Path,
    name: str,
    *,
    time_signature: str,
    soundfont: Path,
    render_rate: int,
    sample_rate: int,
    n_samples: int,
    gain: float,
    peak: float,
    silence_db: float = -60.0,
    fluidsynth: str = "fluidsynth",
    keep_midi: Path | None = None,
) -> RenderResult:
    """MIDI -> FluidSynth -> exact-length normalised mono audio; temporary files live in ``work_dir``."""
    import soundfile as sf

    work_dir.mkdir(parents=True, exist_ok=True)
    midi_path, raw_path = work_dir / f"{name}.mid", work_dir / f"{name}.raw.wav"
    try:
        write_midi(plan, midi_path, time_signature)
        render_midi(midi_path, raw_path, soundfont, render_rate, gain, fluidsynth)
        raw, rate = sf.read(str(raw_path), dtype="float32", always_2d=True)
        if keep_midi is not None:
            keep_midi.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(midi_path, keep_midi)
    finally:
        midi_path.unlink(missing_ok=True)
        raw_path.unlink(missing_ok=True)
    return postprocess(raw, rate, sample_rate, n_samples, plan.dynamics, peak, silence_db)
