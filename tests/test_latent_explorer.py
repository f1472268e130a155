"""The latent explorer driven like a user would, on the shipped PPCA model (fast), and on a tiny
GAN for the model's own named directions and maps of prior samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from plugins.gan.model import GAN, GANConfig
from plugins.gan.model import load as load_gan
from plugins.ppca.model import load
from studio.core import latent as core
from studio.core import media
from studio.core.checkpoints import save_checkpoint
from studio.core.datasets import scan
from studio.core.store import Project
from studio.qt.latent_explorer import LatentExplorer

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "ppca-mnist"
DIGITS = ROOT / "data" / "mnist-5k" / "test"


@pytest.fixture(scope="module")
def model():
    return load(MODEL_DIR)


@pytest.fixture(scope="module")
def digits() -> tuple[list[np.ndarray], list[str]]:
    files = scan(DIGITS)[::10]  # 100 digits, ten of each
    return [media.load_image(f) for f in files], [f.parent.name for f in files]


class ProtocolOnly:
    """A model offering only the LatentModel protocol (no likelihood)."""

    def __init__(self, model) -> None:
        self._model = model
        self.latent_dim = model.latent_dim

    def encode_images(self, images):
        return self._model.encode_images(images)

    def decode_latents(self, latents):
        return self._model.decode_latents(latents)


def make_explorer(qtbot, model, project=None, model_id: str = "ppca-mnist") -> LatentExplorer:
    explorer = LatentExplorer(project=project)
    qtbot.addWidget(explorer)
    explorer.resize(1200, 800)
    explorer.show()
    explorer.set_model(model, model_id)
    qtbot.waitUntil(lambda: explorer.preview_image is not None)
    return explorer


@pytest.fixture
def mapped(qtbot, model, digits) -> LatentExplorer:
    explorer = make_explorer(qtbot, ProtocolOnly(model))
    images, labels = digits
    with qtbot.waitSignal(explorer.mapReady, timeout=10000):
        explorer.set_points(model.encode_images(images), labels, images)
    return explorer


def decoded(model, latent: np.ndarray) -> np.ndarray:
    return model.decode_latents(np.asarray(latent, np.float32)[None])[0]


def shows(explorer: LatentExplorer, model, latent: np.ndarray) -> bool:
    return explorer.preview_image is not None and np.array_equal(explorer.preview_image, decoded(model, latent))


def on_map(explorer: LatentExplorer, xy: np.ndarray) -> QPoint:
    QApplication.processEvents()  # let the plot settle its layout before pixels are computed
    return explorer.map.widget_position(xy)


def send_mouse(widget, kind, position: QPoint, buttons, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    button = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, position, widget.mapToGlobal(position), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def test_clicking_a_point_on_the_map_shows_that_point(qtbot, model, mapped):
    index = int(np.argmax(np.linalg.norm(mapped.projection.coords, axis=1)))  # an outlying, unmistakable point
    before = mapped.preview_image.copy()
    qtbot.mouseClick(mapped.map.viewport(), Qt.MouseButton.LeftButton, pos=on_map(mapped, mapped.projection.coords[index]))
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.latents[index]))
    assert not np.array_equal(mapped.preview_image, before)
    np.testing.assert_allclose(mapped.current_latent(), mapped.latents[index])


def test_dragging_on_the_map_makes_the_preview_follow_the_pointer(qtbot, model, mapped):
    viewport = mapped.map.viewport()
    low, high = mapped.projection.coords.min(axis=0), mapped.projection.coords.max(axis=0)
    start, end = on_map(mapped, low * 0.5), on_map(mapped, high * 0.5)
    left = Qt.MouseButton.LeftButton
    send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, start, left)
    for t in np.linspace(0.0, 1.0, 12)[1:]:
        position = QPoint(round(start.x() + t * (end.x() - start.x())), round(start.y() + t * (end.y() - start.y())))
        send_mouse(viewport, QMouseEvent.Type.MouseMove, position, left)
    send_mouse(viewport, QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
    # The point shown lies under the pointer: its PCA map position is where the drag ended.
    pixel = np.abs(np.asarray(mapped.map.box.viewPixelSize()))
    qtbot.waitUntil(lambda: np.all(np.abs(mapped.projection.to_map(mapped.current_latent())[0] - high * 0.5) < 2 * pixel))
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.current_latent()))
    assert mapped.frames_shown >= 2


def test_shift_click_adds_a_path_point(qtbot, mapped):
    index = int(np.argmin(mapped.projection.coords[:, 0]))
    qtbot.mouseClick(mapped.map.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     on_map(mapped, mapped.projection.coords[index]))
    assert len(mapped.path_anchors) == 1
    np.testing.assert_allclose(mapped.path_anchors[0], mapped.latents[index])


def test_direction_slider_moves_the_decoded_image(qtbot, model, mapped):
    mapped.set_latent(mapped.latents[3])
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.latents[3]))
    mean, directions, scales = mapped._basis
    before = (mapped.current_latent() - mean) @ directions.T / scales
    mapped.direction_bank.sliders[0].setValue(2.5)
    qtbot.waitUntil(lambda: not shows(mapped, model, mapped.latents[3]))
    after = (mapped.current_latent() - mean) @ directions.T / scales
    assert after[0] == pytest.approx(2.5, abs=1e-4)
    np.testing.assert_allclose(after[1:], before[1:], atol=1e-4)
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.current_latent()))


def test_dimension_slider_and_temperature_set_the_latent(qtbot, model, mapped):
    mapped.set_latent(mapped.latents[7])
    mapped.dimension_bank.sliders[4].setValue(1.5)
    qtbot.waitUntil(lambda: mapped.current_latent()[4] == pytest.approx(1.5))
    base = mapped.current_latent().copy()
    mapped.temperature.setValue(0.5)
    np.testing.assert_allclose(mapped.current_latent(), base * 0.5, rtol=1e-6)
    qtbot.waitUntil(lambda: shows(mapped, model, base * 0.5))


def test_variations_are_seeded_neighbours_around_the_current_point(qtbot, model, mapped):
    mapped.tabs.setCurrentIndex(2)  # Variations
    mapped.set_latent(mapped.latents[11])
    # The centre cell is the current point, once the pointer has settled.
    qtbot.waitUntil(lambda: mapped.variations.grid.count() == 9 and len(mapped._variation_latents) == 9
                    and np.allclose(mapped._variation_latents[4], mapped.latents[11]))
    first = mapped._variation_latents.copy()
    mapped.variations.size.setCurrentIndex(1)  # 4 x 4, then back: the same seed gives the same grid
    qtbot.waitUntil(lambda: mapped.variations.grid.count() == 16)
    mapped.variations.size.setCurrentIndex(0)
    qtbot.waitUntil(lambda: mapped.variations.grid.count() == 9)
    np.testing.assert_allclose(mapped._variation_latents, first)
    qtbot.mouseClick(mapped.variations.grid, Qt.MouseButton.LeftButton, pos=mapped.variations.grid.cell_rect(0).center())
    qtbot.waitUntil(lambda: shows(mapped, model, first[0]))


def test_a_three_point_path_exports_frames_gif_apng_and_a_sheet(qtbot, model, mapped, tmp_path):
    anchors = [mapped.latents[0], mapped.latents[40], mapped.latents[90]]
    mapped.path_panel.steps.setValue(7)
    with qtbot.waitSignal(mapped.pathReady):
        for latent in anchors:
            mapped.add_path_point(latent)
    expected = np.stack(core.path(anchors, 7, "slerp"))
    np.testing.assert_allclose(mapped.path_frames, expected)
    assert mapped.path_panel.strip.count() == 7

    mapped.path_panel.scrub.setValue(3)
    qtbot.waitUntil(lambda: shows(mapped, model, expected[3]))

    with qtbot.waitSignal(mapped.exported) as frames:
        mapped.export_path("frames", tmp_path / "frames")
    assert [p.name for p in frames.args[0]] == [f"frame_{i:04d}.png" for i in range(7)]
    for i, file in enumerate(frames.args[0]):
        record = core.read_export_latents(file)
        np.testing.assert_allclose(record.latents[0], expected[i], rtol=1e-6)
        assert record.model_id == "ppca-mnist"
        assert media.load_image(file).shape[:2] == (28 * 4, 28 * 4)

    for kind, name in (("gif", "path.gif"), ("apng", "path.png")):
        with qtbot.waitSignal(mapped.exported) as done:
            mapped.export_path(kind, tmp_path / name)
        with Image.open(done.args[0][0]) as animation:
            assert animation.n_frames == 7
        record = core.read_export_latents(done.args[0][0])
        np.testing.assert_allclose(record.latents, expected, rtol=1e-6)
        np.testing.assert_allclose(record.anchors, np.stack(anchors), rtol=1e-6)

    with qtbot.waitSignal(mapped.exported) as sheet:
        mapped.export_path("sheet", tmp_path / "sheet.png")
    assert core.read_export_latents(sheet.args[0][0]).latents.shape == (7, model.latent_dim)

    # An export reopens as the same path.
    mapped.clear_path()
    with qtbot.waitSignal(mapped.pathReady):
        mapped.open_export(tmp_path / "path.gif")
    np.testing.assert_allclose(np.stack(mapped.path_anchors), np.stack(anchors), rtol=1e-6)
    np.testing.assert_allclose(mapped.path_frames, expected, rtol=1e-5)


def test_path_points_from_image_files_are_encoded(qtbot, model, mapped, digits, tmp_path):
    images, _ = digits
    files = [media.save_image(tmp_path / f"{i}.png", images[i]) for i in (5, 55)]
    mapped.add_path_files(files)
    qtbot.waitUntil(lambda: len(mapped.path_anchors) == 2)
    np.testing.assert_allclose(np.stack(mapped.path_anchors), model.encode_images([images[5], images[55]]), rtol=1e-5)


def test_a_bookmark_is_listed_and_restores_its_latent(qtbot, model, digits, tmp_path):
    project = Project(tmp_path / "project")
    explorer = make_explorer(qtbot, model, project)
    point = model.encode_images(digits[0][:1])[0]
    explorer.set_latent(point)
    bookmark_id = explorer.save_bookmark("curly two")
    assert explorer.bookmarks.list.count() == 1
    assert explorer.bookmarks.list.item(0).text() == "curly two"
    assert [name for _, name, _, _ in project.bookmarks("ppca-mnist")] == ["curly two"]

    explorer.set_latent(np.zeros(model.latent_dim, np.float32))
    qtbot.waitUntil(lambda: shows(explorer, model, np.zeros(model.latent_dim)))
    explorer.bookmarks.list.setCurrentRow(0)
    qtbot.mouseClick(explorer.bookmarks.restore, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(explorer.current_latent(), point)
    qtbot.waitUntil(lambda: shows(explorer, model, point))

    # A second explorer on the same project sees it too, and restores it by id.
    other = make_explorer(qtbot, model, Project(tmp_path / "project"))
    assert other.bookmarks.list.count() == 1
    other.restore_bookmark(bookmark_id)
    np.testing.assert_allclose(other.current_latent(), point)


def test_likelihood_overlay_colours_the_map_and_scores_the_current_point(qtbot, model, tmp_path):
    for digit in ("1", "7", "8"):
        shutil.copytree(DIGITS / digit, tmp_path / "digits" / digit, ignore=lambda d, names: sorted(names)[12:])
    explorer = make_explorer(qtbot, model)
    with qtbot.waitSignal(explorer.likelihoodReady, timeout=20000):
        explorer.load_points_from_folder(tmp_path / "digits")
    assert sorted(set(explorer.labels)) == ["1", "7", "8"] and len(explorer.labels) == 36
    images = [media.load_image(f) for f in scan(tmp_path / "digits")]
    np.testing.assert_allclose(explorer.bits_per_dim, model.bits_per_dim_images(images), rtol=1e-6)

    explorer.colour_combo.setCurrentIndex(explorer.colour_combo.findData("bits"))
    assert "bits/dim" in explorer.legend.text()
    brushes = {explorer.map.points.data["brush"][i].color().name() for i in range(36)}
    assert len(brushes) > 5  # coloured by value, not by the three folders

    explorer.set_latent(explorer.latents[0])
    qtbot.waitUntil(lambda: explorer.current_bits_per_dim is not None and shows(explorer, model, explorer.latents[0]))
    expected = float(model.bits_per_dim_images([explorer.preview_image])[0])
    qtbot.waitUntil(lambda: explorer.current_bits_per_dim == pytest.approx(expected))
    assert f"{expected:.3f}" in explorer.bits_label.text()


def test_a_model_without_likelihood_has_no_overlay(qtbot, mapped):
    assert mapped.bits_per_dim is None
    assert mapped.colour_combo.findData("bits") < 0


def test_tsne_map_blends_neighbours_and_snaps_to_points(qtbot, model, digits):
    mapped = make_explorer(qtbot, model)
    mapped.projection_combo.setCurrentText("t-SNE")
    images = digits[0][::3]  # t-SNE is slow: a small map
    with qtbot.waitSignal(mapped.mapReady, timeout=30000):
        mapped.set_points(model.encode_images(images))
    assert mapped.projection.method == "t-SNE" and not mapped.keep_detail.isEnabled()
    index = 17
    qtbot.mouseClick(mapped.map.viewport(), Qt.MouseButton.LeftButton, pos=on_map(mapped, mapped.projection.coords[index]))
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.latents[index]))
    blend = mapped.projection.to_latent(mapped.projection.coords[[3, 4]].mean(axis=0))
    assert np.linalg.norm(blend) > 0 and not np.allclose(blend, mapped.latents[3])


def test_bad_input_is_one_clear_error(qtbot, model):
    explorer = make_explorer(qtbot, model)
    with pytest.raises(ValueError, match="points must be"):
        explorer.set_points(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="takes latents of 32 numbers"):
        explorer.set_latent(np.zeros(4))
    explorer.export_path("gif", "/nonexistent/x.gif")
    assert "two or more points" in explorer.status.text()


def test_thumbnails_use_image_and_latent_changed(qtbot, model, mapped):
    mapped.show_combo.setCurrentText("Thumbnails")
    assert 0 < len(mapped.map.thumbnails) <= len(mapped.latents)
    mapped.show_combo.setCurrentText("Points")
    assert mapped.map.thumbnails == []

    with qtbot.waitSignal(mapped.latentChanged) as changed:
        mapped.set_latent(mapped.latents[2])
    np.testing.assert_allclose(changed.args[0], mapped.latents[2])
    qtbot.waitUntil(lambda: shows(mapped, model, mapped.latents[2]))
    with qtbot.waitSignal(mapped.exportRequested) as sent:
        qtbot.mouseClick(mapped.use_button, Qt.MouseButton.LeftButton)
    image, meta = sent.args
    np.testing.assert_array_equal(image, decoded(model, mapped.latents[2]))
    assert meta["model_id"] == "ppca-mnist"
    np.testing.assert_allclose(meta["latent"], mapped.latents[2], rtol=1e-6)


def test_keep_detail_moves_only_within_the_map_plane(model, digits):
    latents = model.encode_images(digits[0])
    projection = core.fit_projection(latents)
    base = latents[9]
    moved = projection.to_latent(np.array([0.7, -0.3]), base)
    np.testing.assert_allclose(projection.to_map(moved)[0], [0.7, -0.3], atol=1e-5)
    off_plane = np.eye(len(base)) - projection.directions.T @ projection.directions
    np.testing.assert_allclose(off_plane @ (moved - base), 0, atol=1e-5)
    np.testing.assert_allclose(projection.to_latent(projection.to_map(base)[0]),
                               projection.mean + (base - projection.mean) @ projection.directions.T @ projection.directions,
                               atol=1e-5)


def test_encode_folder_samples_large_folders_evenly_and_skips_bad_files(model, tmp_path):
    for digit in ("0", "1"):
        shutil.copytree(DIGITS / digit, tmp_path / digit, ignore=lambda d, names: sorted(names)[20:])
    (tmp_path / "1" / "broken.png").write_bytes(b"not a png")
    steps = core.encode_folder(model, tmp_path, limit=30)
    with pytest.raises(StopIteration) as finished:
        while True:
            done, total, phase = next(steps)
            assert 0 <= done <= total
    folder = finished.value.value
    assert len(folder.labels) + folder.skipped == 30
    assert folder.skipped <= 1 and {"0", "1"} == set(folder.labels)
    assert folder.latents.shape == (len(folder.labels), model.latent_dim)
    assert folder.bits_per_dim.shape == (len(folder.labels),)


def test_exports_refuse_unknown_formats(model, tmp_path):
    images = model.decode_latents(np.zeros((2, model.latent_dim), np.float32))
    with pytest.raises(media.MediaError, match="animations export as"):
        core.export_animation(tmp_path / "x.mp4", images, np.zeros((2, model.latent_dim)), "ppca-mnist")
    plain = media.save_image(tmp_path / "plain.png", images[0])
    assert core.read_export_latents(plain) is None


def test_keys_r_and_p_play_random_points_into_a_path(qtbot, model):
    explorer = make_explorer(qtbot, model)
    explorer.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is explorer)
    explorer.preview.setFocus()
    before = explorer.current_latent().copy()
    qtbot.keyClick(explorer.preview, Qt.Key.Key_R)
    assert not np.allclose(explorer.current_latent(), before)
    qtbot.keyClick(explorer.preview, Qt.Key.Key_P)
    qtbot.keyClick(explorer.preview, Qt.Key.Key_R)
    qtbot.keyClick(explorer.preview, Qt.Key.Key_P)
    assert len(explorer.path_anchors) == 2 and not np.allclose(explorer.path_anchors[0], explorer.path_anchors[1])


GAN_NAMES = ["smile", "", "hue"]  # the second left unnamed


@pytest.fixture(scope="module")
def gan(tmp_path_factory) -> GAN:
    """A tiny 8 px GAN with three principal directions, saved and loaded like a shipped one."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GAN(GANConfig(size=8, latent_dim=6, width=4, directions=3))
    model.train()
    with torch.no_grad():  # a few forward passes give BatchNorm running statistics
        for _ in range(3):
            model.decode(torch.randn(16, 6))
    model.eval()
    model.find_directions(samples=512)
    folder = tmp_path_factory.mktemp("models") / "tiny-gan"
    save_checkpoint(folder, model.state_dict(), {"id": "tiny-gan", "plugin": "studio.gan", "family": "gan",
                                                 "model": model.config_dict(), "names": GAN_NAMES})
    return load_gan(folder)


