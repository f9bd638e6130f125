"""A catalogue of bad inputs to ``fluxmusic train`` and ``fluxmusic preprocess``: each is refused in one line.

Every row of :data:`BAD_INPUTS` is a mistake a user might make (a config file, a ``--set``, an option, a
folder, a damaged checkpoint, a change that a resume cannot honour). The command must exit with status 2,
print exactly one line on stderr (no traceback) naming the problem, and leave the finished runs it was
pointed at as they were. Add a row whenever a new way to be wrong is found.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from train_helpers import component_config, tiny_config, write_toml, write_tones  # noqa: E402

from fluxmusic.cli import main  # noqa: E402

VAE_SIZES = {
    "run": {"trainer": "vae", "max_steps": 2},
    "model": {"block_out_channels": [8, 16, 16], "norm_num_groups": 8, "mid_block_add_attention": False},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A finished 2-step tiny transformer run and a finished 2-step tiny VAE run (shared, copied per test)."""
    tmp = tmp_path_factory.mktemp("finished")
    manifest = write_tones(tmp / "data", n=4)
    config = write_toml(tiny_config(tmp / "run", manifest, run={"max_steps": 2}), tmp / "train.toml")
    assert main(["train", "--config", str(config), "-q"]) == 0
    vae = write_toml(component_config(tmp / "data", tmp / "vae", 0.32, VAE_SIZES), tmp / "vae.toml")
    assert main(["train", "--config", str(vae), "-q"]) == 0
    return SimpleNamespace(manifest=manifest, run=tmp / "run", vae=tmp / "vae")


def _damage(path: Path, keep: int = 40) -> Path:
    path.write_bytes(path.read_bytes()[:keep])
    return path


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


Argv = Callable[[SimpleNamespace], list[str]]


def new(*args: str) -> Argv:
    """``fluxmusic train`` of a new run (``--config``) with ``args``."""
    return lambda p: ["train", "--config", p.config, *args]


def config_file(name: str, data: bytes) -> Argv:
    """``fluxmusic train`` of a config file holding ``data``."""
    return lambda p: ["train", "--config", _write(p.tmp / name, data)]


def resume(which: str, *args: str) -> Argv:
    """``fluxmusic train --resume`` of the finished transformer (``run``) or VAE (``vae``) run."""
    return lambda p: ["train", "--resume", getattr(p, which), *args]


def damaged(which: str, name: str) -> Argv:
    """``--resume`` of a finished run whose checkpoint file ``name`` was cut short."""
    return lambda p: ["train", "--resume", p.damage(which, name)]


def preprocess(*args: str, output: str = "out") -> Argv:
    """``fluxmusic preprocess`` of the tones into ``output`` (a folder name, or ``file``)."""
    return lambda p: ["preprocess", p.manifest, getattr(p, output), "--config", p.config, *args]


