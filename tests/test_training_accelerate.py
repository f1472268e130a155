"""The same training recipe under HF Accelerate: two CPU processes (gloo) match one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_training_support import forget, make_image_folder, write_tiny_plugin

from studio.core.checkpoints import open_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.registry import Registry

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    source = tmp_path / "plugsrc"
    package = write_tiny_plugin(source, tmp_path.name)
    monkeypatch.syspath_prepend(str(source))
    yield package, source
    forget(package)


def test_two_cpu_processes_train_the_same_model_as_one(tiny, tmp_path, testdata):
    package, source = tiny
    data = make_image_folder(tmp_path / "data", testdata)
    settings = ["steps=12", "checkpoint_every=6", "sample_every=6", "batch_size=8"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    launch = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
              "-m", "studio.train", "tinyae", "--plugin", package, "--data", str(data), "--out", str(tmp_path / "two")]
    done = subprocess.run(launch + [a for s in settings for a in ("--set", s)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 12 steps") == 1  # only the main process reports

    params = {"data": str(data), "out": str(tmp_path / "one"), **{k: int(v) for k, v in (s.split("=") for s in settings)}}
    job = Engine(Registry(builtins=(package,)), device="cpu").execute(Job("test.tinyae", "train", params=params, seed=0))
    assert job.state == JobState.DONE, job.error

    two = open_checkpoint(tmp_path / "two")
    assert two.config["training"]["processes"] == 2
    one_weights, two_weights = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(two.weights))
    for name in one_weights:
        torch.testing.assert_close(two_weights[name], one_weights[name], rtol=1e-4, atol=1e-5)
