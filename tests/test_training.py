"""The one training loop: a real folder trains a tiny model; resume, cancel, kill -9 and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_training_support import forget, make_image_folder, write_tiny_plugin

from studio.core import training
from studio.core.checkpoints import open_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.registry import Registry
from studio.core.training import TrainConfig

torch.set_num_threads(1)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    source = tmp_path / "plugsrc"
    package = write_tiny_plugin(source, tmp_path.name)
    monkeypatch.syspath_prepend(str(source))
    yield package, source
    forget(package)


def registry_for(package: str, models: Path | None = None) -> Registry:
    roots = [(models, "user")] if models else [(Path("/nonexistent"), "user")]
    return Registry(builtins=(package,), model_roots=roots)


def family_of(package: str):
    return __import__(f"{package}.actions", fromlist=["TinyFamily"])


def run_to_end(generator):
    steps = []
    try:
        while True:
            steps.append(next(generator))
    except StopIteration as stop:
        return stop.value, steps


def test_a_mixed_folder_trains_and_the_model_loads_and_generates(tiny, tmp_path, testdata):
    package, _ = tiny
    data = make_image_folder(tmp_path / "data", testdata)
    out = tmp_path / "models" / "tiny-run"
    engine = Engine(registry_for(package), device="cpu")
    params = {"data": str(data), "out": str(out), "steps": 40, "checkpoint_every": 20, "sample_every": 20}
    job = engine.execute(Job("test.tinyae", "train", params=params, seed=3))
    assert job.state == JobState.DONE, job.error

    losses = [metrics["loss"] for _, metrics in job.history]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    assert isinstance(job.preview, np.ndarray) and job.preview.dtype == np.uint8

    ckpt = open_checkpoint(out)
    info = ckpt.config["training"]
    assert info["steps"] == 40 and info["data"]["count"] == 24 + 5
    skipped = {Path(p).name: why for p, why in info["data"]["skipped"]}
    assert set(skipped) == {"notes.txt", "broken.png", "truncated_image.png"}
    assert "not an image" in skipped["notes.txt"]
    card = ckpt.card()
    assert ckpt.sha256 in card and "| steps | 40" in card and str(data) in card
    assert (out / "samples.png").exists()

    registry = registry_for(package, out.parent)
    generated = Engine(registry, device="cpu").execute(Job("test.tinyae", "generate", "tiny-run", {"count": 3}))
    assert generated.state == JobState.DONE, generated.error
    assert [im.shape for im in generated.result.images] == [(8, 8, 1)] * 3


def test_resume_from_a_mid_run_checkpoint_equals_an_uninterrupted_run(tiny, tmp_path):
    package, _ = tiny
    family = family_of(package).TinyFamily()
    data = (torch.rand(37, 1, 8, 8) * 2 - 1, torch.arange(37))  # (images, labels): tuples work too

    class Labelled:
        def __getattr__(self, name):
            return getattr(family, name)

        def loss(self, model, batch, generator):
            images, labels = batch
            noisy = images + 0.05 * torch.randn(images.shape, generator=generator)
            mse = ((model(noisy) - images) ** 2).mean() + 0.0 * labels.float().mean()
            return mse, {"mse": mse.detach()}

    config = TrainConfig(steps=30, batch_size=8, lr=1e-2, ema=0.9, warmup=5, schedule="cosine",
                         checkpoint_every=10, sample_every=10, log_every=4, preview_count=4, keep_state=True)
    straight, _ = run_to_end(training.train(Labelled(), data, config, tmp_path / "a"))

    interrupted = training.train(Labelled(), data, config, tmp_path / "b")
    for progress in interrupted:
        if progress.step == 25:  # last checkpoint was at step 20
            interrupted.close()
            break
    assert training.state_info(tmp_path / "b")["step"] == 20
    resumed, steps = run_to_end(training.train(Labelled(), data, config, tmp_path / "b", resume=True))
    assert steps[0].message == "resumed at step 20" and steps[1].step == 21

    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == straight.history
    assert [s for s, _ in straight.history] == [4, 8, 10, 12, 16, 20, 24, 28, 30]  # checkpoints close a window
    state_a, state_b = training.load_state(tmp_path / "a"), training.load_state(tmp_path / "b")
    assert all(torch.equal(state_a.tensors[k], state_b.tensors[k]) for k in state_a.tensors)


def test_loss_metrics_and_previews_arrive_on_their_schedule(tiny, tmp_path):
    package, _ = tiny
    config = TrainConfig(steps=12, batch_size=4, log_every=4, sample_every=6, checkpoint_every=100, preview_count=4)
    result, steps = run_to_end(training.train(family_of(package).TinyFamily(), torch.rand(10, 1, 8, 8), config,
                                              tmp_path / "run"))
    by_step = {p.step: p for p in steps[1:-1]}
    assert sorted(by_step) == list(range(1, 13))
    assert [s for s, p in by_step.items() if p.metrics] == [4, 8, 12]
    assert set(by_step[4].metrics) == {"loss", "mse", "grad_norm", "lr"}
    assert [s for s, p in by_step.items() if p.preview is not None] == [6]
    assert steps[-1].preview is not None and result.checkpoint.path == tmp_path / "run"


def test_cancel_stops_within_one_step_and_keeps_the_last_checkpoint(tiny, tmp_path, testdata):
    package, _ = tiny
    data = make_image_folder(tmp_path / "data", testdata)
    out = tmp_path / "run"
    engine = Engine(registry_for(package), device="cpu")
    job = Job("test.tinyae", "train", params={"data": str(data), "out": str(out), "steps": 1000,
                                              "checkpoint_every": 4})

    def cancel_at_step_6(event, j):
        if event == "progress" and j.step == 6:
            j.cancel()

    engine.subscribe(cancel_at_step_6)
    engine.execute(job)
    assert job.state == JobState.CANCELLED
    assert job.step == 6
    assert training.load_state(out).step == 4
    assert not (out / "model.safetensors").exists()

    resumed = Job("test.tinyae", "train", params={"data": str(data), "out": str(out), "steps": 8, "resume": True})
    Engine(registry_for(package), device="cpu").execute(resumed)
    assert resumed.state == JobState.DONE, resumed.error
    assert resumed.history[0][0] == 5 and open_checkpoint(out).config["training"]["steps"] == 8
    assert not (out / training.STATE_FILE).exists()  # a finished run folder is a plain model folder

    again = Job("test.tinyae", "train", params={"data": str(data), "out": str(out), "resume": True})
    Engine(registry_for(package), device="cpu").execute(again)
    assert again.state == JobState.FAILED and "no training checkpoint to resume from" in again.error


def test_empty_folder_and_folder_without_images_fail_with_one_sentence(tiny, tmp_path, testdata):
    package, _ = tiny
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    engine = Engine(registry_for(package), device="cpu")
    for folder, expected in (("empty", "the folder is empty"), ("junk", "none of the 1 files is a readable image")):
        job = engine.execute(Job("test.tinyae", "train", params={"data": str(tmp_path / folder),
                                                                  "out": str(tmp_path / "o")}))
        assert job.state == JobState.FAILED
        assert expected in job.error and "\n" not in job.error


def test_batches_come_from_one_permutation_per_epoch_for_tensors_and_datasets():
    from studio.core.training import _BatchSource

    data = torch.arange(10).float().view(10, 1)

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return data[i]

    tensors = _BatchSource(data, 7, 4, torch.device("cpu"), 0, 1)
    dataset = _BatchSource(Items(), 7, 4, torch.device("cpu"), 0, 1)
    seen = torch.cat([tensors.batch(k) for k in range(5)]).view(-1).long().tolist()  # 20 = two epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert all(torch.equal(tensors.batch(k), dataset.batch(k)) for k in range(5))
    halves = [_BatchSource(data, 7, 4, torch.device("cpu"), rank, 2).batch(3) for rank in (0, 1)]
    assert sorted(torch.cat(halves).view(-1).tolist()) == sorted(tensors.batch(3).view(-1).tolist())


def test_the_train_command_names_unknown_families_and_runs_a_known_one(tiny, tmp_path, testdata, capsys):
    from studio import train as train_command

    package, _ = tiny
    data = make_image_folder(tmp_path / "data", testdata, good=6)
    assert train_command.main(["nosuchfamily", "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "no plugin for family 'nosuchfamily'" in capsys.readouterr().err
    args = ["tinyae", "--plugin", package, "--data", str(data), "--out", str(tmp_path / "run"), "--device", "cpu",
            "--set", "steps=6", "--set", "log_every=3"]
    assert train_command.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3/6 loss=") and out[-1].startswith("trained 6 steps")
    assert open_checkpoint(tmp_path / "run").config["training"]["steps"] == 6
