"""Audio side of fluxmusic: log-mel front end, VAE, vocoders, file I/O and training-clip rules.

Heavy dependencies (diffusers, transformers, librosa, soundfile, soxr) are imported on first use.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "Clip": "fluxmusic.audio.clips",
    "SilentAudioError": "fluxmusic.audio.clips",
    "clip_log_mel": "fluxmusic.audio.clips",
    "fit_frames": "fluxmusic.audio.clips",
    "fit_length": "fluxmusic.audio.clips",
    "load_clip": "fluxmusic.audio.clips",
    "normalize_peak": "fluxmusic.audio.clips",
    "prepare_clip": "fluxmusic.audio.clips",
    "AudioFileError": "fluxmusic.audio.io",
    "AudioInfo": "fluxmusic.audio.io",
    "audio_info": "fluxmusic.audio.io",
    "read_audio": "fluxmusic.audio.io",
    "resample": "fluxmusic.audio.io",
    "write_audio": "fluxmusic.audio.io",
    "HOP_LENGTH": "fluxmusic.audio.mel",
    "N_FFT": "fluxmusic.audio.mel",
    "N_MELS": "fluxmusic.audio.mel",
    "SAMPLE_RATE": "fluxmusic.audio.mel",
    "WIN_LENGTH": "fluxmusic.audio.mel",
    "frames_for": "fluxmusic.audio.mel",
    "log_mel": "fluxmusic.audio.mel",
    "mel_basis": "fluxmusic.audio.mel",
    "samples_for": "fluxmusic.audio.mel",
    "stft_magnitude": "fluxmusic.audio.mel",
    "AUDIOLDM2_VAE_CONFIG": "fluxmusic.audio.vae",
    "AudioVAE": "fluxmusic.audio.vae",
    "LatentDistribution": "fluxmusic.audio.vae",
    "AUDIOLDM2_VOCODER_CONFIG": "fluxmusic.audio.vocoder",
    "GriffinLimVocoder": "fluxmusic.audio.vocoder",
    "HifiGanVocoder": "fluxmusic.audio.vocoder",
    "Vocoder": "fluxmusic.audio.vocoder",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
