"""Real ``fluxmusic serve`` processes on free loopback ports, with a tiny model folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

STARTUP_SECONDS = 120


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick on the loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server: its base URL, token, process and log."""

    url: str
    proc: subprocess.Popen
    log: Path
    token: str | None = None
    stopping: bool = False

    @property
    def workdir(self) -> Path:
        """The server's private temporary folder."""
        (folder,) = (self.log.parent / f"{self.log.stem}-tmp").glob("fluxmusic-serve-*")
        return folder

    def terminate(self) -> None:
        """Send SIGTERM once (a second one would cut the graceful shutdown short)."""
        if self.proc.poll() is None and not self.stopping:
            self.stopping = True
            self.proc.terminate()

    def headers(self, **extra: str) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**auth, **extra}

    def get_json(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path, headers=self.headers())
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())


def launch_server(model: Path, log: Path, *args: str, token: str | None = None) -> Server:
    """Start ``fluxmusic serve`` on a free port (see :func:`wait_until_up`)."""
    port = free_port()
    command = [sys.executable, "-m", "fluxmusic", "serve", "--model", str(model), "--port", str(port), *args]
    if token:
        command += ["--token", token]
    tmp = log.parent / f"{log.stem}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(tmp),  # the server's private folder is made here, so a test can look inside
    }
    handle = log.open("w")
    proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return Server(f"http://127.0.0.1:{port}", proc, log, token)


def wait_until_up(server: Server) -> Server:
    """Wait until ``/health`` answers; a server that exits or takes too long fails with its log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log.read_text()}")
        try:
            if server.get_json("/health")["status"] == "ok":
                return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.25)
    stop_server(server)
    raise RuntimeError(f"server did not start in {STARTUP_SECONDS} s:\n{server.log.read_text()}")


def stop_server(server: Server) -> None:
    """Stop the server's process (SIGTERM, then SIGKILL after 15 s)."""
    server.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=15)


@pytest.fixture(scope="session")
def web_model(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline) -> Path:  # noqa: ANN001
    """The tiny model folder with a Griffin-Lim vocoder (loud, seed-dependent noise: easy to tell apart;
    the tiny HiFi-GAN is all but silent). Short defaults keep each request well under a second.
    ``FLUXMUSIC_WEB_TEST_MODEL=bundled`` serves another model instead (for the docs' screenshot)."""
    if os.environ.get("FLUXMUSIC_WEB_TEST_MODEL"):
        return Path(os.environ["FLUXMUSIC_WEB_TEST_MODEL"])
    folder = tiny_pipeline.save_pretrained(tmp_path_factory.mktemp("web-models") / "tiny")
    index = json.loads((folder / "fluxmusic.json").read_text())
    index["vocoder"] = {"type": "griffin-lim", "n_iter": 4}
    index["defaults"] = {"steps": 4}
    (folder / "fluxmusic.json").write_text(json.dumps(index, indent=2))
    shutil.rmtree(folder / "vocoder")
    return folder


@pytest.fixture(scope="session")
def servers(web_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers, started side by side (their start-ups overlap):

    - ``open``: the UI and the API, no token, a 10 s duration cap (uploads included), the default queue;
    - ``token``: the UI and the API behind a token, with a queue of 4 (the load test's server).
    """
    logs = tmp_path_factory.mktemp("web-logs")
    started = {
        "open": launch_server(web_model, logs / "server.log", "--max-duration", "10"),
        "token": launch_server(
            web_model, logs / "token-server.log", "--queue-size", "4", token="s3cret-token"
        ),
    }
    try:
        yield {name: wait_until_up(server) for name, server in started.items()}
    finally:
        for running in started.values():  # both at once: each may take its graceful-shutdown time
            running.terminate()
        for running in started.values():
            stop_server(running)
    for running in started.values():  # a stopped server leaves no temporary files behind
        assert running.proc.returncode == 0, running.log.read_text()
        assert not list((running.log.parent / f"{running.log.stem}-tmp").glob("fluxmusic-serve-*"))


@pytest.fixture(scope="session")
def server(servers: dict[str, Server]) -> Server:
    """The server without a token."""
    return servers["open"]


@pytest.fixture(scope="session")
def token_server(servers: dict[str, Server]) -> Server:
    """The server with a token and a queue of 4."""
    return servers["token"]
