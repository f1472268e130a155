"""A kill -9 while the training loop writes a checkpoint leaves the previous one loadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_training_support import forget, make_image_folder, write_tiny_plugin

from studio.core import training

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tmp_path):
    source = tmp_path / "plugsrc"
    package = write_tiny_plugin(source, tmp_path.name)
    yield package, source
    forget(package)


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_checkpoint(tiny, tmp_path, testdata):
    package, source = tiny
    data = make_image_folder(tmp_path / "data", testdata, good=8)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "studio.train", "tinyae", "--plugin", package, "--data", str(data),
               "--out", str(out), "--device", "cpu", "--set", "steps=100000", "--set", "checkpoint_every=1",
               "--set", "padding_mb=48", "--set", "sample_every=100000"]
    state = out / training.STATE_FILE

    def partial_writes() -> list[Path]:
        return [p for p in out.glob(f".{training.STATE_FILE}.*.tmp") if p.exists()]

    for attempt in range(5):  # until a kill lands while a checkpoint is being written
        for leftover in partial_writes():
            leftover.unlink()
        process = subprocess.Popen(command + (["--resume"] if attempt else []), env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                if state.exists() and partial_writes():
                    os.kill(process.pid, signal.SIGKILL)
                    break
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
        if partial_writes():
            break
    assert partial_writes(), "no kill landed during a checkpoint write in 5 tries"
    saved = training.load_state(out)
    assert saved.step >= 1 and saved.config["checkpoint_every"] == 1
    assert saved.tensors["model.padding"].numel() == 48 * 262144
