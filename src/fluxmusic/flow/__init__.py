"""Rectified flow: the path, training timesteps and loss, ODE samplers and classifier-free guidance."""

from fluxmusic.flow.guidance import classifier_free_guidance
from fluxmusic.flow.path import (
    flow_matching_loss,
    interpolate,
    sample_timesteps,
    shift_time,
    velocity_target,
)
from fluxmusic.flow.samplers import EVALS_PER_STEP, SAMPLERS, VelocityFn, sample, time_grid

__all__ = [
    "EVALS_PER_STEP",
    "SAMPLERS",
    "VelocityFn",
    "classifier_free_guidance",
    "flow_matching_loss",
    "interpolate",
    "sample",
    "sample_timesteps",
    "shift_time",
    "time_grid",
    "velocity_target",
]
