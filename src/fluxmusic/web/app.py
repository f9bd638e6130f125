"""One ASGI app for the server: the JSON API and the gradio UI in one FastAPI app, behind the guards.

``create_app(service, token)`` adds ``/health`` and ``/v1`` (:mod:`.api`) to a FastAPI app, mounts the
gradio Blocks (:mod:`.ui`) at ``/``, and wraps the whole in the body-size cap and, with a token, the
token guard (:mod:`.guards`). The service (one loaded model) is shared by the UI and the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluxmusic.web.api import add_api_routes, add_error_handlers
from fluxmusic.web.guards import BodyLimit, TokenGuard

if TYPE_CHECKING:
    from fluxmusic.web.service import ModelService

__all__ = ["create_app"]


def create_app(service: ModelService, token: str | None = None, ui: bool = True) -> Any:
    """The server's ASGI app.

    Args:
        service: The model host (started).
        token: With a token, every request needs ``Authorization: Bearer TOKEN`` (the UI asks for it).
        ui: Mount the gradio UI at ``/`` (off: the API alone).

    Returns:
        An ASGI callable for uvicorn (its ``fastapi`` attribute is the FastAPI app).
    """
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from fastapi import FastAPI

    from fluxmusic.version import __version__

    api = FastAPI(title="fluxmusic", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handlers(api, hide=(str(service.workdir),))
    add_api_routes(api, service)
    if ui:
        import gradio as gr

        from fluxmusic.web.ui import build_ui

        blocks = build_ui(service)
        blocks.queue(default_concurrency_limit=service.limits.queue_size + 1)
        api = gr.mount_gradio_app(
            api,
            blocks,
            path="",
            allowed_paths=[str(service.workdir)],
            max_file_size=service.limits.max_upload_bytes,
            ssr_mode=False,
            footer_links=["api"],
        )
    limits = service.limits

    def limit_for(scope: dict) -> int:
        if scope["path"].startswith("/v1/") and scope["path"] != "/v1/audio/generations":
            return limits.max_upload_bytes
        if scope["path"].startswith("/v1/"):
            return limits.max_body_bytes
        return limits.max_upload_bytes + 2**16

    app: Any = BodyLimit(api, limit_for)
    if token:
        app = TokenGuard(app, token)
    app.fastapi = api
    return app
