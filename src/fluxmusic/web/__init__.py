"""The web server: a gradio UI at ``/`` and a JSON API under ``/v1``, one loaded model (``fluxmusic serve``).

- :mod:`.service`: ``ModelService``, the model behind one worker thread and a bounded queue;
- :mod:`.tasks`: request fields to checked tasks (the library's checks), uploads decoded;
- :mod:`.api`: the HTTP endpoints; :mod:`.errors`: one JSON error shape and the statuses;
- :mod:`.guards`: the bearer token and the body-size cap; :mod:`.ui`: the gradio Blocks;
- :mod:`.results`: the UI's result files; :mod:`.app`: ``create_app``, all of it in one ASGI app.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "create_app": "fluxmusic.web.app",
    "ModelService": "fluxmusic.web.service",
    "Limits": "fluxmusic.web.service",
    "Task": "fluxmusic.web.service",
    "ApiError": "fluxmusic.web.errors",
    "build_ui": "fluxmusic.web.ui",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
