"""Audio side of fluxmusic: log-mel front end, VAE, vocoders, file I/O and training-clip rules.

Heavy dependencies (diffusers, transformers, librosa, soundfile, soxr) are imported on first use.
"""

from __future__ import annotations

from fluxmusic.audio.clips import (
    Clip,
    SilentAudioError,
    clip_log_mel,
    fit_frames,
    fit_length,
    load_clip,
    normalize_peak,
    prepare_clip,
)
from fluxmusic.audio.io import AudioFileError, AudioInfo, audio_info, read_audio, resample, write_audio
from fluxmusic.audio.mel import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WIN_LENGTH,
    frames_for,
    log_mel,
    mel_basis,
    samples_for,
    stft_magnitude,
)
from fluxmusic.audio.pretrained import PretrainedNotFoundError
from fluxmusic.audio.vae import AUDIOLDM2_VAE_CONFIG, AudioVAE, LatentDistribution
from fluxmusic.audio.vocoder import AUDIOLDM2_VOCODER_CONFIG, GriffinLimVocoder, HifiGanVocoder, Vocoder

__all__ = [
    "AUDIOLDM2_VAE_CONFIG",
    "AUDIOLDM2_VOCODER_CONFIG",
    "HOP_LENGTH",
    "N_FFT",
    "N_MELS",
    "SAMPLE_RATE",
    "WIN_LENGTH",
    "AudioFileError",
    "AudioInfo",
    "AudioVAE",
    "Clip",
    "GriffinLimVocoder",
    "HifiGanVocoder",
    "LatentDistribution",
    "PretrainedNotFoundError",
    "SilentAudioError",
    "Vocoder",
    "audio_info",
    "clip_log_mel",
    "fit_frames",
    "fit_length",
    "frames_for",
    "load_clip",
    "log_mel",
    "mel_basis",
    "normalize_peak",
    "prepare_clip",
    "read_audio",
    "resample",
    "samples_for",
    "stft_magnitude",
    "write_audio",
]
