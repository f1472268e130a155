"""The training panel trains through the engine and shows the folder, curves, previews and state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training_support import forget, make_image_folder, write_tiny_plugin

from studio.core import training
from studio.core.engine import Engine, JobState
from studio.core.registry import Registry
from studio.qt.training_panel import TrainingPanel, waveform_image

torch.set_num_threads(1)
LONG = 60_000  # ms; the machine may be busy


@pytest.fixture
def setup(tmp_path, monkeypatch, testdata, qtbot):
    source = tmp_path / "plugsrc"
    package = write_tiny_plugin(source, tmp_path.name)
    monkeypatch.syspath_prepend(str(source))
    registry = Registry(builtins=(package,), model_roots=[(tmp_path / "models", "user")])
    engine = Engine(registry, device="cpu")
    data = make_image_folder(tmp_path / "data", testdata)
    panels = []

    def make_panel() -> TrainingPanel:
        panel = TrainingPanel(registry, engine)
        qtbot.addWidget(panel)
        panel.resize(1000, 700)
        panels.append(panel)
        return panel

    yield make_panel, data, tmp_path
    engine.shutdown()
    forget(package)


def test_the_panel_summarises_the_folder_trains_and_draws_curves(setup, qtbot):
    make_panel, data, tmp_path = setup
    panel = make_panel()
    assert panel.family.currentData() == "test.tinyae"
    panel.set_data_folder(data)
    qtbot.waitUntil(lambda: panel.summary is not None, timeout=LONG)
    assert panel.summary_label.text().startswith("29 images of 32 files")
    assert panel.skipped.count() == 3 and not panel.folder_preview.pixmap().isNull()
    text = panel.summary_label.text()
    assert "1 class: bars (24)" in text and "will resize 29 images to 8x8" in text and "to gray" in text

    panel.set_run_folder(tmp_path / "run")
    panel.form.set_values({"steps": 20, "log_every": 5, "sample_every": 10, "checkpoint_every": 10})
    with qtbot.waitSignal(panel.jobFinished, timeout=LONG) as finished:
        panel.train_button.click()
    job = finished.args[0]
    assert job.state == JobState.DONE, job.error
    xs, ys = panel._curves["loss"].getData()
    assert list(xs) == [5, 10, 15, 20] and ys[-1] < ys[0]
    assert set(panel._curves) == {"loss", "mse", "grad_norm"}
    assert not panel.sample_view.pixmap().isNull()
    assert panel.progress.value() == 20 and panel.status.text().startswith("Finished")
    assert "from the last run here" in panel.estimate.text()
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_presets_scale_the_default_steps(setup):
    make_panel, _, _ = setup
    panel = make_panel()
    panel.presets.button(0).click()
    assert panel.form.values()["steps"] == 10
    panel.presets.button(2).click()
    assert panel.form.values()["steps"] == 160
    panel.presets.button(1).click()
    assert panel.form.values()["steps"] == 40


def test_pause_resume_stop_then_resume_the_run_from_its_checkpoint(setup, qtbot):
    make_panel, data, tmp_path = setup
    panel = make_panel()
    panel.set_data_folder(data)
    panel.set_run_folder(tmp_path / "run")
    panel.form.set_values({"steps": 5000, "checkpoint_every": 3, "log_every": 1})
    job = panel.start()
    qtbot.waitUntil(lambda: job.step >= 4, timeout=LONG)
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.status.text().startswith("Paused at step"), timeout=LONG)
    paused_at = job.step
    assert panel.pause_button.text() == "Resume"
    panel.pause_button.click()
    qtbot.waitUntil(lambda: job.step > paused_at, timeout=LONG)
    with qtbot.waitSignal(panel.jobFinished, timeout=LONG):
        panel.stop_button.click()
    assert job.state == JobState.CANCELLED
    assert panel.status.text().startswith(f"Stopped at step {job.step}")
    saved = training.state_info(tmp_path / "run")["step"]
    assert 3 <= saved <= job.step and f"stopped at step {saved} of 5000" in panel.run_state.text()
    assert panel.resume_button.isEnabled()

    fresh = make_panel()
    fresh.set_run_folder(tmp_path / "run", adopt_settings=True)
    assert fresh.data_edit.text() == str(data)
    assert fresh.form.values()["checkpoint_every"] == 3
    fresh.form.set_values({"steps": saved + 3})
    with qtbot.waitSignal(fresh.jobFinished, timeout=LONG) as finished:
        fresh.resume_button.click()
    resumed = finished.args[0]
    assert resumed.state == JobState.DONE, resumed.error
    assert resumed.history[0][0] == saved + 1 and resumed.params["resume"] is True


def test_an_empty_folder_is_reported_in_the_panel(setup, qtbot):
    make_panel, _, tmp_path = setup
    (tmp_path / "empty").mkdir()
    panel = make_panel()
    panel.set_data_folder(tmp_path / "empty")
    qtbot.waitUntil(lambda: "the folder is empty" in panel.summary_label.text(), timeout=LONG)
    assert panel.summary is None and not panel.skipped.isVisible()


def test_waveform_thumbnails_draw_the_envelope():
    samples = np.zeros(1000, np.float32)
    samples[500:] = np.sin(np.arange(500)) * 0.9
    image = waveform_image(samples, 100, 21)
    assert image.shape == (21, 100, 3)
    quiet, loud = image[:, :45], image[:, 55:]
    assert (quiet[:10] == 255).all() and (loud[1] != 255).any()


def test_the_time_estimate_comes_from_a_model_of_the_family_trained_on_this_device(tmp_path):
    from studio.core.checkpoints import save_checkpoint
    from studio.qt.training_panel import estimate_seconds

    training_info = {"steps": 100, "seconds": 50.0, "device": "cpu", "recipe": {"batch_size": 8}}
    save_checkpoint(tmp_path / "models" / "m1", {"w": np.zeros(2, np.float32)},
                    {"id": "m1", "plugin": "test.family", "training": training_info})
    registry = Registry(builtins=(), model_roots=[(tmp_path / "models", "user")])
    assert estimate_seconds(registry, "test.family", 200, 16, "cpu") == (200.0, "m1")
    assert estimate_seconds(registry, "test.family", 200, 16, "cuda") is None
    assert estimate_seconds(registry, "other.family", 200, 16, "cpu") is None
