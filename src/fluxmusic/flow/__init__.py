"""Rectified flow: path, training timesteps and loss, ODE samplers, classifier-free guidance, step caching."""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "classifier_free_guidance": "fluxmusic.flow.guidance",
    "flow_matching_loss": "fluxmusic.flow.path",
    "interpolate": "fluxmusic.flow.path",
    "sample_timesteps": "fluxmusic.flow.path",
    "shift_time": "fluxmusic.flow.path",
    "velocity_target": "fluxmusic.flow.path",
    "StepCache": "fluxmusic.flow.cache",
    "EVALS_PER_STEP": "fluxmusic.flow.samplers",
    "SAMPLERS": "fluxmusic.flow.samplers",
    "StepCallback": "fluxmusic.flow.samplers",
    "VelocityFn": "fluxmusic.flow.samplers",
    "sample": "fluxmusic.flow.samplers",
    "time_grid": "fluxmusic.flow.samplers",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
