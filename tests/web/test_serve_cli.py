"""``fluxmusic serve``'s flags, its loopback rule and its warning (no server is started here)."""

from __future__ import annotations

import pytest

from fluxmusic.cli import build_parser, main
from fluxmusic.cli.serve import is_loopback


def test_the_flags_relied_on_exist_with_their_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.model, args.host, args.port, args.token) == ("bundled", "127.0.0.1", 7860, None)
    assert (args.max_duration, args.queue_size) == (30.0, 8)
    args = build_parser().parse_args(
        ["serve", "--model", "m", "--host", "::1", "--port", "1", "--token", "t", "--max-duration", "5",
         "--queue-size", "2"]
    )  # fmt: skip
    assert (args.model, args.host, args.port, args.token, args.max_duration, args.queue_size) == (
        "m", "::1", 1, "t", 5.0, 2
    )  # fmt: skip


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False),
])  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_public_host_without_a_token_warns(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    status = main(["serve", "--host", "0.0.0.0", "--model", str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert "warning" in out and "--token" in out
    assert status == 2 and "error" in err  # the model is missing: one line, before anything listens


@pytest.mark.parametrize(
    "flags", [["--queue-size", "0"], ["--max-duration", "nan"], ["--max-duration", "-3"]]
)
def test_bad_limits_are_refused(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", *flags])
    assert "must be a positive" in capsys.readouterr().err
