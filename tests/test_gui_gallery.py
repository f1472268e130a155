"""Gallery, audio results, training from the GUI, layout and menus."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from studio.core import media
from studio.core.engine import Job, JobState
from studio.core.plugin import Audio, Result
from studio.qt.main_window import MainWindow

PPCA = "studio.ppca"


@pytest.fixture
def window(qtbot):
    win = MainWindow(device="cpu")
    qtbot.addWidget(win)
    win.show()
    # Connected after the window's own slot, so an event listed here was handled by the window.
    win.handled = []
    win.engine_bridge.jobEvent.connect(lambda event, job: win.handled.append((event, job.id)))
    yield win
    win.close()


def wait_handled(qtbot, window: MainWindow, job: Job) -> None:
    finished = ("done", "failed", "cancelled")
    qtbot.waitUntil(lambda: any(e in finished and i == job.id for e, i in window.handled), timeout=30000)


def generate(qtbot, window: MainWindow, model_id: str, count: int = 1) -> Job:
    assert window.models.select(PPCA, model_id)
    window.params.select_action("generate")
    window.params.form.fields["count"].set_value(count)
    window.params.run()
    job = window.engine.jobs[-1]
    wait_handled(qtbot, window, job)
    assert job.state == JobState.DONE, job.error
    return job


def add_audio_record(window: MainWindow, seconds: float = 0.25) -> int:
    rate = 16000
    t = np.arange(int(rate * seconds), dtype=np.float32) / rate
    audio = Audio((0.5 * np.sin(2 * np.pi * 440 * t))[:, None].astype(np.float32), rate)
    job = Job("studio.wavenet", "generate", "tone", {"note": 69}, seed=3)
    job.started, job.finished, job.resolved_device = time.monotonic(), time.monotonic(), "cpu"
    return window.project.add_job(job, Result(audio=[audio]))[0]


def test_filter_by_model_and_open_by_double_click(qtbot, window):
    mnist = generate(qtbot, window, "ppca-mnist", 2)
    emoji = generate(qtbot, window, "ppca-emoji", 1)
    qtbot.waitUntil(lambda: len(window.gallery.model.records) == 3)
    combo = window.gallery.model_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["All models", "ppca-emoji", "ppca-mnist"]
    combo.setCurrentText("ppca-mnist")
    assert sorted(r.id for r in window.gallery.model.records) == sorted(mnist.record_ids)
    combo.setCurrentText("All models")
    row = window.gallery.model.row_of(mnist.record_ids[1])
    window.gallery.view.doubleClicked.emit(window.gallery.model.index(row))
    assert window.canvas.record_id() == mnist.record_ids[1]
    assert window.canvas.image().shape == (28, 28, 3)  # read back from the PNG as RGB
    assert window.canvas.metadata()["seed"] == mnist.seed
    assert emoji.record_ids[0] == window.gallery.model.records[0].id  # newest first


def test_audio_results_thumbnail_open_and_export(qtbot, window, tmp_path):
    record_id = add_audio_record(window)
    qtbot.waitUntil(lambda: window.gallery.model.row_of(record_id) >= 0)
    record = window.project.record(record_id)
    index = window.gallery.model.index(window.gallery.model.row_of(record_id))
    window.gallery.model.data(index, Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(window.gallery.model.thumbnails_ready, timeout=10000)
    assert record_id in window.gallery.model._thumbs and record_id not in window.gallery.model._broken
    window.open_record(record)
    editor = window.views["waveform"]
    assert window.workspace.currentWidget() is window.view_tabs["waveform"]
    assert window.view_tabs["waveform"].widget() is editor
    assert editor.record_id == record_id
    np.testing.assert_allclose(editor.audio().samples, media.load_audio(record.file).samples)
    flac = window.export_record(record, tmp_path / "tone.flac", "24")
    assert media.read_metadata(flac)["seed"] == 3
    assert media.load_audio(flac).rate == 16000


def test_training_from_the_gui_adds_a_user_checkpoint(qtbot, window, tmp_path):
    data = tmp_path / "tiny"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(data / label / f"{i}.png")
    assert window.models.select(PPCA)
    assert window.params.select_action("train")
    assert window.params.run_button.isEnabled()  # training needs no checkpoint
    window.params.form.set_values({"data": str(data), "size": 8, "components": 3, "name": "ppca-tiny"})
    window.params.run()
    job = window.engine.jobs[-1]
    wait_handled(qtbot, window, job)
    assert job.state == JobState.DONE, job.error
    assert "ppca-tiny  (yours)" in window.models.items_text()
    assert window.models.select(PPCA, "ppca-tiny")
    assert "user" in window.models.card.toPlainText()


def test_send_canvas_to_edit_and_view_menu(qtbot, window):
    job = generate(qtbot, window, "ppca-mnist", 1)
    assert window.canvas.record_id() == job.record_ids[0]
    assert window.send_to_action("edit", "image")
    assert window.params.action.id == "edit"
    assert window.params.form.fields["image"].uses_canvas
    assert window.canvas_input_path() == window.project.record(job.record_ids[0]).file
    assert not window.send_to_action("inpaint", "image")

    window.gallery_dock.hide()
    window.reset_layout()
    assert window.gallery_dock.isVisible()


def test_recent_projects_menu(qtbot, window, tmp_path):
    assert window.new_project(tmp_path / "second")
    window._fill_recent()
    names = [a.text() for a in window.recent_menu.actions()]
    assert "second" in names and "default" in names
    default = next(a for a in window.recent_menu.actions() if a.text() == "default")
    default.trigger()
    assert window.project.name == "default"


def test_latent_view_is_built_when_opened_and_explores_the_selected_model(qtbot, window):
    assert window.models.select(PPCA, "ppca-mnist")
    assert "latent" not in window.views  # offered as a tab, built only when opened
    tabs = [window.workspace.tabText(i) for i in range(window.workspace.count())]
    assert "Latent" in tabs
    window.workspace.setCurrentIndex(tabs.index("Latent"))
    explorer = window.views["latent"]
    assert window.workspace.currentWidget() is window.view_tabs["latent"]
    qtbot.waitUntil(lambda: explorer.model_id == "ppca-mnist", timeout=20000)
    assert window.models.select(PPCA, "ppca-emoji")
    qtbot.waitUntil(lambda: explorer.model_id == "ppca-emoji", timeout=20000)
    assert [window.workspace.tabText(i) for i in range(window.workspace.count())].count("Latent") == 1


def test_edit_menu_undo_follows_focus(qtbot, window):
    job = generate(qtbot, window, "ppca-mnist", 1)
    window._focus_changed(None, window.gallery.view)
    assert window.undo_group.activeStack() is window.undo_stack
    window._focus_changed(None, window.canvas.view)
    assert window.undo_group.activeStack() is window.canvas.undo_stack
    assert window.canvas.undo_stack.canUndo()  # showing the result was a canvas step
    window._focus_changed(None, window.gallery.view)
    window.gallery.select_ids(job.record_ids)
    window.gallery.toggle_star()
    assert window.undo_group.canUndo() and window.project.record(job.record_ids[0]).starred


def test_unopenable_project_falls_back_to_the_default(qtbot, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    window = MainWindow(device="cpu", project_path=blocked / "project")
    qtbot.addWidget(window)
    assert window.project is not None and window.project.name == "default"
    window.close()


MASK_PLUGIN_TOML = """
id = "test.masked"
name = "Masked edit test plugin"
family = "maskedtest"
modality = "image"
version = "0.1"