def test_gan_sliders_carry_its_named_directions_and_move_the_preview(qtbot, gan):
    explorer = make_explorer(qtbot, gan, model_id="tiny-gan")
    names, mean, directions, scales = gan.latent_basis()
    assert names == ["smile", "direction 2", "hue"]
    labels = [explorer.direction_bank.widget().layout().itemAtPosition(row, 0).widget().text() for row in range(3)]
    assert labels == names and len(explorer.direction_bank.sliders) == 3
    assert "tiny-gan's own latent directions" in explorer.direction_bank.hint.text()

    start = np.random.default_rng(1).standard_normal(gan.latent_dim).astype(np.float32)
    explorer.set_latent(start)
    qtbot.waitUntil(lambda: shows(explorer, gan, start))
    explorer.direction_bank.sliders[2].setValue(2.0)  # "hue", two standard deviations out
    qtbot.waitUntil(lambda: not np.allclose(explorer.current_latent(), start))
    moved = explorer.current_latent()
    assert float((moved - mean) @ directions[2]) / scales[2] == pytest.approx(2.0, abs=1e-4)
    np.testing.assert_allclose(moved, start + (2.0 * scales[2] - (start - mean) @ directions[2]) * directions[2], atol=1e-5)
    qtbot.waitUntil(lambda: shows(explorer, gan, moved))
    assert not np.array_equal(explorer.preview_image, decoded(gan, start))

    # A map of points keeps the model's directions rather than the points' PCA.
    with qtbot.waitSignal(explorer.mapReady, timeout=10000):
        explorer.set_points(np.random.default_rng(2).standard_normal((20, gan.latent_dim)))
    np.testing.assert_allclose(explorer._basis[1], directions)


