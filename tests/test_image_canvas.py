"""The image canvas driven like a user would: mouse strokes, undo, paste, drop, export."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRect, Qt, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QGuiApplication, QImage, QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox

from studio.core.media import load_image, read_metadata
from studio.qt.image_canvas import ImageCanvas


def gradient_image(height: int = 64, width: int = 80, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    planes = [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256, np.full_like(x, 200)]
    return np.stack(planes[:channels], axis=2).astype(np.uint8)


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    widget = ImageCanvas()
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def messages(monkeypatch) -> list[str]:
    shown: list[str] = []

    def capture(parent, title, text, *args, **kwargs):
        shown.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(capture))
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(capture))
    return shown


def viewport_point(canvas: ImageCanvas, x: float, y: float) -> QPoint:
    return canvas.view.mapFromScene(QPointF(x, y))


def drag(qtbot, canvas: ImageCanvas, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    viewport = canvas.view.viewport()
    qtbot.mousePress(viewport, button, pos=viewport_point(canvas, *points[0]))
    for point in points[1:]:
        qtbot.mouseMove(viewport, viewport_point(canvas, *point))
    qtbot.mouseRelease(viewport, button, pos=viewport_point(canvas, *points[-1]))


def test_mouse_stroke_paints_the_mask_and_undo_redo_replay_it(qtbot, canvas):
    canvas.set_image(gradient_image())
    canvas.set_tool("brush")
    canvas.set_brush_size(8)
    canvas.set_brush_hardness(1.0)
    assert canvas.mask() is None
    with qtbot.waitSignal(canvas.maskChanged):
        drag(qtbot, canvas, [(10, 20), (40, 20), (60, 20)])
    mask = canvas.mask()
    assert mask.shape == (64, 80) and mask.dtype == np.uint8
    assert (mask[20, 10:61] == 255).all()  # along the stroke
    assert mask[:10].max() == 0 and mask[30:].max() == 0  # nowhere near it
    painted = mask.copy()

    canvas.undo_stack.undo()
    assert canvas.mask() is None
    canvas.undo_stack.redo()
    np.testing.assert_array_equal(canvas.mask(), painted)


def test_each_stroke_is_one_undo_step(canvas):
    canvas.set_image(gradient_image())
    steps = canvas.undo_stack.count()
    canvas.set_brush_size(6)
    canvas.paint_stroke([(10, 10), (30, 10)])
    canvas.paint_stroke([(10, 40), (30, 40)])
    assert canvas.undo_stack.count() == steps + 2
    canvas.undo_stack.undo()
    mask = canvas.mask()
    assert mask[10, 20] == 255 and mask[40, 20] == 0


def test_eraser_removes_paint(qtbot, canvas):
    canvas.set_image(gradient_image())
    canvas.set_brush_size(10)
    canvas.set_brush_hardness(1.0)
    canvas.paint_stroke([(5, 30), (75, 30)])
    canvas.set_tool("eraser")
    drag(qtbot, canvas, [(40, 30), (40, 31)])
    mask = canvas.mask()
    assert mask[30, 40] == 0 and mask[30, 10] == 255 and mask[30, 70] == 255
    canvas.undo_stack.undo()
    assert canvas.mask()[30, 40] == 255


def test_soft_brush_fades_towards_its_edge(canvas):
    canvas.set_image(gradient_image())
    canvas.set_brush_size(30)
    canvas.set_brush_hardness(0.0)
    canvas.paint_stroke([(40, 32)])
    row = canvas.mask()[32]
    assert row[40] > 200 and 0 < row[40 + 12] < row[40 + 6] < row[40]


def test_rectangle_selection_fills_and_clears_the_mask(qtbot, canvas):
    canvas.set_image(gradient_image())
    canvas.set_tool("select")
    drag(qtbot, canvas, [(10, 5), (20, 15), (30, 25)])
    assert canvas.selection() == QRect(10, 5, 20, 20)
    canvas.fill_selection()
    mask = canvas.mask()
    assert (mask[5:25, 10:30] == 255).all()
    assert mask.sum() == 255 * 20 * 20

    canvas.set_selection(QRect(15, 10, 5, 5))
    canvas.clear_selection_area()
    mask = canvas.mask()
    assert (mask[10:15, 15:20] == 0).all() and mask.sum() == 255 * (400 - 25)
    canvas.undo_stack.undo()
    assert canvas.mask().sum() == 255 * 20 * 20


def test_invert_and_clear_mask(canvas):
    canvas.set_image(gradient_image())
    canvas.set_selection(QRect(0, 0, 80, 32))
    canvas.fill_selection()
    canvas.invert_mask()
    mask = canvas.mask()
    assert mask[:32].max() == 0 and mask[32:].min() == 255
    canvas.clear_mask()
    assert canvas.mask() is None
    canvas.undo_stack.undo()
    assert canvas.mask()[40, 40] == 255


def test_set_image_is_undoable_and_keeps_a_same_size_mask(qtbot, canvas):
    first, second = gradient_image(), 255 - gradient_image()
    canvas.set_image(first, record_id=1)
    canvas.paint_stroke([(20, 20)])
    with qtbot.waitSignal(canvas.imageChanged):
        canvas.set_image(second, record_id=2)
    np.testing.assert_array_equal(canvas.image(), second)
    assert canvas.record_id() == 2 and canvas.mask()[20, 20] == 255  # same size: the mask stays

    canvas.set_image(gradient_image(32, 32, 4), record_id=3)
    assert canvas.mask() is None  # another size: a fresh mask
    canvas.undo_stack.undo()
    assert canvas.record_id() == 2 and canvas.mask()[20, 20] == 255
    with qtbot.waitSignal(canvas.imageChanged):
        canvas.undo_stack.undo()
    np.testing.assert_array_equal(canvas.image(), first)
    assert canvas.record_id() == 1


def test_image_is_a_read_only_copy_and_bad_arrays_are_refused(canvas):
    source = gradient_image(channels=1)[..., 0]
    canvas.set_image(source)
    shown = canvas.image()
    assert shown.shape == (64, 80, 1) and not shown.flags.writeable
    source[:] = 0
    assert shown.max() > 0
    with pytest.raises(ValueError, match="uint8"):
        canvas.set_image(np.zeros((4, 4, 3), np.float32))
    canvas.set_image(None)
    assert canvas.image() is None and canvas.mask() is None


def test_send_to_menu_emits_the_action(qtbot, canvas):
    menu = canvas.send_menu
    assert not canvas.send_button.isEnabled()  # nothing to send yet
    canvas.set_image(gradient_image())
    assert canvas.send_button.isEnabled()
    for target in ("edit", "inpaint", "encode"):
        action = next(a for a in menu.actions() if a.data() == target)
        with qtbot.waitSignal(canvas.sendToAction) as blocker:
            action.trigger()
        assert blocker.args == [target]


def test_ctrl_v_pastes_an_image_from_the_clipboard(qtbot, canvas):
    pasted = gradient_image(24, 40, 4)
    image = QImage(pasted.data, 40, 24, 160, QImage.Format.Format_RGBA8888).copy()
    QGuiApplication.clipboard().setImage(image)
    canvas.view.setFocus()
    with qtbot.waitSignal(canvas.imageChanged):
        qtbot.keyClick(canvas.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.image(), pasted)


def drop(canvas: ImageCanvas, mime: QMimeData) -> None:
    """Drag ``mime`` over the middle of the view and drop it there."""
    viewport = canvas.view.viewport()
    where = viewport.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(where, *args)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(viewport, QDropEvent(QPointF(where), *args))


def test_dropping_a_corrupt_file_explains_and_changes_nothing(qtbot, canvas, messages, testdata):
    original = gradient_image()
    canvas.set_image(original)
    steps = canvas.undo_stack.count()
    for name in ("truncated_image.png", "decompression_bomb.gif", "pngtest_bad.png.bin"):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(testdata / "images-bad" / name))])
        count = len(messages)
        drop(canvas, mime)
        qtbot.waitUntil(lambda c=count: len(messages) > c, timeout=10_000)
        assert name in messages[-1] and "\n" not in messages[-1]
    np.testing.assert_array_equal(canvas.image(), original)
    assert canvas.undo_stack.count() == steps


def test_dropping_a_good_file_or_raw_image_data_loads_it(qtbot, canvas, testdata):
    path = testdata / "images-odd" / "hopper.png"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    with qtbot.waitSignal(canvas.fileLoaded, timeout=10_000) as loaded:
        drop(canvas, mime)
    np.testing.assert_array_equal(canvas.image(), load_image(path))
    assert loaded.args == [str(path), None]

    raw = QMimeData()
    raw.setData("image/png", (testdata / "images-odd" / "transparent.png").read_bytes())
    with qtbot.waitSignal(canvas.imageChanged, timeout=10_000):
        drop(canvas, raw)
    assert canvas.image().shape == load_image(testdata / "images-odd" / "transparent.png").shape


def test_export_writes_the_image_with_its_metadata(qtbot, canvas, tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    canvas.set_image(gradient_image(), record_id=7)
    canvas.set_metadata({"seed": 3, "params": {"steps": 20}})
    canvas.export()
    qtbot.waitUntil(lambda: target.exists() and not canvas.busy(), timeout=10_000)
    np.testing.assert_array_equal(load_image(target), gradient_image())
    assert read_metadata(target) == {"seed": 3, "params": {"steps": 20}}


def test_fit_zoom_and_actual_size_change_the_view(canvas):
    canvas.set_image(gradient_image(1000, 1200))
    canvas.fit()
    fitted = canvas.zoom()
    assert 0.2 < fitted < 0.6
    canvas.zoom_in()
    assert canvas.zoom() == pytest.approx(fitted * 1.25)
    canvas.zoom_out()
    canvas.zoom_out()
    assert canvas.zoom() == pytest.approx(fitted / 1.25)
    canvas.actual_size()
    assert canvas.view.transform().m11() == 1.0


def test_wheel_zooms_around_the_cursor(canvas):
    canvas.set_image(gradient_image(400, 400))
    canvas.fit()
    viewport = canvas.view.viewport()
    cursor = viewport_point(canvas, 100, 300)
    before = canvas.view.mapToScene(cursor)
    wheel = QWheelEvent(QPointF(cursor), QPointF(viewport.mapToGlobal(cursor)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    zoom = canvas.zoom()
    QApplication.sendEvent(viewport, wheel)
    assert canvas.zoom() == pytest.approx(zoom * 1.25**2)
    after = canvas.view.mapToScene(cursor)
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2


def test_middle_drag_and_hand_tool_pan_without_painting(qtbot, canvas):
    canvas.set_image(gradient_image(400, 400))
    canvas.actual_size()
    centre = canvas.view.mapToScene(canvas.view.viewport().rect().center())
    viewport = canvas.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(200, 200))
    qtbot.mouseMove(viewport, QPoint(150, 170))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(150, 170))
    moved = canvas.view.mapToScene(canvas.view.viewport().rect().center())
    assert moved.x() - centre.x() == pytest.approx(50, abs=1) and moved.y() - centre.y() == pytest.approx(30, abs=1)

    canvas.set_tool("hand")
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(viewport, QPoint(220, 200))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(220, 200))
    assert canvas.view.mapToScene(canvas.view.viewport().rect().center()).x() == pytest.approx(moved.x() - 20, abs=1)
    assert canvas.mask() is None


def test_compare_shows_the_replaced_image(qtbot, canvas):
    canvas.set_image(gradient_image())
    canvas.set_compare(True)
    assert not canvas.view.compare_item.isVisible()  # nothing to compare with yet
    canvas.set_image(255 - gradient_image())
    canvas.set_compare(True)
    assert canvas.view.compare_item.isVisible()
    canvas.set_compare_split(0.25)
    assert canvas.view.compare_item.split_x() == pytest.approx(20)
    drag(qtbot, canvas, [(20, 30), (50, 30), (60, 30)])  # dragging the line moves it, paints nothing
    assert canvas.view.compare_item.split_x() == pytest.approx(60, abs=0.5)
    assert canvas.mask() is None
    canvas.undo_stack.undo()
    assert not canvas.view.compare_item.isVisible()


def test_large_image_strokes_touch_only_their_tiles(canvas):
    canvas.set_image(np.zeros((4096, 4096, 3), np.uint8))
    canvas.set_brush_size(64)
    canvas.paint_stroke([(100, 100), (3000, 120)])
    command = canvas.undo_stack.command(canvas.undo_stack.index() - 1)
    assert len(command.tiles) <= 2 * (3000 // 256 + 2)  # one or two tile rows, not the whole mask
    mask = canvas.mask()
    assert mask.shape == (4096, 4096) and mask[110, 1500] == 255 and mask[2000, 2000] == 0


def test_space_drag_pans_instead_of_painting(qtbot, canvas):
    canvas.set_image(gradient_image(400, 400))
    canvas.actual_size()
    canvas.set_tool("brush")
    view = canvas.view
    before = view.mapToScene(view.viewport().rect().center())
    view.setFocus()
    qtbot.keyPress(view, Qt.Key.Key_Space)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(view.viewport(), QPoint(170, 200))
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(170, 200))
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    assert view.mapToScene(view.viewport().rect().center()).x() == pytest.approx(before.x() + 30, abs=1)
    assert canvas.mask() is None


def test_status_line_shows_zoom_and_the_pixel_under_the_cursor(qtbot, canvas):
    image = gradient_image()
    canvas.set_image(image)
    canvas.actual_size()
    assert canvas.status_text().startswith("80 × 64 RGB")
    assert "100%" in canvas.status_text()
    canvas.zoom_in()
    assert "125%" in canvas.status_text()
    canvas.view.set_zoom(4.0)
    qtbot.mouseMove(canvas.view.viewport(), viewport_point(canvas, 12.5, 30.5))
    values = " ".join(str(v) for v in image[30, 12])
    assert f"x 12  y 30   value {values}" in canvas.status_text()


def test_mask_overlay_visibility_and_opacity(canvas):
    canvas.set_image(gradient_image())
    canvas.paint_stroke([(20, 20)])
    canvas.set_mask_visible(False)
    assert not canvas.view.mask_layer.isVisible()
    assert canvas.mask()[20, 20] == 255  # hidden, not gone
    canvas.set_mask_visible(True)
    canvas.set_mask_opacity(0.8)
    assert canvas.view.mask_layer.isVisible() and canvas.view.mask_layer.opacity() == pytest.approx(0.8)


def test_export_to_an_unknown_format_explains(qtbot, canvas, messages, tmp_path):
    canvas.set_image(gradient_image())
    canvas.export(tmp_path / "out.xyz")
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "out.xyz" in messages[0] and "cannot write images" in messages[0]
    assert not (tmp_path / "out.xyz").exists()


def test_ctrl_z_in_the_middle_of_a_stroke_undoes_that_stroke(qtbot, canvas):
    canvas.set_image(gradient_image())
    canvas.set_brush_size(6)
    viewport = canvas.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=viewport_point(canvas, 10, 10))
    qtbot.mouseMove(viewport, viewport_point(canvas, 40, 10))
    canvas.view.setFocus()
    qtbot.keyClick(canvas.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseMove(viewport, viewport_point(canvas, 60, 10))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=viewport_point(canvas, 60, 10))
    assert canvas.mask() is None
    canvas.redo()
    mask = canvas.mask()
    assert mask[10, 25] == 255 and mask[10, 55] == 0


def test_canvas_keys_win_over_the_same_window_shortcuts_while_the_view_has_focus(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    canvas = ImageCanvas()
    window.setCentralWidget(canvas)
    window_undos: list[bool] = []
    window_undo = QAction("Undo", window)
    window_undo.setShortcut(QKeySequence.StandardKey.Undo)
    window_undo.triggered.connect(lambda: window_undos.append(True))
    window.addAction(window_undo)
    window.resize(640, 480)
    window.show()
    qtbot.waitExposed(window)
    canvas.set_image(gradient_image())
    canvas.paint_stroke([(20, 20)])
    canvas.view.setFocus()
    qtbot.keyClick(canvas.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert canvas.mask() is None and not window_undos
    qtbot.keyClick(canvas.view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.view.transform().m11() > 1  # fitted the 80 x 64 image: zoomed in
