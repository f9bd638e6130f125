"""A run folder has one writer at a time, its ``metrics.csv`` keeps its history through kills and resumes,
and the config a resume records is the one that runs (allowed changes applied, others refused)."""

from __future__ import annotations

import csv
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from train_helpers import REPO, metrics_rows, run_cli, tiny_config, write_toml, write_tones  # noqa: E402

from fluxmusic.training.checkpoint import latest_checkpoint, list_checkpoints, load_training_state  # noqa: E402
from fluxmusic.training.metrics import COLUMNS, MetricsLogger  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tones(tmp_path_factory.mktemp("tones"), n=4)


# -- one writer per run folder ----------------------------------------------------------------------------


def test_a_run_folder_locked_by_another_process_is_refused_at_once(
    tones: Path,
    tmp_path: Path,
    cli,
    one_line,  # noqa: ANN001
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "w") as held:  # another training holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        toml = write_toml(tiny_config(run, tones, run={"max_steps": 2}), tmp_path / "c.toml")
        started = time.perf_counter()
        status, _, err = cli("train", "--config", str(toml), "-q")
        assert time.perf_counter() - started < 5
    assert status == 2 and one_line(err), err
    assert "in use by another training (pid 4242)" in err, err
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing else was written


def test_two_trainings_of_one_folder_never_run_at_once(tones: Path, tmp_path: Path, cli, one_line) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    toml = write_toml(
        tiny_config(run, tones, run={"max_steps": 100000, "log_every": 1000}), tmp_path / "c.toml"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen(
        [sys.executable, "-m", "fluxmusic", "train", "--config", str(toml), "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints").is_dir():  # the first training is under way
            assert first.poll() is None and time.monotonic() < deadline, first.stderr and first.stderr.read()
            time.sleep(0.2)
        status, _, err = cli("train", "--config", str(toml), "--auto-resume", "-q")
        assert status == 2 and one_line(err), err
        assert f"in use by another training (pid {first.pid})" in err, err
        assert first.poll() is None  # the first one goes on undisturbed
    finally:
        first.kill()
        first.wait()


# -- metrics.csv keeps its history -------------------------------------------------------------------------


def test_the_metrics_header_is_on_disk_before_the_first_row(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, 0, tensorboard=False, max_steps=10)
    try:
        assert (tmp_path / "logs" / "metrics.csv").read_text().splitlines() == [",".join(COLUMNS)]
    finally:
        logger.close()


def _rows(path: Path, steps: list[int]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({"step": s, "loss": 1.0 / s} for s in steps)


def test_resume_keeps_the_rows_up_to_its_step_and_never_truncates_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logs" / "metrics.csv"
    path.parent.mkdir()
    _rows(path, [2, 4, 6])
    before = path.read_text()

    def killed(self: csv.DictWriter, rows: object) -> None:  # the process dies while rewriting the log
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(csv.DictWriter, "writerows", killed)
        with pytest.raises(KeyboardInterrupt):
            MetricsLogger(tmp_path, 4, tensorboard=False, max_steps=10)
    assert path.read_text() == before  # nothing lost
    MetricsLogger(tmp_path, 4, tensorboard=False, max_steps=10).close()
    assert [r["step"] for r in metrics_rows(tmp_path)] == ["2", "4"]
    assert not [p for p in path.parent.iterdir() if p.name != "metrics.csv"]


def test_a_log_without_its_header_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "metrics.csv"
    path.parent.mkdir()
    _rows(path, [2, 4, 6])
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))  # left by a kill before the fix
    MetricsLogger(tmp_path, 4, tensorboard=False, max_steps=10).close()
    assert [r["step"] for r in metrics_rows(tmp_path)] == ["2", "4"]


def test_sigkill_before_the_first_row_then_resume_keeps_one_history(tones: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    toml = write_toml(
        tiny_config(run, tones, run={"checkpoint_every": 1, "log_every": 2}), tmp_path / "c.toml"
    )
    killed = run_cli("train", "--config", str(toml), "-q", env={"FLUXMUSIC_FAULT": "kill-after-step:1"})
    assert killed.returncode == -9, killed.stderr
    assert (run / "logs" / "metrics.csv").read_text().startswith("step,epoch,loss")
    status, _, err = cli("train", "--resume", str(run), "--set", "run.max_steps=4", "-q")
    assert status == 0, err
    assert [r["step"] for r in metrics_rows(run)] == ["2", "4"]


# -- the recorded config is the one that runs ---------------------------------------------------------------


def test_resume_applies_optimizer_changes_and_records_them(tones: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    toml = write_toml(tiny_config(run, tones, run={"max_steps": 2}), tmp_path / "c.toml")
    assert cli("train", "--config", str(toml), "-q")[0] == 0
    changes = ["optim.lr=0.01", "optim.betas=[0.8, 0.95]", "optim.weight_decay=0.1", "run.max_steps=4"]
    status, _, err = cli("train", "--resume", str(run), *(a for c in changes for a in ("--set", c)), "-q")
    assert status == 0, err
    state = load_training_state(latest_checkpoint(run))
    group = state["optimizer"]["param_groups"][0]
    assert group["lr"] == 0.01 and tuple(group["betas"]) == (0.8, 0.95) and group["weight_decay"] == 0.1
    assert state["scheduler"]["base_lrs"] == [0.01]
    assert [float(r["lr"]) for r in metrics_rows(run)] == [1e-3, 0.01]
    saved = (run / "train_config.json").read_text()
    assert '"lr": 0.01' in saved and '"weight_decay": 0.1' in saved
    assert [s for s, _ in list_checkpoints(run)] == [2, 4]
