"""The main window driven like a user would: pick a model, run, cancel, reuse, restart, restore."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QPushButton

from studio.core import media
from studio.core.engine import Job, JobState
from studio.core.registry import BUILTINS
from studio.qt.dialogs import ErrorDialog, OomDialog, PluginManagerDialog
from studio.qt.main_window import MainWindow
from studio.qt.preferences import PreferencesDialog

PPCA = "studio.ppca"
MNIST = "ppca-mnist"
FINISHED = ("done", "failed", "cancelled")


def make_window(qtbot, **kwargs) -> MainWindow:
    window = MainWindow(device="cpu", **kwargs)
    qtbot.addWidget(window)
    window.show()
    # Connected after the window's own slot, so an event listed here was handled by the window.
    window.handled = []
    window.engine_bridge.jobEvent.connect(lambda event, job: window.handled.append((event, job.id)))
    return window


def wait_handled(qtbot, window: MainWindow, job: Job, events: tuple[str, ...] = FINISHED) -> None:
    qtbot.waitUntil(lambda: any(e in events and i == job.id for e, i in window.handled), timeout=30000)


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.close()


def select_generate(window: MainWindow, count: int = 2) -> None:
    assert window.models.select(PPCA, MNIST)
    assert window.params.select_action("generate")
    window.params.form.fields["count"].set_value(count)


def run_and_wait(qtbot, window: MainWindow) -> Job:
    before = len(window.engine.jobs)
    qtbot.mouseClick(window.params.run_button, Qt.MouseButton.LeftButton)
    assert len(window.engine.jobs) == before + 1, window.params.error.text()
    job = window.engine.jobs[-1]
    wait_handled(qtbot, window, job)
    assert job.state == JobState.DONE, job.error
    qtbot.waitUntil(lambda: all(window.gallery.model.row_of(i) >= 0 for i in job.record_ids), timeout=10000)
    return job


def test_window_lists_ppca_and_its_checkpoint_with_card(window):
    texts = window.models.items_text()
    assert "Probabilistic PCA" in texts
    assert MNIST in texts
    assert window.models.select(PPCA, MNIST)
    card = window.models.card.toPlainText()
    assert "ppca-mnist" in card and "sha256" in card and "size" in card
    tabs = [window.params.tabs.tabText(i) for i in range(window.params.tabs.count())]
    assert tabs[:3] == ["Generate", "Edit", "Interpolate"]
    assert window.params.run_button.isEnabled()


def test_generate_lands_in_gallery_and_canvas(qtbot, window):
    select_generate(window, count=3)
    job = run_and_wait(qtbot, window)
    assert len(job.record_ids) == 3
    assert len(window.gallery.model.records) == 3
    assert window.canvas.image() is not None
    assert window.canvas.image().shape == (28, 28, 1)
    assert window.canvas.record_id() == job.record_ids[0]
    row = window.jobs.rows[job.id]
    assert row.status.text().startswith("3 results")
    assert not row.cancel_button.isVisible()
    qtbot.waitUntil(window.gallery.model.thumbnails_ready, timeout=10000)


def test_cancel_running_and_queued_jobs(qtbot, slow_plugin):
    window = make_window(qtbot, builtins=(*BUILTINS, slow_plugin))
    assert window.models.select("test.slow")
    running = window.run_action("count", {"steps": 50, "fail": False}, 7)
    queued = window.run_action("count", {"steps": 50, "fail": False}, 8)
    qtbot.waitUntil(lambda: running.state == JobState.RUNNING, timeout=10000)
    assert queued.state == JobState.QUEUED
    qtbot.waitUntil(lambda: queued.id in window.jobs.rows)
    qtbot.mouseClick(window.jobs.rows[queued.id].cancel_button, Qt.MouseButton.LeftButton)
    assert queued.state == JobState.CANCELLED
    qtbot.mouseClick(window.jobs.rows[running.id].cancel_button, Qt.MouseButton.LeftButton)
    gate = importlib.import_module(f"{slow_plugin}.actions").GATE
    gate.release(2)  # let the action reach its next yield, where the engine stops it
    qtbot.waitUntil(lambda: running.state == JobState.CANCELLED, timeout=10000)
    qtbot.waitUntil(lambda: window.jobs.rows[running.id].status.text() == "Cancelled", timeout=5000)
    assert len(sys.modules[f"{slow_plugin}.actions"].STEPS_TAKEN) <= 2
    assert window.gallery.model.records == []
    qtbot.waitUntil(lambda: window.jobs.summary.text() == "Idle")
    window.jobs.clear_button.click()
    assert window.jobs.rows == {}
    window.close()


def test_failure_reads_as_one_line_with_details(qtbot, slow_plugin):
    window = make_window(qtbot, builtins=(*BUILTINS, slow_plugin))
    assert window.models.select("test.slow")
    job = window.run_action("count", {"steps": 3, "fail": True}, 1)
    importlib.import_module(f"{slow_plugin}.actions").GATE.release(1)
    qtbot.waitUntil(lambda: job.state == JobState.FAILED, timeout=10000)
    qtbot.waitUntil(lambda: window.jobs.rows[job.id].error.isVisibleTo(window.jobs.rows[job.id]))
    row = window.jobs.rows[job.id]
    assert "broke on purpose" in row.error.text()
    assert "\n" not in row.error.text()
    assert row.details_button.isVisibleTo(row) and not row.retry_button.isVisibleTo(row)
    qtbot.mouseClick(row.details_button, Qt.MouseButton.LeftButton)
    dialog = next(d for d in window._dialogs if isinstance(d, ErrorDialog))
    assert "Traceback" in dialog.details.toPlainText()
    assert dialog.details.isHidden()
    dialog.details_button.setChecked(True)
    assert not dialog.details.isHidden()
    window.close()


def test_out_of_memory_offers_retry_on_cpu(qtbot, window):
    select_generate(window, count=1)
    failed = Job(PPCA, "generate", MNIST, {"count": 1, "temperature": 1.0, "noise": False}, seed=5, device="cuda")
    failed.state, failed.error, failed.error_kind = JobState.FAILED, "the CUDA ran out of memory", "oom"
    failed.details = "Traceback: torch.OutOfMemoryError"
    window._on_job_event("failed", failed)
    row = window.jobs.rows[failed.id]
    assert row.retry_button.isVisibleTo(row)
    dialog = next(d for d in window._dialogs if isinstance(d, OomDialog))
    retry = next(b for b in dialog.buttons.findChildren(QPushButton) if b.text() == "Retry on CPU")
    retry.click()
    retried = window.engine.jobs[-1]
    assert retried.device == "cpu" and retried.seed == 5 and retried.model_id == MNIST
    wait_handled(qtbot, window, retried)
    assert retried.state == JobState.DONE


def test_broken_plugin_is_shown_disabled_and_the_app_starts(qtbot, tmp_path, monkeypatch):
    package = "brokenplugin_" + tmp_path.name.replace("-", "_")
    folder = tmp_path / "src" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "plugin.toml").write_text("id = 'broken'\nname = = 'oops'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    window = make_window(qtbot, builtins=(*BUILTINS, package))
    item = window.models.item_for(package)
    assert item is not None
    assert "cannot read the manifest" in item.toolTip(0)
    assert item.font(0).italic()
    window.models.tree.setCurrentItem(item)
    assert "Disabled" in window.models.card.toPlainText()
    assert not window.params.run_button.isEnabled()
    assert window.models.select(PPCA, MNIST)
    assert window.params.run_button.isEnabled()
    window.close()


def test_reuse_parameters_refills_form_seed_and_selection(qtbot, window):
    select_generate(window, count=2)
    window.params.form.fields["temperature"].set_value(0.5)
    window.params.seed.set_mode("fixed")
    window.params.seed.spin.setValue(1234)
    job = run_and_wait(qtbot, window)
    window.params.select_action("interpolate")
    window.params.seed.set_mode("random")
    window.gallery.select_ids([job.record_ids[1]])
    window.gallery.actions_by_name["reuse"].trigger()
    assert window.params.action.id == "generate"
    assert window.models.selection() == (PPCA, MNIST)
    values = window.params.form.values()
    assert values["count"] == 2 and values["temperature"] == 0.5 and values["noise"] is False
    assert window.params.seed.seed() == 1234 and window.params.seed.mode == "fixed"


def test_same_seed_reproduces_through_the_gui(qtbot, window):
    select_generate(window, count=1)
    window.params.seed.set_mode("fixed")
    window.params.seed.spin.setValue(99)
    first = run_and_wait(qtbot, window)
    second = run_and_wait(qtbot, window)
    np.testing.assert_array_equal(first.result.images[0], second.result.images[0])


def test_validation_error_is_inline_not_a_crash(qtbot, window):
    assert window.models.select(PPCA, MNIST)
    window.params.select_action("edit")
    before = len(window.engine.jobs)
    qtbot.mouseClick(window.params.run_button, Qt.MouseButton.LeftButton)
    assert len(window.engine.jobs) == before
    assert window.params.error.isVisibleTo(window.params)
    assert "image is required" in window.params.error.text().lower()
    assert window.params.form.fields["image"].editor.property("invalid") is True


def test_edit_uses_the_canvas_image_and_records_lineage(qtbot, window):
    select_generate(window, count=1)
    parent = run_and_wait(qtbot, window)
    window.params.select_action("edit")
    window.params.form.fields["image"].canvas_button.setChecked(True)
    job = run_and_wait(qtbot, window)
    assert job.params["image"] == str(window.project.record(parent.record_ids[0]).file)
    assert window.project.record(job.record_ids[0]).parents == [parent.record_ids[0]]


def test_star_and_delete_are_undoable(qtbot, window):
    select_generate(window, count=2)
    job = run_and_wait(qtbot, window)
    first = job.record_ids[0]
    window.gallery.select_ids([first])
    window.gallery.toggle_star()
    assert window.project.record(first).starred
    window.gallery.star_toggle.setChecked(True)
    assert [r.id for r in window.gallery.model.records] == [first]
    window.gallery.star_toggle.setChecked(False)
    window.undo_group.undo()
    assert not window.project.record(first).starred
    window.gallery.select_ids([first])
    window.gallery.view.setFocus()
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: window.gallery.model.row_of(first) < 0)
    assert len(window.gallery.model.records) == 1
    window.undo_group.undo()
    qtbot.waitUntil(lambda: window.gallery.model.row_of(first) >= 0)
    mime = window.gallery.model.mimeData([window.gallery.model.index(window.gallery.model.row_of(first))])
    assert Path(mime.urls()[0].toLocalFile()) == window.project.record(first).file


def test_restart_shows_previous_results(qtbot):
    first = make_window(qtbot)
    select_generate(first, count=2)
    job = run_and_wait(qtbot, first)
    project_path = first.project.path
    first.close()
    second = make_window(qtbot)
    assert second.project.path == project_path
    assert sorted(r.id for r in second.gallery.model.records) == sorted(job.record_ids)
    qtbot.waitUntil(second.gallery.model.thumbnails_ready, timeout=10000)
    assert second.gallery.model._broken == {}
    second.close()


def test_open_and_drop_png_with_metadata_restore_parameters(qtbot, window, tmp_path):
    select_generate(window, count=3)
    window.params.form.fields["temperature"].set_value(0.75)
    window.params.seed.set_mode("fixed")
    window.params.seed.spin.setValue(4242)
    job = run_and_wait(qtbot, window)
    record = window.project.record(job.record_ids[0])
    exported = window.export_record(record, tmp_path / "export.png")
    assert media.read_metadata(exported)["seed"] == 4242

    window.params.form.reset()
    window.params.seed.set_mode("random")
    assert window.open_file(exported)
    assert window.restore_bar.isVisibleTo(window)
    qtbot.mouseClick(window.restore_bar.restore_button, Qt.MouseButton.LeftButton)
    assert window.params.form.values()["temperature"] == 0.75
    assert window.params.form.values()["count"] == 3
    assert window.params.seed.seed() == 4242

    window.params.form.reset()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(exported))])
    drop = QDropEvent(QPointF(QPoint(50, 50)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert window.restore_bar.isVisibleTo(window)
    window.restore_bar.restore_button.click()
    assert window.params.form.values()["temperature"] == 0.75


def test_locked_seed_survives_restore(qtbot, window):
    assert window.models.select(PPCA, MNIST)
    window.params.seed.set_mode("lock")
    locked = window.params.seed.seed()
    meta = {"plugin": PPCA, "action": "generate", "model_id": MNIST, "params": {"count": 5}, "seed": locked + 1}
    assert window.restore_parameters(meta)
    assert window.params.seed.seed() == locked
    assert window.params.form.values()["count"] == 5


def test_open_bad_image_shows_a_clear_error(qtbot, window, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert not window.open_file(bad)
    dialog = next(d for d in window._dialogs if isinstance(d, ErrorDialog))
    assert "bad.png" in dialog.message.text()


def test_projects_new_save_as_and_recent(qtbot, window, tmp_path):
    select_generate(window, count=1)
    job = run_and_wait(qtbot, window)
    assert window.save_project_as(tmp_path / "copy")
    assert window.project.path == (tmp_path / "copy").resolve()
    assert [r.id for r in window.gallery.model.records] == job.record_ids
    assert window.new_project(tmp_path / "fresh")
    assert window.gallery.model.records == []
    recent = window.settings.get("recent_projects")
    assert recent[0] == str((tmp_path / "fresh").resolve()) and str((tmp_path / "copy").resolve()) in recent
    assert not window.new_project(tmp_path / "copy")


def test_third_party_plugin_is_off_until_enabled_in_preferences(qtbot, slow_plugin, monkeypatch):
    entry_point = SimpleNamespace(name="slow", value=slow_plugin, dist=None)
    monkeypatch.setattr("studio.core.registry.entry_points", lambda group: [entry_point])
    window = make_window(qtbot)
    assert window.models.select("test.slow")
    assert "enable it" in window.models.item_for("test.slow").toolTip(0)
    assert not window.params.run_button.isEnabled()
    window.apply_preferences("cpu", ["test.slow"])
    assert window.settings.get("device") == "cpu" and window.engine.device == "cpu"
    assert window.settings.get("enabled_plugins") == ["test.slow"]
    assert window.models.selection() == ("test.slow", "")
    assert window.params.run_button.isEnabled()
    assert not window.models.item_for("test.slow").font(0).italic()
    assert "Device: cpu" in window.device_label.text()
    assert "Studio" in window.about_text() and "Python" in window.about_text()
    window.close()


def test_theme_and_icon_resources_exist():
    from studio.core.paths import resources_dir

    assert (resources_dir() / "theme.qss").read_text().strip()
    assert (resources_dir() / "icon.svg").read_text().startswith("<svg")



def test_preferences_dialog_shows_available_devices(qtbot, window, monkeypatch):
    monkeypatch.setattr("studio.qt.preferences.available_devices", lambda: ["cpu"])
    dialog = PreferencesDialog("cpu", window.registry, [], window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "Available here: CPU" in dialog.device_note.text(), timeout=5000)
    combo = dialog.device_combo
    cuda = combo.findData("cuda")
    assert not combo.model().item(cuda).isEnabled() and "not available" in combo.itemText(cuda)
    assert combo.model().item(combo.findData("auto")).isEnabled()
    assert dialog.device() == "cpu"


def test_plugin_manager_ticks_third_party_plugins(qtbot, slow_plugin, monkeypatch):
    entry_point = SimpleNamespace(name="slow", value=slow_plugin, dist=None)
    monkeypatch.setattr("studio.core.registry.entry_points", lambda group: [entry_point])
    window = make_window(qtbot)
    dialog = PluginManagerDialog(window.registry, [], window)
    qtbot.addWidget(dialog)
    items = [dialog.plugins.topLevelItem(i) for i in range(dialog.plugins.topLevelItemCount())]
    slow = next(i for i in items if i.data(0, Qt.ItemDataRole.UserRole) == "test.slow")
    ppca = next(i for i in items if i.data(0, Qt.ItemDataRole.UserRole) == PPCA)
    assert not ppca.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert dialog.enabled_ids() == []
    slow.setCheckState(0, Qt.CheckState.Checked)
    assert dialog.enabled_ids() == ["test.slow"]
    window.close()


def test_png_dropped_on_the_canvas_offers_its_parameters(qtbot, window, tmp_path):
    select_generate(window, count=1)
    job = run_and_wait(qtbot, window)
    exported = window.export_record(window.project.record(job.record_ids[0]), tmp_path / "dropped.png")
    window.restore_bar.hide()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(exported))])
    no_button, no_modifier = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, no_button, no_modifier)
    assert QApplication.sendEvent(window.canvas, enter)  # Qt delivers a drop only after its drag entered
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, no_button, no_modifier)
    assert QApplication.sendEvent(window.canvas, drop)
    assert window.restore_bar.isVisibleTo(window)
    assert "dropped.png" in window.restore_bar.label.text()
    assert window.canvas.metadata()["seed"] == job.seed


def test_ctrl_return_runs_the_action(qtbot, window):
    select_generate(window, count=1)
    window.activateWindow()
    window.params.form.fields["count"].spin.setFocus()
    before = len(window.engine.jobs)
    qtbot.keyClick(window.params.form.fields["count"].spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.params.form.fields["count"].spin, Qt.Key.Key_Escape)  # leave no modifier "held"
    assert len(window.engine.jobs) == before + 1
    job = window.engine.jobs[-1]
    wait_handled(qtbot, window, job, ("done",))


def test_image_opened_by_the_canvas_itself_offers_its_parameters(qtbot, window, tmp_path):
    select_generate(window, count=1)
    job = run_and_wait(qtbot, window)
    exported = window.export_record(window.project.record(job.record_ids[0]), tmp_path / "pasted.png")
    window.restore_bar.hide()
    window.canvas.open_file(exported)  # what the canvas does for a paste or its own file dialog
    qtbot.waitUntil(lambda: window.restore_bar.isVisibleTo(window), timeout=10000)
    assert "pasted.png" in window.restore_bar.label.text()


def test_send_canvas_to_encode_shows_its_latent_in_the_explorer(qtbot, window):
    from plugins.ppca.model import load

    assert window.models.select(PPCA, MNIST)
    image = media.load_image(window.registry.checkpoint(MNIST).path / "samples.png")[:28, :28]
    window.show_image(image)
    assert window.send_to_action("encode")
    explorer = window.views["latent"]
    expected = load(window.registry.checkpoint(MNIST).path).encode_images([image])[0]
    qtbot.waitUntil(lambda: explorer.model_id == MNIST and window._pending_encode is None, timeout=30000)
    assert np.allclose(explorer.current_latent(), expected, atol=1e-4)


def test_send_waveform_selection_fills_the_audio_action(qtbot, window):
    from studio.core.plugin import Audio

    assert window.models.select("studio.wavenet", "wavenet-gm-notes")
    t = np.arange(16000, dtype=np.float32) / 16000
    window.show_audio(Audio(np.sin(2 * np.pi * 220 * t)[:, None].astype(np.float32), 16000))
    editor = window.views["waveform"]
    editor.set_selection(4000, 12000, snap=False)
    assert window.send_to_action("infill", "audio")
    values = window.params.form.values()
    assert (values["start"], values["end"]) == (0.25, 0.75)
    assert values["audio"]


def test_class_values_of_the_selected_checkpoint_are_listed_by_name(window):
    assert window.models.select("studio.pixelcnn", "pixelcnn-mnist")
    assert window.params.select_action("generate")
    field = window.params.form.fields["class_index"]
    names = [field.names.itemText(i) for i in range(field.names.count())]
    assert names[:3] == ["auto", "0: 0", "1: 1"] and len(names) == 11
    field.names.setCurrentIndex(names.index("7: 7"))
    assert window.params.form.validated()["class_index"] == 7