BAD_INPUTS: list[tuple[str, Argv, str]] = [
    # (id, argv from the paths of the test, a fragment of the one-line message)
    ("run-dir-is-a-file", lambda p: [*new()(p), "--run-dir", p.file], "is a file"),
    ("run-dir-under-a-file", lambda p: [*new()(p), "--run-dir", f"{p.file}/run"], "cannot create the run"),
    ("config-binary", config_file("b.toml", b"\x89PNG\r\n\x1a\n\xff\x00"), "b.toml is not UTF-8 text"),
    ("config-latin1", config_file("l.toml", "[run]\n# café\n".encode("latin-1")), "l.toml is not UTF-8 text"),
    ("config-nul", config_file("n.toml", b"[run]\nseed = 1\x00\n"), "cannot parse"),
    ("lr-nan", new("--set", "optim.lr=nan"), "optim.lr must be a finite number"),
    ("lr-inf", new("--set", "optim.lr=inf"), "optim.lr must be a finite number"),
    ("lr-negative", new("--set", "optim.lr=-1e-3"), "optim.lr must be positive"),
    ("betas-nan", new("--set", "optim.betas=[nan, 0.9]"), "optim.betas[] must be a finite number"),
    ("duration-inf", new("--set", "data.duration=inf"), "data.duration must be a finite number"),
    ("set-injects-a-table", new("--set", "run.seed=1\n[evil]\nx=1"), "--set takes one line"),
    ("set-value-with-newline", new("--set", "sample.negative_prompt=a\nb"), "--set takes one line"),
    ("max-nonfinite-zero", new("--set", "run.max_nonfinite=0"), "run.max_nonfinite must be >= 1"),
    ("preprocess-batch-size-0", preprocess("--batch-size", "0"), "--batch-size must be a positive integer"),
    ("preprocess-batch-size-negative", preprocess("--batch-size", "-3"), "--batch-size must be a positive"),
    ("preprocess-shard-size-0", preprocess("--shard-size", "0"), "--shard-size must be a positive integer"),
    ("preprocess-output-is-a-file", preprocess(output="file"), "is a file"),
    ("resume-corrupt-model", damaged("run", "model.safetensors"), "model.safetensors"),
    ("resume-corrupt-ema", damaged("run", "ema.safetensors"), "ema.safetensors"),
    ("resume-truncated-state", damaged("run", "training_state.pt"), "training_state.pt"),
    ("resume-changes-batch-size", resume("run", "--set", "optim.batch_size=1"), "cannot change optim.batch"),
    ("resume-changes-the-model", resume("run", "--set", "model.overrides={depth_single_blocks=1}"),
     "cannot change model.overrides"),
    ("resume-changes-the-data", resume("run", "--set", "data.shuffle=false"), "cannot change data.shuffle"),
    ("resume-lr-nan", resume("run", "--set", "optim.lr=nan"), "optim.lr must be a finite number"),
    ("auto-resume-changed-config", lambda p: [*new("--auto-resume", "--set", "optim.grad_accum=1")(p),
                                              "--run-dir", p.run], "cannot change optim.grad_accum"),
    ("vae-resume-changes-the-model", resume("vae", "--set", "model.latent_channels=4"),
     "cannot change model.latent_channels"),
    ("vae-resume-corrupt-model", damaged("vae", "model.safetensors"), "model.safetensors"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "fragment"), [row[1:] for row in BAD_INPUTS], ids=[r[0] for r in BAD_INPUTS]
)
def test_bad_training_input_is_one_line(
    finished: SimpleNamespace,
    tmp_path: Path,
    cli,
    one_line,
    argv: Argv,
    fragment: str,  # noqa: ANN001
) -> None:
    run, vae = tmp_path / "run", tmp_path / "vae"
    shutil.copytree(finished.run, run)
    shutil.copytree(finished.vae, vae)
    file = tmp_path / "file.txt"
    file.write_text("not a folder\n")

    def damage(which: str, name: str) -> str:
        _damage((tmp_path / which) / "checkpoints" / "step_000002" / name)
        return str(tmp_path / which)

    config = write_toml(
        tiny_config(tmp_path / "new", finished.manifest, run={"max_steps": 2}), tmp_path / "c.toml"
    )
    paths = SimpleNamespace(
        tmp=tmp_path, run=str(run), vae=str(vae), file=str(file), out=str(tmp_path / "out"),
        manifest=str(finished.manifest), config=str(config), damage=damage,
    )  # fmt: skip
    before = {
        r: ((r / "train_config.json").read_text(), sorted(p.name for p in r.rglob("*"))) for r in (run, vae)
    }
    status, _, err = cli(*argv(paths))
    assert status == 2, err
    assert one_line(err), err
    assert fragment in err, err
    for r, (config, files) in before.items():  # a refused run is left as it was
        assert (r / "train_config.json").read_text() == config
        assert sorted(p.name for p in r.rglob("*") if p.name != ".lock") == [f for f in files if f != ".lock"]
    assert file.read_text() == "not a folder\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "new").exists()
    assert json.loads((run / "train_config.json").read_text())["optim"]["batch_size"] == 2
