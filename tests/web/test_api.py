"""The HTTP API against a real ``fluxmusic serve`` on a loopback port (tiny model folder)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

requests = pytest.importorskip("requests")

RATE = 16000


def generate(server, timeout: float = 60, **fields):  # noqa: ANN001, ANN201
    return requests.post(
        server.url + "/v1/audio/generations", json=fields, headers=server.headers(), timeout=timeout
    )


def wav_bytes(seconds: float, amplitude: float = 0.5, rate: int = RATE) -> bytes:
    """A sine-and-noise clip as wav bytes."""
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(0).normal(0, 0.05, t.shape)
    buffer = io.BytesIO()
    sf.write(buffer, amplitude * np.sin(2 * np.pi * 220 * t) + noise * (amplitude > 0), rate, format="WAV")
    return buffer.getvalue()


def samples(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="int16")[0]


def cli_flags(settings: dict) -> list[str]:
    """``fluxmusic generate`` flags that give the clip a settings header describes."""
    flags = [
        settings["prompt"],
        "--model",
        settings["model"],
        "--negative-prompt",
        settings["negative_prompt"],
    ]
    for key in ("duration", "steps", "guidance", "sampler", "seed", "shift", "guidance_eta"):
        flags += [f"--{key.replace('_', '-')}", str(settings[key])]
    if settings.get("guidance_interval") is not None:
        flags += ["--guidance-interval", *map(str, settings["guidance_interval"])]
    if settings.get("bpm") is not None:
        flags += ["--bpm", str(settings["bpm"])]
    return flags


def test_health_and_models(server) -> None:  # noqa: ANN001
    health = server.get_json("/health")
    assert health["status"] == "ok" and health["model"].endswith("tiny")
    (model,) = server.get_json("/v1/models")["data"]
    assert model["sample_rate"] == RATE and model["formats"] == ["wav", "flac"]
    assert model["max_duration"] == 10 and "euler" in model["samplers"]


def test_generation_is_the_clip_the_cli_makes_from_its_settings_header(server, tmp_path: Path) -> None:  # noqa: ANN001
    answer = generate(server, prompt="a fast fiddle reel", duration=0.96, steps=3, guidance=3.5, seed=11)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav"
    clip = samples(answer.content)
    assert clip.shape == (round(0.96 * RATE),) and np.abs(clip).max() > 1000
    settings = json.loads(answer.headers["x-fluxmusic-settings"])
    assert settings["seed"] == 11 and settings["steps"] == 3 and settings["operation"] == "text-to-music"

    out = tmp_path / "cli.wav"
    command = [sys.executable, "-m", "fluxmusic", "generate", *cli_flags(settings), "-o", str(out), "-q"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(sf.read(out, dtype="int16")[0], clip)  # bit for bit

    as_json = requests.post(
        server.url + "/v1/audio/generations",
        json={"prompt": "a fast fiddle reel", "duration": 0.96, "steps": 3, "guidance": 3.5, "seed": 11},
        headers={"Accept": "application/json"},
        timeout=60,
    ).json()
    assert as_json["format"] == "wav" and as_json["settings"] == settings
    assert base64.b64decode(as_json["audio"]) == answer.content
    flac = generate(
        server, prompt="a fast fiddle reel", duration=0.96, steps=3, guidance=3.5, seed=11, format="flac"
    )
    assert flac.headers["content-type"] == "audio/flac"
    # the same waveform; libsndfile rounds float to 16 bits for FLAC a little differently than for WAV
    assert np.abs(samples(flac.content).astype(int) - clip).max() <= 1


def test_an_unseeded_request_reports_the_seed_it_drew(server) -> None:  # noqa: ANN001
    first = generate(server, prompt="a calm piano piece", duration=0.5)
    seed = json.loads(first.headers["x-fluxmusic-settings"])["seed"]
    again = generate(server, prompt="a calm piano piece", duration=0.5, seed=seed)
    assert isinstance(seed, int) and again.content == first.content


@pytest.mark.parametrize("operation", ["variation", "inpaint", "continuation"])
def test_edits_take_an_upload_and_answer_audio(server, operation: str) -> None:  # noqa: ANN001
    route, fields, length = {
        "variation": ("variations", {"strength": "0.6"}, 1.0),
        "inpaint": ("inpaintings", {"regions": "0.2:0.6"}, 1.0),
        "continuation": ("continuations", {"duration": "1.5"}, 1.5),
    }[operation]
    answer = requests.post(
        f"{server.url}/v1/audio/{route}",
        files={"audio": ("../../etc/passwd", wav_bytes(1.0), "audio/wav")},
        data={"prompt": "a jig", "seed": "4", **fields},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    settings = json.loads(answer.headers["x-fluxmusic-settings"])
    assert settings["operation"] == operation and settings["input"]["file"] == "upload"
    assert samples(answer.content).shape == (round(length * RATE),)
    leftovers = [p.name for p in server.workdir.iterdir() if p.is_file()]
    assert leftovers == []  # the upload and the encoded answer are gone, no client-named file was made


SILENT = wav_bytes(1.0, amplitude=0.0)

BAD_JSON = [  # (case, body or fields, content type, status)
    ("not JSON", b"{bad", "application/json", 400),
    ("not UTF-8", b"\xff\xfe\x00", "application/json", 400),
    ("not an object", b"[1, 2]", "application/json", 422),
    ("no prompt", {"steps": 3}, None, 422),
    ("prompt not text", {"prompt": 7}, None, 422),
    ("two prompts", {"prompt": ["a", "b"]}, None, 422),
    ("blank prompt", {"prompt": "   "}, None, 422),
    ("steps as text", {"prompt": "x", "steps": "4"}, None, 422),
    ("steps fractional", {"prompt": "x", "steps": 2.5}, None, 422),
    ("steps boolean", {"prompt": "x", "steps": True}, None, 422),
    ("steps zero", {"prompt": "x", "steps": 0}, None, 422),
    ("steps over the limit", {"prompt": "x", "steps": 100000}, None, 422),
    ("NaN guidance", b'{"prompt": "x", "guidance": NaN}', "application/json", 422),
    ("infinite duration", b'{"prompt": "x", "duration": Infinity}', "application/json", 422),
    ("huge duration", {"prompt": "x", "duration": 1e9}, None, 422),
    ("duration over the server's cap", {"prompt": "x", "duration": 11}, None, 422),
    ("negative duration", {"prompt": "x", "duration": -1}, None, 422),
    ("unknown sampler", {"prompt": "x", "sampler": "dpm-turbo"}, None, 422),
    ("unknown field", {"prompt": "x", "num_clips": 100}, None, 422),
    ("unknown format", {"prompt": "x", "format": "exe"}, None, 422),
    ("negative seed", {"prompt": "x", "seed": -1}, None, 422),
    ("seed too large", {"prompt": "x", "seed": 2**70}, None, 422),
    ("bpm without a tempo input", {"prompt": "x", "bpm": 120}, None, 422),
    ("bad guidance interval", {"prompt": "x", "guidance_interval": [0.9, 0.1]}, None, 422),
    ("prompt too long", {"prompt": "x" * 5000}, None, 422),
    ("oversized body", {"prompt": "x" * 200_000}, None, 413),
    ("form instead of JSON", b"prompt=x", "application/x-www-form-urlencoded", 415),
    ("nested too deeply", b"[" * 30000 + b"]" * 30000, "application/json", 400),
    ("lone surrogate", b'{"prompt": "\\ud800 a jig"}', "application/json", 422),
]


@pytest.mark.parametrize(("case", "body", "media", "status"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_generation_requests_get_a_json_error(server, case: str, body, media, status: int) -> None:  # noqa: ANN001
    url = server.url + "/v1/audio/generations"
    if isinstance(body, dict):
        answer = requests.post(url, json=body, timeout=30)
    else:
        answer = requests.post(url, data=body, headers={"Content-Type": media}, timeout=30)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["type"] and error["message"] and "Traceback" not in answer.text


BAD_UPLOADS = [  # (case, route, file bytes or None, fields, status)
    ("not audio", "variations", b"MZ\x90\x00 this is not a sound", {}, 415),
    ("empty file", "variations", b"", {}, 422),
    ("no file", "variations", None, {}, 422),
    ("decodes too long", "variations", wav_bytes(12.0), {}, 413),
    ("oversized upload", "variations", b"\x00" * (21 * 2**20), {}, 413),
    ("silent audio", "variations", SILENT, {}, 422),
    ("strength out of range", "variations", wav_bytes(1.0), {"strength": "2"}, 422),
    ("duration on a variation", "variations", wav_bytes(1.0), {"duration": "3"}, 422),
    ("region outside", "inpaintings", wav_bytes(1.0), {"regions": "0.5:3"}, 422),
    ("no region", "inpaintings", wav_bytes(1.0), {}, 422),
    ("continuation shorter", "continuations", wav_bytes(1.0), {"duration": "0.5"}, 422),
    ("continuation without duration", "continuations", wav_bytes(1.0), {}, 422),
]


@pytest.mark.parametrize(
    ("case", "route", "data", "fields", "status"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_uploads_get_a_json_error(server, case: str, route: str, data, fields: dict, status: int) -> None:  # noqa: ANN001
    files = {"audio": ("clip.wav", data, "audio/wav")} if data is not None else {"note": (None, "no file")}
    answer = requests.post(
        f"{server.url}/v1/audio/{route}", files=files, data={"prompt": "a jig", **fields}, timeout=60
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/audio/generations", 405),
        ("POST", "/v1/images/generations", 404),
        ("GET", "/v1/nope", 404),
    ],
)
def test_unknown_endpoints_and_methods_answer_json(server, method: str, path: str, status: int) -> None:  # noqa: ANN001
    answer = requests.request(method, server.url + path, timeout=10)
    assert answer.status_code == status and answer.json()["error"]["type"]


def test_an_oversized_chunked_body_is_cut_off(server) -> None:  # noqa: ANN001
    chunks = (b'{"prompt": "' + b"x" * 8192 for _ in range(16))  # no Content-Length: counted as it comes
    answer = requests.post(
        server.url + "/v1/audio/generations",
        data=chunks,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 413 and answer.json()["error"]["type"] == "payload_too_large"


def test_json_to_an_upload_endpoint_is_refused(server) -> None:  # noqa: ANN001
    answer = requests.post(server.url + "/v1/audio/variations", json={"prompt": "x"}, timeout=10)
    assert answer.status_code == 415 and answer.json()["error"]["type"] == "unsupported_media_type"


def test_the_server_is_healthy_after_the_bad_requests(server) -> None:  # noqa: ANN001
    assert server.get_json("/health")["status"] == "ok"
    assert generate(server, prompt="still here", duration=0.3, seed=1).status_code == 200
    assert server.proc.poll() is None
    assert "Traceback" not in server.log.read_text()


def test_the_token_is_required_on_every_request(token_server) -> None:  # noqa: ANN001
    url = token_server.url
    for path in ("/health", "/v1/models"):
        assert requests.get(url + path, timeout=10).status_code == 401
        wrong = requests.get(url + path, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
        assert requests.get(url + path, headers=token_server.headers(), timeout=10).status_code == 200
    refused = requests.post(url + "/v1/audio/generations", json={"prompt": "x"}, timeout=10)
    assert refused.status_code == 401
    assert generate(token_server, prompt="with a token", duration=0.3, seed=2).status_code == 200


def test_a_browser_without_the_token_gets_a_page_asking_for_it(token_server) -> None:  # noqa: ANN001
    page = requests.get(token_server.url + "/", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 401 and 'name="token"' in page.text
    wrong = requests.post(
        token_server.url + "/login", data={"token": "guess"}, allow_redirects=False, timeout=10
    )
    assert wrong.status_code == 401 and "fluxmusic_session" not in wrong.headers.get("set-cookie", "")
    login = requests.post(
        token_server.url + "/login", data={"token": token_server.token}, allow_redirects=False, timeout=10
    )
    assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
    assert token_server.token not in login.headers["set-cookie"]
    cookie = {"fluxmusic_session": login.cookies["fluxmusic_session"]}
    assert requests.get(token_server.url + "/health", cookies=cookie, timeout=10).status_code == 200