def test_sampling_the_gan_prior_fills_the_map_with_decoded_samples(qtbot, gan):
    explorer = make_explorer(qtbot, gan, model_id="tiny-gan")
    explorer.sample_count.setValue(40)
    with qtbot.waitSignal(explorer.mapReady, timeout=20000):
        qtbot.mouseClick(explorer.sample_button, Qt.MouseButton.LeftButton)
    assert explorer.latents.shape == (40, gan.latent_dim) and len(explorer.projection.coords) == 40
    assert len(explorer.map.points.data) == 40
    np.testing.assert_array_equal(explorer.thumbnails[7], decoded(gan, explorer.latents[7]))
    assert "40 samples from the prior" in explorer.status.text()
    assert not explorer.progress.isVisible()

    explorer.show_combo.setCurrentText("Thumbnails")
    assert 0 < len(explorer.map.thumbnails) <= 40
    index = int(np.argmax(np.linalg.norm(explorer.projection.coords, axis=1)))
    qtbot.mouseClick(explorer.map.viewport(), Qt.MouseButton.LeftButton,
                     pos=on_map(explorer, explorer.projection.coords[index]))
    qtbot.waitUntil(lambda: shows(explorer, gan, explorer.latents[index]))


def test_prior_samples_are_seeded_and_redrawn_for_a_new_model(qtbot, model):
    explorer = make_explorer(qtbot, model)
    with qtbot.waitSignal(explorer.mapReady, timeout=10000):
        explorer.sample_points_from_prior(30, seed=4)
    expected = np.random.default_rng(4).standard_normal((30, model.latent_dim)).astype(np.float32)
    np.testing.assert_array_equal(explorer.latents, expected)
    assert [im.shape for im in explorer.thumbnails] == [(28, 28, 1)] * 30
    with qtbot.waitSignal(explorer.mapReady, timeout=10000):
        explorer.set_model(ProtocolOnly(model), "ppca-mnist")
    np.testing.assert_array_equal(explorer.latents, expected)
    with pytest.raises(ValueError, match="at least one point"):
        next(core.sample_prior(model, 0))
