"""``fluxmusic serve``: the web UI and the HTTP API of one loaded model (docs/serve.md)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal

from fluxmusic.cli.console import UserError, add_device, command

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

SERVE_HELP = "serve a web UI and an HTTP API for one model"
SERVE_DESCRIPTION = (
    "Load one model and serve a web UI at / and a JSON API under /v1 (docs/serve.md).\n"
    "Needs the web extra: pip install 'fluxmusic[web]'.\n\n"
    "examples:\n"
    "  fluxmusic serve                                  # bundled model, http://127.0.0.1:7860/\n"
    "  fluxmusic serve --model small --port 8000\n"
    '  fluxmusic serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"\n'
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(kind: type, name: str):  # noqa: ANN202
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _check_web_extra(ui: bool) -> None:
    import importlib.util

    needed = ("fastapi", "uvicorn", "multipart", *(("gradio",) if ui else ()))
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"serve needs {', '.join(missing)}: pip install 'fluxmusic[web]'")


def _cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    token = args.token if args.token is not None else os.environ.get("FLUXMUSIC_TOKEN") or None
    if token is not None and not token.strip():
        raise UserError("--token is empty; give a long random string, e.g. from `openssl rand -hex 16`")
    if not is_loopback(args.host) and token is None:
        print(
            f"fluxmusic serve: warning: listening on {args.host} without --token: anyone who can reach this "
            "port can use the model; add --token or put an authenticating reverse proxy in front",
            flush=True,
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    _check_web_extra(not args.no_ui)
    from fluxmusic.cli.console import quiet_third_party_progress
    from fluxmusic.devices import resolve_device
    from fluxmusic.web.service import Limits, ModelService

    resolve_device(args.device)
    limits = Limits(max_duration=args.max_duration, max_steps=args.max_steps, queue_size=args.queue_size)
    quiet_third_party_progress()
    service = ModelService.load(args.model, device=args.device, dtype=args.dtype, limits=limits)
    os.environ["GRADIO_TEMP_DIR"] = str(service.workdir / "gradio")
    try:
        import uvicorn

        from fluxmusic.web.app import create_app

        app = create_app(service, token=token, ui=not args.no_ui)
        where = f"[{args.host}]" if ":" in args.host else args.host
        print(f"fluxmusic serve: model {args.model} on http://{where}:{args.port}/ (API: /v1)", flush=True)
        # uvicorn re-raises SIGTERM once it has shut down: end through ``finally`` (temporary files removed)
        signal.signal(signal.SIGTERM, _stop)
        uvicorn.run(
            app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5
        )
    finally:
        service.close()
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "serve", _cmd_serve, help=SERVE_HELP, description=SERVE_DESCRIPTION)
    p.add_argument(
        "--model", default="bundled", help="'bundled' (default), a released size or a model folder"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' on every request (the UI asks for it); default: "
        "$FLUXMUSIC_TOKEN, else none",
    )
    p.add_argument(
        "--max-duration",
        type=_positive(float, "--max-duration"),
        default=30.0,
        help="longest clip a request may ask for, and longest upload, in seconds (default 30)",
    )
    p.add_argument(
        "--max-steps",
        type=_positive(int, "--max-steps"),
        default=200,
        help="most steps per request (default 200)",
    )
    p.add_argument(
        "--queue-size",
        type=_positive(int, "--queue-size"),
        default=8,
        help="requests that may wait while one runs; more get 503 at once (default 8)",
    )
    add_device(p, "as fluxmusic generate")
    p.add_argument("--no-ui", action="store_true", help="serve the API only")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's",
    )
