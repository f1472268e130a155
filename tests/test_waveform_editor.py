"""The waveform editor driven like a user would: buttons, shortcuts, mouse, files, playback."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core import audio_edit
from studio.core.plugin import Audio
from studio.qt import waveform_editor
from studio.qt.waveform_dialogs import ExportDialog, ExportSettings
from studio.qt.waveform_editor import WaveformEditor

RATE = 8000


def tone(seconds: float = 1.0, channels: int = 2, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    columns = [0.5 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 310 * t + 1.0)]
    return np.stack(columns[:channels], axis=1).astype(np.float32)


@pytest.fixture
def editor(qtbot, monkeypatch, request) -> WaveformEditor:
    if getattr(request, "param", "") == "many-chunks":  # 1,000-frame chunks: edits cross chunk edges
        monkeypatch.setattr(audio_edit, "CHUNK", 1000)
    widget = WaveformEditor()
    qtbot.addWidget(widget)
    widget.resize(1000, 500)
    widget.set_audio(Audio(tone(), RATE), record_id=7)
    waveform_editor._CLIPBOARD.clear()
    return widget


def expected(name: str, x: np.ndarray, a: int, b: int) -> np.ndarray:
    part = x[a:b]
    ramp = np.linspace(0, 1, b - a, dtype=np.float32)[:, None]
    return {
        "cut": np.concatenate([x[:a], x[b:]]),
        "delete": np.concatenate([x[:a], x[b:]]),
        "trim": part,
        "silence": np.concatenate([x[:a], 0 * part, x[b:]]),
        "gain": np.concatenate([x[:a], part * np.float32(10 ** (6 / 20)), x[b:]]),
        "normalize": np.concatenate([x[:a], part * np.float32(10 ** (-0.5 / 20) / np.abs(part).max()), x[b:]]),
        "fade_in": np.concatenate([x[:a], part * ramp, x[b:]]),
        "fade_out": np.concatenate([x[:a], part * ramp[::-1], x[b:]]),
        "reverse": np.concatenate([x[:a], part[::-1], x[b:]]),
    }[name]


@pytest.mark.parametrize("editor", ["one-chunk", "many-chunks"], indirect=True)
@pytest.mark.parametrize(
    "name", ["cut", "delete", "trim", "silence", "gain", "normalize", "fade_in", "fade_out", "reverse"]
)
def test_each_button_edits_the_selection_and_undo_redo_restore(editor, monkeypatch, name) -> None:
    answers = {"gain": 6.0, "normalize": -0.5}
    monkeypatch.setattr(waveform_editor.QInputDialog, "getDouble", lambda *a, **k: (answers[name], True))
    original = editor.audio().samples.copy()
    editor.set_selection(1200, 3000)
    with editor_signal(editor):
        editor.actions[name].trigger()
    after = expected(name, original, 1200, 3000)
    np.testing.assert_allclose(editor.audio().samples, after, atol=1e-6)
    assert editor.actions["undo"].isEnabled()
    editor.actions["undo"].trigger()
    np.testing.assert_array_equal(editor.audio().samples, original)
    assert editor.selection() == (1200, 3000)
    editor.actions["redo"].trigger()
    np.testing.assert_allclose(editor.audio().samples, after, atol=1e-6)


class editor_signal:  # noqa: N801 (used as a tiny context manager)
    """Checks that an edit announces itself with audioChanged."""

    def __init__(self, editor: WaveformEditor) -> None:
        self.editor, self.count = editor, 0

    def __enter__(self):
        self.editor.audioChanged.connect(self._seen)
        return self

    def _seen(self) -> None:
        self.count += 1

    def __exit__(self, *exc) -> None:
        self.editor.audioChanged.disconnect(self._seen)
        assert self.count == 1


def test_process_without_selection_applies_to_the_whole_file(editor) -> None:
    original = editor.audio().samples.copy()
    editor.clear_selection()
    editor.reverse()
    np.testing.assert_array_equal(editor.audio().samples, original[::-1])


@pytest.mark.parametrize("editor", ["one-chunk", "many-chunks"], indirect=True)
def test_copy_paste_with_shortcuts_then_undo_redo(editor, qtbot) -> None:
    editor.show()
    qtbot.waitExposed(editor)
    editor.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is editor)
    editor.graphics.setFocus()
    original = editor.audio().samples.copy()
    editor.set_selection(800, 1600)
    qtbot.keyClick(editor.graphics, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    editor.set_cursor(4000)
    qtbot.keyClick(editor.graphics, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    pasted = np.concatenate([original[:4000], original[800:1600], original[4000:]])
    np.testing.assert_array_equal(editor.audio().samples, pasted)
    assert editor.selection() == (4000, 4800)
    qtbot.keyClick(editor.graphics, Qt.Key.Key_X, Qt.KeyboardModifier.ControlModifier)  # cut the pasted copy
    np.testing.assert_array_equal(editor.audio().samples, original)
    qtbot.keyClick(editor.graphics, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(editor.audio().samples, pasted)
    qtbot.keyClick(editor.graphics, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(editor.audio().samples, original)
    editor.undo_stack.redo()
    np.testing.assert_array_equal(editor.audio().samples, pasted)


def test_paste_over_a_selection_replaces_it_and_converts_rate_and_channels(editor) -> None:
    waveform_editor._CLIPBOARD[:] = [Audio(np.full((RATE // 10, 1), 0.25, np.float32), RATE * 2)]
    original = editor.audio().samples.copy()
    editor.set_selection(100, 900)
    editor.paste()
    samples = editor.audio().samples
    assert samples.shape == (len(original) - 800 + RATE // 20, 2)
    np.testing.assert_allclose(samples[200 : 100 + RATE // 20 - 100], 0.25, atol=1e-3)
    editor.undo_stack.undo()
    np.testing.assert_array_equal(editor.audio().samples, original)


def scene_point(editor: WaveformEditor, seconds: float, track: int = 0) -> QPoint:
    box = editor._tracks[track].plot.getViewBox()
    scene = box.mapViewToScene(pg_point(seconds, 0.0))
    return editor.graphics.mapFromScene(scene)


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_mouse_drag_selects_a_region_and_click_places_the_cursor(editor, qtbot) -> None:
    editor.show()
    qtbot.waitExposed(editor)
    viewport = editor.graphics.viewport()
    start, stop = scene_point(editor, 0.2), scene_point(editor, 0.6)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        qtbot.mouseMove(viewport, start + (stop - start) * (step / 10))
    with qtbot.waitSignal(editor.selectionChanged):
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=stop)
    a, b = editor.selection()
    assert abs(a - 0.2 * RATE) < 30 and abs(b - 0.6 * RATE) < 30
    assert editor.selection_length.value() == pytest.approx((b - a) / RATE, abs=1e-3)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=scene_point(editor, 0.8, track=1))
    assert editor.selection() is None
    assert abs(editor.cursor() - 0.8 * RATE) < 30


def test_selection_boxes_are_editable(editor) -> None:
    editor.selection_start.setValue(0.25)
    editor.selection_end.setValue(0.5)
    assert editor.selection() == (2000, 4000)
    editor.selection_length.setValue(0.125)
    assert editor.selection() == (2000, 3000)


def test_snap_to_zero_crossings(editor) -> None:
    editor.actions["snap"].setChecked(True)
    editor.set_selection(1013, 2987)
    mix = editor.audio().samples.mean(axis=1)
    biggest_step = np.abs(np.diff(mix)).max()
    a, b = editor.selection()
    assert (a, b) != (1013, 2987)
    for edge in (a, b):
        assert abs(mix[edge]) <= biggest_step
        assert np.signbit(mix[edge - 1]) != np.signbit(mix[edge + 1]) or mix[edge] == 0


def test_zoom_scroll_and_fit_change_the_view_and_draw_at_screen_resolution(editor, qtbot) -> None:
    editor.set_audio(Audio(tone(60.0, rate=16000), 16000))
    editor.zoom_fit()
    editor.redraw()
    assert editor.visible_range() == pytest.approx((0.0, 60.0))
    points = len(editor._tracks[0].peak.getData()[0])
    assert 0 < points <= 2 * max(100, int(editor._tracks[0].plot.getViewBox().width())) + 2
    editor.set_selection(16000 * 10, 16000 * 12)
    editor.actions["zoom_selection"].trigger()
    assert editor.visible_range() == pytest.approx((10.0, 12.0))
    editor.actions["zoom_in"].trigger()
    start, stop = editor.visible_range()
    assert stop - start == pytest.approx(1.0)
    editor.scroll(1.0)
    assert editor.visible_range()[0] == pytest.approx(start + 1.0)
    assert editor.scrollbar.value() == round(editor.visible_range()[0] * 16000)
    editor.scrollbar.setValue(0)
    assert editor.visible_range()[0] == pytest.approx(0.0)
    editor.set_view(1.0, 1.0005)  # 8 samples asked: clamped to the 20-sample minimum
    editor.redraw()
    start, stop = editor.visible_range()
    assert (stop - start) * 16000 == pytest.approx(20)
    assert len(editor._tracks[0].dots.data) > 0  # single samples are drawn as dots
    editor.actions["zoom_fit"].trigger()
    assert editor.visible_range() == pytest.approx((0.0, 60.0))


def test_spectrogram_is_computed_in_the_background(editor, qtbot) -> None:
    editor.actions["spectrogram"].trigger()
    image = editor.spectrogram_track.image
    qtbot.waitUntil(lambda: image.image is not None, timeout=10000)
    columns, bins = image.image.shape
    assert bins == 513 and columns > 10
    assert image.image.max() > -20  # the tones are loud
    editor.actions["spectrogram"].trigger()
    assert editor.spectrogram_track.plot.scene() is None


@pytest.mark.parametrize(
    ("suffix", "subtype", "rate", "expected_subtype"),
    [
        (".wav", "16", 16000, "PCM_16"),
        (".wav", "24", 44100, "PCM_24"),
        (".wav", "float", 48000, "FLOAT"),
        (".flac", "16", 44100, "PCM_16"),
        (".flac", "24", 48000, "PCM_24"),
        (".flac", "16", 16000, "PCM_16"),
    ],
)
def test_export_round_trips(editor, qtbot, tmp_path, suffix, subtype, rate, expected_subtype) -> None:
    path = tmp_path / f"out{suffix}"
    with qtbot.waitSignal(editor.exported, timeout=20000):
        editor.export(ExportSettings(path, subtype, rate))
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (suffix[1:].upper(), expected_subtype, rate, 2)
    assert info.frames == pytest.approx(rate, abs=2)
    back, _ = sf.read(str(path), dtype="float32")
    if rate == RATE * 2:  # same signal, resampled: compare the loud tone's level
        assert np.abs(back).max() == pytest.approx(0.5, abs=0.02)
    editor.open_file(path)
    qtbot.waitUntil(lambda: editor.path == path, timeout=20000)
    assert editor.audio().rate == rate and editor.audio().samples.shape[1] == 2


def test_export_dialog_offers_the_right_depths_and_rates(editor, qtbot, tmp_path, monkeypatch) -> None:
    dialog = ExportDialog(22050, tmp_path / "take.wav")
    qtbot.addWidget(dialog)
    assert [dialog.depth.itemData(i) for i in range(dialog.depth.count())] == ["16", "24", "float"]
    assert [dialog.rate.itemData(i) for i in range(dialog.rate.count())] == [16000, 44100, 48000]
    assert dialog.rate.currentData() == 16000
    dialog.depth.setCurrentIndex(1)
    dialog.format.setCurrentIndex(1)
    assert [dialog.depth.itemData(i) for i in range(dialog.depth.count())] == ["16", "24"]
    settings = dialog.settings()
    assert settings == ExportSettings(tmp_path / "take.flac", "24", 16000)

    monkeypatch.setattr(ExportDialog, "exec", lambda self: True)
    monkeypatch.setattr(ExportDialog, "settings", lambda self: settings)
    with qtbot.waitSignal(editor.exported, timeout=20000):
        editor.actions["export"].trigger()
    assert sf.info(str(settings.path)).subtype == "PCM_24"


@pytest.mark.parametrize("channels,rate,suffix", [(1, 22050, ".ogg"), (2, 11025, ".flac"), (1, 32000, ".wav")])
def test_open_any_rate_mono_or_stereo(editor, qtbot, tmp_path, channels, rate, suffix) -> None:
    path = tmp_path / f"in{suffix}"
    sf.write(str(path), tone(0.5, channels, rate), rate)
    with qtbot.waitSignal(editor.audioChanged, timeout=20000):
        editor.open_file(path)
    audio = editor.audio()
    assert audio.rate == rate and audio.samples.shape == (rate // 2, channels)
    assert len(editor._tracks) == channels
    assert editor.record_id is None and not editor.undo_stack.canUndo()


def bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(str(good), tone(0.5), RATE)
    data = good.read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 3])
    sf.write(str(tmp_path / "good.flac"), tone(0.5), RATE)
    flac = (tmp_path / "good.flac").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    sf.write(str(tmp_path / "good.ogg"), tone(0.5), RATE)
    ogg = bytearray((tmp_path / "good.ogg").read_bytes())
    ogg[100:600] = bytes(500)
    (tmp_path / "corrupt.ogg").write_bytes(bytes(ogg))
    (tmp_path / "notes.wav").write_text("these are not audio samples\n" * 50)
    return ["truncated.wav", "truncated.flac", "corrupt.ogg", "notes.wav", "missing.wav"]


def test_bad_files_show_a_readable_error_and_keep_the_audio(editor, qtbot, tmp_path, monkeypatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append((title, text)))
    original = editor.audio().samples.copy()
    editor.set_selection(10, 20)
    for count, name in enumerate(bad_files(tmp_path), start=1):
        editor.open_file(tmp_path / name)
        qtbot.waitUntil(lambda n=count: len(shown) == n, timeout=10000)
        title, text = shown[-1]
        assert title == "Cannot open audio"
        assert name in text and "\n" not in text and "Traceback" not in text
    assert "truncated" in shown[0][1]
    np.testing.assert_array_equal(editor.audio().samples, original)
    assert editor.selection() == (10, 20) and editor.record_id == 7


def test_send_to_actions_name_the_edit(editor, qtbot) -> None:
    assert not editor.actions["send_infill"].isEnabled()
    editor.set_selection(100, 200)
    for key in ("continue", "infill", "resynthesize"):
        with qtbot.waitSignal(editor.sendToAction) as blocker:
            editor.actions[f"send_{key}"].trigger()
        assert blocker.args == [key]


# ---- playback -------------------------------------------------------------------------------
def fake_sounddevice(devices=None, error: Exception | None = None) -> types.ModuleType:
    module = types.ModuleType("sounddevice")

    class CallbackStop(Exception):
        pass

    class OutputStream:
        opened: list[OutputStream] = []

        def __init__(self, samplerate, channels, dtype, callback, finished_callback):
            self.rate, self.channels, self.callback, self.finished = samplerate, channels, callback, finished_callback
            OutputStream.opened.append(self)

        def start(self) -> None:
            pass

        def pull(self, frames: int) -> np.ndarray:
            out = np.full((frames, self.channels), 9.0, np.float32)
            try:
                self.callback(out, frames, None, None)
            except CallbackStop:
                self.finished()
            return out

        def abort(self) -> None:
            self.finished()

        def close(self) -> None:
            pass

    def query_devices():
        if error is not None:
            raise error
        return devices

    module.CallbackStop, module.OutputStream, module.query_devices = CallbackStop, OutputStream, query_devices
    return module


@pytest.mark.parametrize(
    "module",
    [
        fake_sounddevice(error=OSError("PortAudio: no host API")),
        fake_sounddevice(devices=[{"name": "Mic", "max_input_channels": 2, "max_output_channels": 0}]),
        None,  # the library itself cannot be imported
    ],
)
def test_no_output_device_disables_playback_and_everything_else_works(qtbot, monkeypatch, module) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    editor = WaveformEditor()
    qtbot.addWidget(editor)
    editor.set_audio(Audio(tone(0.25), RATE))
    for name in ("play", "stop", "loop", "toggle_play"):
        assert not editor.actions[name].isEnabled()
    assert "Playback is off" in editor.actions["play"].toolTip()
    assert editor.playback_note.text() and "Playback is off" in editor.playback_note.toolTip()
    editor.play()  # a no-op, not an exception
    assert not editor.player.playing
    editor.set_selection(0, 500)
    editor.silence()
    assert not editor.audio().samples[:500].any()


def test_play_loops_the_selection_and_moves_the_cursor(qtbot, monkeypatch) -> None:
    module = fake_sounddevice(devices=[{"name": "Speakers", "max_input_channels": 0, "max_output_channels": 2}])
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    editor = WaveformEditor()
    qtbot.addWidget(editor)
    samples = tone(0.5)
    editor.set_audio(Audio(samples, RATE))
    assert editor.actions["play"].isEnabled() and not editor.playback_note.text()
    editor.set_selection(1000, 1300)
    editor.actions["loop"].setChecked(True)
    editor.actions["play"].trigger()
    stream = module.OutputStream.opened[-1]
    assert editor.player.playing and editor.actions["stop"].isEnabled()
    out = stream.pull(512)
    np.testing.assert_array_equal(out[:300], samples[1000:1300])
    np.testing.assert_array_equal(out[300:512], samples[1000:1212])
    with qtbot.waitSignal(editor.player.positionChanged, timeout=2000):
        pass
    assert editor._tracks[0].play_head.value() == pytest.approx(1212 / RATE)
    editor.actions["stop"].trigger()
    assert not editor.player.playing and editor.actions["play"].isEnabled()

    editor.actions["loop"].setChecked(False)
    editor.play()
    stream = module.OutputStream.opened[-1]
    out = stream.pull(512)  # plays the 300 samples once, then silence and the stream ends
    np.testing.assert_array_equal(out[:300], samples[1000:1300])
    assert not out[300:].any()
    qtbot.waitUntil(lambda: not editor.player.playing, timeout=2000)


def test_wheel_zooms_around_the_mouse_and_the_overview_window_scrolls(editor, qtbot) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent

    editor.show()
    qtbot.waitExposed(editor)
    viewport = editor.graphics.viewport()
    where = QPointF(scene_point(editor, 0.25))
    wheel = QWheelEvent(
        where, QPointF(viewport.mapToGlobal(where.toPoint())), QPoint(0, 0), QPoint(0, 240),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(viewport, wheel)
    start, stop = editor.visible_range()
    assert stop - start == pytest.approx(1.0 / 1.25**2, rel=1e-3)
    assert start < 0.25 < stop and (0.25 - start) / (stop - start) == pytest.approx(0.25, abs=0.02)
    editor.overview.window.setRegion((0.5, 0.75))
    assert editor.visible_range() == pytest.approx((0.5, 0.75))
    assert editor.scrollbar.value() == 4000


def test_tracks_fill_the_view_after_the_channel_count_changes_while_shown(qtbot) -> None:
    editor = WaveformEditor()
    qtbot.addWidget(editor)
    editor.resize(900, 600)
    editor.show()
    qtbot.waitExposed(editor)
    editor.set_audio(Audio(tone(0.5, channels=2), RATE))
    heights = [track.plot.geometry().height() for track in editor._tracks]
    assert len(heights) == 2 and min(heights) > 100
    editor.actions["spectrogram"].trigger()
    editor.set_audio(Audio(tone(0.5, channels=1), RATE))
    assert editor._tracks[0].plot.geometry().height() > 100
    assert editor.spectrogram_track.plot.geometry().height() > 100


def test_dragging_a_selection_edge_in_one_track_moves_it_everywhere(editor) -> None:
    editor.set_selection(1000, 2000)
    editor._tracks[1].region.setRegion((0.1, 0.3))  # what pyqtgraph does while an edge is dragged
    assert editor.selection() == (800, 2400)
    assert editor._tracks[0].region.getRegion() == pytest.approx((0.1, 0.3))
    assert editor.selection_start.value() == pytest.approx(0.1)
