"""Sharded generation: ``torchrun --nproc-per-node 2 -m fluxmusic generate`` with 2 gloo processes on CPU.

Every row is written exactly once under its stable name, with its sidecar; a run killed part-way resumes
without touching finished outputs (same inode and mtime) and writes the rest; the clips are the ones an
unsharded run makes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from fluxmusic.pipeline.batch import MANIFEST, Ranks, pending_batches, run_seed, shard, stable_paths
from fluxmusic.sampling import SampleSettings

PROMPTS = [f"a {word} piano piece" for word in ("calm", "fast", "slow", "bright", "dark", "soft")]
GENERATE = ("--steps", "2", "--duration", "0.64", "--seed", "11", "--batch-size", "1", "-q")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline) -> Path:  # noqa: ANN001
    return tiny_pipeline.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("# six prompts\n" + "\n".join(PROMPTS) + "\n")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _command(model_dir: Path, prompt_file: Path, out: Path, *extra: str, nproc: int = 2) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cli = ["-m", "fluxmusic", "generate", "--model", str(model_dir), "--prompt-file", str(prompt_file)]
    return [*launch, *cli, "-o", str(out), *GENERATE, *extra]


def _outputs(out: Path) -> list[Path]:
    return sorted(out.glob("*.wav"))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_shards_cover_every_row_once() -> None:
    for rows in (1, 5, 6, 7):
        for world in (1, 2, 3, 4):
            got = [
                i for r in range(world) for i in shard(rows, Ranks(rank=r, world=world, local_world=world))
            ]
            assert got == list(range(rows))


def test_pending_batches_skip_finished_rows_and_keep_seeds(tmp_path: Path) -> None:
    rows = PROMPTS[:5]
    paths = stable_paths(tmp_path, rows)
    for i in (1, 2):  # rows 1 and 2 finished
        paths[i].write_bytes(b"RIFF")
        paths[i].with_suffix(".json").write_text(
            json.dumps({"prompt": rows[i], "seed": 7 + i, "fluxmusic_version": "x"})
        )
    settings = SampleSettings(duration=1.0, seed=7, negative_prompt=tuple(f"n{i}" for i in range(5)))
    batches = list(pending_batches(rows, range(5), paths, settings, batch_size=2))
    assert [b for b, _ in batches] == [[0], [3, 4]]
    assert [s.seed for _, s in batches] == [7, 10] and batches[1][1].negative_prompt == ("n3", "n4")


def test_run_record_keeps_the_seed_and_refuses_other_prompts(tmp_path: Path) -> None:
    seed = run_seed(tmp_path, PROMPTS, None, write=True)
    assert run_seed(tmp_path, PROMPTS, None, write=False) == seed == run_seed(tmp_path, PROMPTS, seed, True)
    with pytest.raises(ValueError, match="other prompts"):
        run_seed(tmp_path, PROMPTS[:2], None, write=True)
    with pytest.raises(ValueError, match="--seed"):
        run_seed(tmp_path, PROMPTS, seed + 1, write=True)
    assert json.loads((tmp_path / MANIFEST).read_text())["rows"] == len(PROMPTS)


def test_torchrun_writes_each_row_once_and_resumes_after_a_kill(
    model_dir: Path, prompt_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen(
        _command(model_dir, prompt_file, out),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the kill reaches both ranks
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.02)
    if first.poll() is None:
        os.killpg(first.pid, signal.SIGKILL)
    log = first.communicate()[0].decode(errors="replace")
    sidecars = sorted(p for p in out.glob("*.json") if p.name != MANIFEST)
    assert sidecars, log
    if len(sidecars) == len(PROMPTS):  # the run beat the kill: stop it "before" its last two rows
        for path in sidecars[-2:]:
            path.unlink()
            path.with_suffix(".wav").unlink()
    sidecars[0].unlink()  # a row whose audio landed but not its sidecar counts as unfinished
    finished = {
        p.with_suffix(".wav"): _stamp(p.with_suffix(".wav")) for p in out.glob("*.json") if p.name != MANIFEST
    }
    assert 0 < len(finished) < len(PROMPTS)

    done = subprocess.run(_command(model_dir, prompt_file, out), env=_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    written = [Path(line) for line in done.stdout.decode().split()]
    assert sorted(written) == sorted(set(stable_paths(out, PROMPTS)) - set(finished))  # the rest, once each
    assert {p: _stamp(p) for p in finished} == finished  # finished outputs untouched
    wavs = _outputs(out)
    assert [p.name for p in wavs] == [p.name for p in stable_paths(out, PROMPTS)]
    assert not list(out.glob(".*.tmp"))
    sides = [json.loads(p.with_suffix(".json").read_text()) for p in wavs]
    assert [s["prompt"] for s in sides] == PROMPTS and [s["seed"] for s in sides] == list(range(11, 17))
    assert {s["world_size"] for s in sides} == {2} and {s["rank"] for s in sides} == {0, 1}

    single = tmp_path / "single"
    alone = subprocess.run(_command(model_dir, prompt_file, single, nproc=1), env=_env(), capture_output=True)
    assert alone.returncode == 0, alone.stderr.decode()
    for a, b in zip(wavs, _outputs(single), strict=True):
        assert (sf.read(a)[0] == sf.read(b)[0]).all()  # sharding and resuming change no clip

    again = subprocess.run(
        _command(model_dir, prompt_file, out), env=_env(), capture_output=True, timeout=300
    )
    assert again.returncode == 0 and again.stdout.decode().split() == []  # nothing left to do


def test_resume_flag_refuses_a_file_output(model_dir: Path, prompt_file: Path, tmp_path: Path) -> None:
    from fluxmusic.cli import main

    args = ["generate", "--model", str(model_dir), "--prompt-file", str(prompt_file), *GENERATE, "--resume"]
    assert main([*args, "-o", str(tmp_path / "one.wav")]) == 2
    assert main([*args, "-o", str(tmp_path / "folder"), "--init-audio", str(prompt_file)]) == 2
