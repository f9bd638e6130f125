"""SampleSettings: resolved once (caller > model defaults > fallbacks), checked once, round-trips as JSON."""

from __future__ import annotations

import json

import pytest

from fluxmusic.sampling import FALLBACKS, SampleSettings, SettingsError, check_defaults


def test_caller_values_override_model_defaults_which_override_fallbacks() -> None:
    defaults = {"steps": 8, "guidance": 2.5, "shift": 3.0}
    s = SampleSettings.resolve(defaults, default_duration=5.12, steps=12, sampler=None, seed=7)
    assert (s.steps, s.guidance, s.shift, s.seed) == (12, 2.5, 3.0, 7)
    assert s.sampler == FALLBACKS["sampler"] and s.guidance_eta == FALLBACKS["guidance_eta"]
    assert s.duration == 5.12 and s.negative_prompt == "" and s.guidance_interval is None


def test_settings_are_frozen_and_normalised() -> None:
    s = SampleSettings(duration=2, guidance_interval=[0.2, 0.8], negative_prompt=["a", "b"], bpm=[120, None])
    assert s.duration == 2.0 and isinstance(s.duration, float)
    assert s.guidance_interval == (0.2, 0.8) and s.negative_prompt == ("a", "b") and s.bpm == (120.0, None)
    with pytest.raises(AttributeError):
        s.steps = 3  # type: ignore[misc]


def test_json_round_trip() -> None:
    s = SampleSettings(duration=3.0, steps=4, guidance_interval=(0.5, 1.0), seed=9, bpm=(90.0, None))
    data = json.loads(json.dumps(s.to_dict()))
    assert data["guidance_interval"] == [0.5, 1.0]
    assert SampleSettings.from_dict({**data, "prompt": "ignored", "model": "ignored"}) == s


@pytest.mark.parametrize(
    "given,error,needle",
    [
        ({"steps": 0}, SettingsError, "steps must be >= 1"),
        ({"steps": 2.7}, TypeError, "steps must be an integer"),
        ({"steps": True}, TypeError, "steps must be an integer"),
        ({"seed": "7"}, TypeError, "seed must be an integer"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"seed": -1}, SettingsError, "seed must be in"),
        ({"seed": 2**64}, SettingsError, "seed must be in"),
        ({"bpm": "fast"}, TypeError, "bpm must be a number"),
        ({"bpm": 1000}, SettingsError, "bpm must be between"),
        ({"bpm": [120, "x"]}, TypeError, "bpm must be a number"),
        ({"guidance": float("nan")}, SettingsError, "guidance must be a finite number"),
        ({"duration": 0.0}, SettingsError, "duration must be a positive"),
        ({"duration": 99.0}, SettingsError, r"duration must be in \(0, 20"),
        ({"shift": 0.0}, SettingsError, "shift must be a positive"),
        ({"sampler": "ddim"}, SettingsError, "sampler 'ddim' is unknown"),
        ({"negative_prompt": 3}, TypeError, "negative_prompt must be a string"),
        ({"guidance_interval": (0.8, 0.2)}, ValueError, "guidance interval must satisfy"),
        ({"guidance_eta": -1.0}, ValueError, "guidance eta must be"),
        ({"temperature": 1.0}, TypeError, "unknown sampling settings"),
    ],
)
def test_bad_values_name_the_argument(given: dict, error: type, needle: str) -> None:
    with pytest.raises(error, match=needle) as info:
        SampleSettings.resolve({}, default_duration=1.0, max_duration=20.48, **given)
    if error is SettingsError:
        assert str(info.value).startswith(info.value.setting)


def test_model_defaults_are_checked_and_named() -> None:
    assert check_defaults({"guidance_interval": (0.5, 1.0), "steps": 8}) == {
        "guidance_interval": [0.5, 1.0],
        "steps": 8,
    }
    with pytest.raises(ValueError, match="my.json: unknown sampling defaults"):
        check_defaults({"stepz": 3}, "my.json")
    with pytest.raises(ValueError, match="my.json: steps must be >= 1"):
        check_defaults({"steps": 0}, "my.json")
    with pytest.raises(ValueError, match="must be a table"):
        check_defaults([1, 2], "my.json")  # type: ignore[arg-type]
