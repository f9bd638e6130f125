"""Requests to tasks: the fields of a JSON body or a form become a checked :class:`~.service.Task`.

Nothing here judges a value itself: the prompt goes through the pipeline's own check
(``repeat_prompts``), the settings through ``SampleSettings`` (``pipe.settings``), the edit parameters
through the pipeline's ``check_strength`` / ``check_regions`` / ``check_total_duration``. The server adds
only its limits (duration, steps, prompt length), which are policy rather than validity. Uploads are
decoded here into the pipeline's ``InputAudio`` from a file of the server's own naming, then removed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxmusic.errors import InputError
from fluxmusic.sampling import SETTING_FIELDS as SAMPLE_FIELDS
from fluxmusic.web.errors import ApiError
from fluxmusic.web.service import Task

if TYPE_CHECKING:
    from fluxmusic.pipeline.editing import InputAudio
    from fluxmusic.web.service import ModelService

__all__ = ["FIELDS", "FORMATS", "TEXT_FIELDS", "build_task", "decode_upload", "form_value"]

SETTING_FIELDS = SAMPLE_FIELDS
"""The ``SampleSettings`` fields a request may set: all of them (``SampleSettings`` checks each)."""

FIELDS: dict[str, tuple[str, ...]] = {
    "text-to-music": ("prompt", "format", *SETTING_FIELDS),
    "variation": ("prompt", "format", "strength", *(f for f in SETTING_FIELDS if f != "duration")),
    "inpaint": ("prompt", "format", "regions", *(f for f in SETTING_FIELDS if f != "duration")),
    "continuation": ("prompt", "format", *SETTING_FIELDS),
}
"""The fields each operation takes (anything else is refused, naming these)."""

TEXT_FIELDS = frozenset({"prompt", "negative_prompt", "sampler", "format"})
"""Form fields kept as text; the others are read as JSON values (``16``, ``0.5``, ``[[1, 2]]``)."""

FORMATS = {"wav": "audio/wav", "flac": "audio/flac"}
"""The audio formats served, with their media types."""


def form_value(name: str, text: str) -> Any:
    """A multipart form field's value: text fields as they are, others parsed as JSON (else the text)."""
    import json

    if name in TEXT_FIELDS:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_text(name: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        return
    if len(value) > limit:
        raise ApiError(422, f"{name} is {len(value)} characters; this server takes at most {limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, f"{name} is not valid Unicode text (a lone surrogate); send UTF-8 text") from None


def _resolve(service: ModelService, given: dict[str, Any], sets_duration: bool) -> Any:
    from fluxmusic.pipeline.edit_inputs import LONG_FORM_MAX_SECONDS
    from fluxmusic.pipeline.request import with_seed
    from fluxmusic.sampling import SettingsError

    try:
        settings = service.pipe.settings(max_duration=LONG_FORM_MAX_SECONDS, **given)
    except TypeError as err:
        raise ApiError(422, str(err)) from None
    limits = service.limits
    if sets_duration and settings.duration > limits.max_duration:  # edits keep their input's length
        raise SettingsError("duration", f"must be at most {limits.max_duration:g} s on this server")
    if settings.steps > limits.max_steps:
        raise SettingsError(
            "steps", f"must be at most {limits.max_steps} on this server, got {settings.steps}"
        )
    return with_seed(settings)


def build_task(
    service: ModelService, operation: str, fields: Mapping[str, Any], audio: InputAudio | None = None
) -> tuple[Task, str]:
    """The checked task of a request and the audio format to answer in.

    Args:
        service: The model host (its pipeline resolves the settings; its limits bound them).
        operation: A key of :data:`FIELDS`.
        fields: The request's fields (a JSON object, or a form's values through :func:`form_value`).
        audio: The decoded upload of an edit.

    Raises:
        ApiError: 422 for unknown or missing fields and values over the server's limits.
        InputError: a value the library refuses (``SettingsError`` names the field).
    """
    allowed = FIELDS[operation]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ApiError(422, f"unknown fields {unknown}; {operation} takes {', '.join(allowed)}")
    if "prompt" not in fields:
        raise ApiError(422, 'prompt is required, e.g. {"prompt": "a calm piano piece"}')
    from fluxmusic.pipeline.request import repeat_prompts

    prompt = fields["prompt"]
    if not isinstance(prompt, str):
        raise ApiError(422, f"prompt must be one string, got {type(prompt).__name__}")
    try:
        repeat_prompts(prompt, 1)
    except TypeError as err:
        raise ApiError(422, str(err)) from None
    for name in ("prompt", "negative_prompt"):
        _check_text(name, fields.get(name), service.limits.max_prompt_chars)
    fmt = fields.get("format", "wav")
    if fmt not in FORMATS:
        raise ApiError(422, f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if operation == "continuation" and fields.get("duration") is None:
        raise ApiError(422, "duration is required: the total length in seconds, the input included")
    given = {k: fields.get(k) for k in allowed if k in SETTING_FIELDS}
    settings = _resolve(service, given, operation in ("text-to-music", "continuation"))
    service.pipe.tempo_rows([prompt], settings.bpm, 1)  # a tempo for a model without a tempo input
    task = Task(operation, prompt, settings, audio)
    return _edit_parameters(service, task, fields), fmt


def _edit_parameters(service: ModelService, task: Task, fields: Mapping[str, Any]) -> Task:
    from fluxmusic.pipeline.edit_inputs import (
        check_regions,
        check_strength,
        check_total_duration,
        parse_region,
    )

    if task.operation == "text-to-music":
        return task
    if task.audio is None:
        raise ApiError(422, "attach the input audio as the multipart file field 'audio'")
    if task.operation == "variation":
        return dataclasses.replace(task, strength=check_strength(fields.get("strength", 0.5)))
    if task.operation == "inpaint":
        regions = fields.get("regions")
        if isinstance(regions, str):
            regions = [regions]
        if isinstance(regions, list):
            regions = [parse_region(r) if isinstance(r, str) else r for r in regions]
        return dataclasses.replace(task, regions=check_regions(regions, task.audio.seconds))
    check_total_duration(task.settings.duration, task.audio.seconds, service.limits.max_duration)
    return task


def decode_upload(service: ModelService, data: bytes) -> InputAudio:
    """Decode an uploaded file into the pipeline's ``InputAudio`` (at the model's rate, mono).

    The bytes go to a file named by the server inside its private folder, which is removed before
    returning; the client's file name is never used (the sidecar records the input as ``upload``).

    Raises:
        ApiError: 415 when the bytes are not audio, 413 when they decode to more than the server's
            longest duration.
        InputError: silent or too short audio.
    """
    from fluxmusic.audio.io import AudioFileError, audio_info
    from fluxmusic.pipeline.editing import load_input

    if not data:
        raise ApiError(422, "the uploaded file is empty; attach an audio file as the field 'audio'")
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=service.workdir)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            info = audio_info(path)
        except AudioFileError:
            raise ApiError(
                415, "the upload is not audio that can be decoded; send wav, flac, ogg or mp3"
            ) from None
        seconds = info.num_frames / info.sample_rate
        limit = service.limits.max_duration
        if not math.isfinite(seconds) or seconds > limit:
            raise ApiError(413, f"the upload is {seconds:.1f} s long; this server takes at most {limit:g} s")
        try:
            source = load_input(path, service.pipe.sample_rate)
        except InputError as err:
            status = 415 if isinstance(err, AudioFileError) else 422
            raise ApiError(status, str(err).replace(str(path), "upload")) from None
    finally:
        path.unlink(missing_ok=True)
    return dataclasses.replace(source, source=dataclasses.replace(source.source, file="upload"))