[[actions]]
id = "repaint"
verb = "edit"
entry = "{package}.actions:repaint"
needs_model = false
params = [
  {{ name = "image", type = "image", required = true }},
  {{ name = "mask", type = "image" }},
]
"""


def test_inpaint_sends_the_canvas_image_and_its_painted_mask(qtbot, tmp_path, monkeypatch):
    package = "maskplugin_" + tmp_path.name.replace("-", "_")
    folder = tmp_path / "src" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "plugin.toml").write_text(MASK_PLUGIN_TOML.format(package=package))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    win = MainWindow(device="cpu", builtins=("plugins.ppca", package))
    qtbot.addWidget(win)
    win.show_image(np.full((64, 64, 3), 200, np.uint8))
    assert win.models.select("test.masked")
    assert win.send_to_action("inpaint", "image")  # no inpaint action: the edit that takes a mask
    fields = win.params.form.fields
    assert fields["image"].uses_canvas and not fields["mask"].uses_canvas  # nothing painted yet
    win.canvas.set_brush_size(4)
    win.canvas.paint_stroke([(10.0, 10.0), (20.0, 20.0)])
    assert win.send_to_action("inpaint", "image")
    assert fields["mask"].uses_canvas
    values = win.params.form.validated()
    mask = media.load_image(values["mask"])
    assert mask.shape[:2] == (64, 64) and mask[15, 15].max() > 0 and mask[50, 50].max() == 0
    assert media.load_image(values["image"]).shape == (64, 64, 3)
    win.close()


def test_gallery_selections_become_the_vae_attribute_sets(qtbot, window):
    with_set = generate(qtbot, window, "ppca-mnist", count=2)
    without_set = generate(qtbot, window, "ppca-mnist", count=3)
    assert window.models.select("studio.vae", "vae-mnist") and window.params.select_action("edit")
    assert [name for name, _ in window.image_set_targets()] == ["with_images", "without_images"]
    records = {r.id: r for r in window.project.records()}
    folder = window.use_records_as_input("with_images", [records[i] for i in with_set.record_ids])
    window.use_records_as_input("without_images", [records[i] for i in without_set.record_ids])
    assert len(list(folder.glob("*.png"))) == 2
    values = window.params.form.values()
    assert values["with_images"] == str(folder) and values["without_images"] != values["with_images"]
    image = records[with_set.record_ids[0]].file
    window.params.form.set_values({"image": str(image)})
    job = window.run_action("edit", window.params.form.values(), 1)
    wait_handled(qtbot, window, job)
    assert job.state == JobState.DONE, job.error


def test_the_training_dock_trains_with_curves_and_adds_the_model(qtbot, window, tmp_path):
    data = tmp_path / "tiny"
    rng = np.random.default_rng(1)
    data.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(data / f"{i}.png")
    assert window.training_panel is None  # built on first show, keeping start-up light
    window.training_dock.show()
    window.training_dock.raise_()
    qtbot.waitUntil(lambda: window.training_panel is not None)
    panel = window.training_panel
    panel.select_family(PPCA)
    panel.set_data_folder(data)
    qtbot.waitUntil(lambda: panel.summary is not None, timeout=30000)
    panel.set_run_folder(tmp_path / "run")
    panel.form.set_values({"size": 8, "components": 2, "name": "ppca-dock"})
    with qtbot.waitSignal(panel.jobFinished, timeout=30000) as finished:
        panel.train_button.click()
    assert finished.args[0].state == JobState.DONE, finished.args[0].error
    qtbot.waitUntil(lambda: "ppca-dock  (yours)" in window.models.items_text(), timeout=30000)
    assert str(tmp_path / "run") in window.settings.get("model_folders")
