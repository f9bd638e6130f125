"""``gradio_client`` calls the UI's named endpoint ``/generate`` and gets audio."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

pytest.importorskip("gradio_client")


def test_gradio_client_generates_through_the_ui_endpoint(server, tmp_path) -> None:  # noqa: ANN001
    from gradio_client import Client

    client = Client(server.url + "/", verbose=False, download_files=str(tmp_path), analytics_enabled=False)
    audio, downloads, picture, settings, _ = client.predict(
        "a slow organ chorale", "", 3, 4.0, "euler", 21, None, 0.8, api_name="/generate"
    )
    data, rate = sf.read(audio)
    assert rate == 16000 and data.shape == (round(0.8 * 16000),)
    assert sorted(p.rsplit(".", 1)[1] for p in downloads) == ["flac", "wav"]
    settings = settings if isinstance(settings, dict) else json.loads(settings)
    assert settings["seed"] == 21 and settings["steps"] == 3 and picture.endswith(".png")
    from gradio_client import handle_file

    varied, _, _, settings, history = client.predict(
        "a slow organ chorale", "", 3, 4.0, "euler", 22, None, handle_file(audio), 0.5, api_name="/variation"
    )
    settings = settings if isinstance(settings, dict) else json.loads(settings)
    assert settings["operation"] == "variation" and sf.read(varied)[0].shape == data.shape
