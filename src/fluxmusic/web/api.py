"""The JSON API under ``/v1`` (and ``GET /health``): text-to-music and the three edits over HTTP.

``POST /v1/audio/generations`` takes a JSON object and answers the audio bytes (``audio/wav`` or
``audio/flac``, the clip's sidecar in the ``X-Fluxmusic-Settings`` header), or with ``Accept:
application/json`` ``{"audio": base64, "format", "settings"}``. ``/v1/audio/variations``,
``/v1/audio/inpaintings`` and ``/v1/audio/continuations`` take a multipart form: the input file as the
field ``audio`` and the other fields as form fields (numbers and lists as JSON text). Every failure is
``{"error": {"type", "message"}}`` with its status (:mod:`fluxmusic.web.errors`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fluxmusic.web.errors import ApiError, as_api_error
from fluxmusic.web.tasks import FORMATS, build_task, decode_upload, form_value

if TYPE_CHECKING:
    from fluxmusic.web.service import ModelService, Result

__all__ = ["EDIT_ROUTES", "add_api_routes", "encode_clip"]

EDIT_ROUTES = {
    "/v1/audio/variations": "variation",
    "/v1/audio/inpaintings": "inpaint",
    "/v1/audio/continuations": "continuation",
}
"""Multipart endpoints and the edit each runs."""

SETTINGS_HEADER = "X-Fluxmusic-Settings"


def encode_clip(service: ModelService, result: Result, fmt: str) -> bytes:
    """Clip 0 of ``result`` as a file's bytes, written by the pipeline's own writer (so the samples are the
    ones ``fluxmusic generate`` writes) to a private temporary file, which is removed."""
    from fluxmusic.pipeline.outputs import write_clip

    path = service.workdir / f"clip-{uuid.uuid4().hex}.{fmt}"
    try:
        write_clip(path, result.output.waveforms[0], result.output.sample_rate)
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


async def _run(service: ModelService, task: Any, fmt: str, request: Request) -> Response:
    job = service.submit(task)
    result = await asyncio.wrap_future(job.future)
    data = await run_in_threadpool(encode_clip, service, result, fmt)
    settings = result.sidecar
    if "application/json" in request.headers.get("accept", ""):
        body = {"audio": base64.b64encode(data).decode("ascii"), "format": fmt, "settings": settings}
        return JSONResponse(body)
    name = f"fluxmusic-{settings.get('seed')}.{fmt}"
    headers = {
        SETTINGS_HEADER: json.dumps(settings, ensure_ascii=True, separators=(",", ":")),
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    return Response(data, media_type=FORMATS[fmt], headers=headers)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def add_api_routes(app: FastAPI, service: ModelService) -> None:
    """Add ``/health`` and the ``/v1`` endpoints to ``app`` (before the UI is mounted at ``/``)."""
    from starlette.concurrency import run_in_threadpool

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": service.model,
            "queue": {"waiting": service.waiting, "size": service.limits.queue_size},
            "busy": service.running is not None,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [service.describe()]}

    @app.post("/v1/audio/generations")
    async def generations(request: Request) -> Any:
        if _media_type(request) != "application/json":
            raise ApiError(415, "send the request as JSON (Content-Type: application/json)")
        body = await request.body()
        try:
            fields = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, f"the body is not valid JSON: {err}") from None
        except RecursionError:
            raise ApiError(400, "the body is not valid JSON: nested too deeply") from None
        if not isinstance(fields, dict):
            raise ApiError(422, 'the body must be a JSON object, e.g. {"prompt": "a calm piano piece"}')
        task, fmt = build_task(service, "text-to-music", fields)
        return await _run(service, task, fmt, request)

    async def edit(request: Request) -> Any:
        from starlette.datastructures import UploadFile

        operation = EDIT_ROUTES[request.url.path]
        if _media_type(request) != "multipart/form-data":
            raise ApiError(415, "send a multipart form (curl -F audio=@input.wav -F prompt=...)")
        try:
            form = await request.form(max_files=1, max_fields=32)
        except ApiError:
            raise
        except Exception as err:  # noqa: BLE001 - any multipart parse failure is the client's
            raise ApiError(400, f"the multipart body cannot be read: {err}") from None
        try:
            upload, fields = None, {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key != "audio":
                        raise ApiError(422, f"unexpected file field {key!r}; attach the input as 'audio'")
                    upload = value
                    continue
                parsed = form_value(key, value)
                if key in fields:
                    previous = fields[key]
                    fields[key] = [*previous, parsed] if isinstance(previous, list) else [previous, parsed]
                else:
                    fields[key] = parsed
            if upload is None:
                raise ApiError(422, "attach the input audio as the multipart file field 'audio'")
            data = await upload.read()
        finally:
            await form.close()
        source = await run_in_threadpool(decode_upload, service, data)
        task, fmt = build_task(service, operation, fields, source)
        return await _run(service, task, fmt, request)

    for path in EDIT_ROUTES:
        app.add_api_route(path, edit, methods=["POST"])

    known = {"/health", "/v1/models", "/v1/audio/generations", *EDIT_ROUTES}

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(request: Request) -> Any:
        if request.url.path in known:
            raise ApiError(405, f"{request.method} is not allowed on {request.url.path}")
        raise ApiError(404, f"no endpoint {request.url.path}; see GET /v1/models and docs/serve.md")


def add_error_handlers(app: FastAPI, hide: tuple[str, ...] = ()) -> None:
    """Answer every failure as ``{"error": {"type", "message"}}``: our errors, the library's user errors,
    FastAPI's own (404, 405, validation) and, without details, bugs."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from fluxmusic.errors import InputError
    from fluxmusic.web.errors import error_body

    def respond(err: ApiError) -> JSONResponse:
        return JSONResponse(error_body(err.status, err.message), err.status, headers=err.headers)

    async def api_error(request: Any, err: Exception) -> JSONResponse:
        return respond(as_api_error(err, hide))

    async def http_error(request: Any, err: HTTPException) -> JSONResponse:
        return respond(ApiError(err.status_code, str(err.detail), dict(err.headers or {})))

    async def validation_error(request: Any, err: RequestValidationError) -> JSONResponse:
        return respond(ApiError(422, "the request does not have the expected shape"))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(InputError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, api_error)
