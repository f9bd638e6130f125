"""A full disk while a checkpoint is written: one line naming the file and the free space, no half-written
``.tmp-step_*`` folder left behind, and the previous checkpoints intact (``latest`` still names one)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from train_helpers import checkpoint_is_finite, tiny_config, write_toml, write_tones  # noqa: E402

from fluxmusic.training.checkpoint import list_checkpoints, load_training_state  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tones(tmp_path_factory.mktemp("tones"), n=4)


@pytest.mark.parametrize(
    ("writer", "file"), [("save_file", "model.safetensors"), ("write_state", "training_state.pt")]
)
def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(
    tones: Path,
    tmp_path: Path,
    cli,
    one_line,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    file: str,  # noqa: ANN001
) -> None:
    import fluxmusic.training.checkpoint as checkpoint

    real, calls = getattr(checkpoint, writer), [0]

    def full_disk(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] > (2 if writer == "save_file" else 1):  # checkpoint 2 is written, checkpoint 4 is not
            Path(args[1]).write_bytes(b"half")  # a partial file, as a real full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, writer, full_disk)
    run = tmp_path / "run"
    config = tiny_config(run, tones, run={"max_steps": 6, "checkpoint_every": 2})
    status, _, err = cli("train", "--config", str(write_toml(config, tmp_path / "c.toml")), "-q")
    assert status == 2 and one_line(err), err
    assert "step_000004-" in err and file in err and "No space left on device" in err and "MB free" in err, (
        err
    )
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert [s for s, _ in list_checkpoints(run)] == [2]
    assert (run / "latest").read_text().strip() == "step_000002"
    assert checkpoint_is_finite(run / "checkpoints" / "step_000002")
    assert load_training_state(run / "checkpoints" / "step_000002")["step"] == 2
