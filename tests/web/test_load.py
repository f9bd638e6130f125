"""24 concurrent clients against a queue of 4: every request answered (audio or 503 at once), none mixed."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

requests = pytest.importorskip("requests")
psutil = pytest.importorskip("psutil")

CLIENTS = 24
BOUND_SECONDS = 90  # no answer may take longer than this (the whole burst is a few seconds)


def _ask(server, i: int, start: threading.Barrier) -> tuple[int, float, requests.Response]:  # noqa: ANN001
    start.wait()
    began = time.monotonic()
    answer = requests.post(
        server.url + "/v1/audio/generations",
        json={"prompt": f"client {i}: a jig", "duration": 0.64, "seed": 1000 + i},
        headers=server.headers(),
        timeout=BOUND_SECONDS,
    )
    return i, time.monotonic() - began, answer


def _rss(server) -> int:  # noqa: ANN001
    return psutil.Process(server.proc.pid).memory_info().rss


def test_a_burst_is_answered_in_full_and_never_mixed(token_server) -> None:  # noqa: ANN001
    server = token_server
    for i in range(3):  # warm up, then take the idle level
        assert requests.post(
            server.url + "/v1/audio/generations",
            json={"prompt": "warm up", "duration": 0.64, "seed": i},
            headers=server.headers(),
            timeout=60,
        ).ok
    idle = _rss(server)

    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda i: _ask(server, i, start), range(CLIENTS)))

    assert len(answers) == CLIENTS
    served = [(i, a) for i, _, a in answers if a.status_code == 200]
    busy = [(i, t, a) for i, t, a in answers if a.status_code == 503]
    assert len(served) + len(busy) == CLIENTS, [a.status_code for _, _, a in answers]
    assert len(served) >= 4 and busy  # one runs and 4 wait; the rest are refused
    for _, seconds, answer in busy:
        assert seconds < 5 and int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"]["type"] == "busy"
    for i, answer in served:  # each client got its own clip: its prompt, its seed, its audio
        settings = json.loads(answer.headers["x-fluxmusic-settings"])
        assert (settings["prompt"], settings["seed"]) == (f"client {i}: a jig", 1000 + i)
    for i, answer in served:
        again = requests.post(
            server.url + "/v1/audio/generations",
            json={"prompt": f"client {i}: a jig", "duration": 0.64, "seed": 1000 + i},
            headers=server.headers(),
            timeout=60,
        )
        assert again.content == answer.content
    assert server.get_json("/health")["queue"]["waiting"] == 0

    time.sleep(0.5)
    assert _rss(server) < idle + 64 * 2**20  # back to (about) the idle level
