"""The latent-space explorer: a map of encoded points to drag across, a big live preview,
direction sliders, temperature, variations, paths with exports, bookmarks and likelihood.

Works with any model implementing ``studio.core.latent.LatentModel``. Live traffic (drag,
sliders) only marks a frame as wanted; a 16 ms timer decodes at most one frame per tick, inline
when the model decodes in a few milliseconds, else on a worker thread (one in flight, latest
wins). Everything slower (encoding a folder, t-SNE, scoring, variations, strips, exports) runs
on worker threads, with stale results dropped.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core import latent as core
from studio.qt.explorer_map import MapView, label_colours, spread_subset, value_colours
from studio.qt.explorer_panels import (
    BookmarksPanel,
    PathPanel,
    SliderBank,
    ValueSlider,
    VariationsPanel,
    icon_from_array,
)
from studio.qt.explorer_paths import PathFeatures
from studio.qt.explorer_views import PixelView
from studio.qt.explorer_workers import Workers

FRAME_MS = 16
INLINE_DECODE_MS = 4.0  # models that decode faster than this draw on the UI thread, skipping the hop
SETTLE_MS = 120  # after the pointer rests this long: variations, bits/dim, marker of non-linear maps
DIRECTION_SLIDERS = 12
DIMENSION_SLIDERS_UP_TO = 64
DIRECTION_RANGE = 3.0  # direction sliders span +-3 standard deviations of the map's points
MAX_POINTS = 5000
PRIOR_SAMPLES = 500  # the default count of "Sample prior"
STREAM_GAP_S = 0.25  # frames closer than this belong to one gesture


def scrolling(page: QWidget) -> QScrollArea:
    """A page that scrolls rather than forcing the explorer taller than a docked workspace."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(page)
    return area


def _timed_decode(model: core.LatentModel, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    start = time.perf_counter()
    image = model.decode_latents(latent[None])[0]
    return latent, image, (time.perf_counter() - start) * 1000.0


class LatentExplorer(PathFeatures, QWidget):
    latentChanged = Signal(object)  # the latent (d,) now shown, at most once per frame
    exportRequested = Signal(object, dict)  # "Use image": the preview and {"latent", "model_id"}
    exported = Signal(list)  # files written by a path export
    mapReady = Signal()  # points projected and drawn, sliders rebuilt
    likelihoodReady = Signal()  # bits/dim of the map's points known
    pathReady = Signal()  # interpolation strip decoded
    frameShown = Signal()

    def __init__(self, parent: QWidget | None = None, project=None) -> None:
        super().__init__(parent)
        self.model: core.LatentModel | None = None
        self.model_id = ""
        self.project = None
        self._project_bridge = None
        self._base = np.zeros(0, np.float32)  # the point being explored; shown as base * temperature
        self.latents: np.ndarray | None = None  # (n, d) the map's points
        self.labels: list[str] | None = None
        self.thumbnails: list[np.ndarray] | None = None
        self.bits_per_dim: np.ndarray | None = None  # (n,)
        self.projection: core.MapProjection | None = None
        self._basis = (np.zeros(0), np.zeros((0, 0)), np.zeros(0))  # mean, directions (k, d), scales (k,)
        self._model_basis: tuple[list[str], tuple] | None = None  # the model's own named directions
        self._dim_scales: np.ndarray | None = None
        self._folder: Path | None = None
        self._prior_draw: tuple[int, int] | None = None  # (count, seed) when the map holds prior samples
        self.path_anchors, self.path_frames, self.path_images = [], None, []
        self.preview_image: np.ndarray | None = None
        self.current_bits_per_dim: float | None = None
        self.frames_shown = 0
        self._frame_wanted = False
        self._decode_in_flight = False
        self._decode_ms = float("inf")
        self._drag_base: np.ndarray | None = None
        self._last_frame_at = 0.0
        self._frame_rate = 0.0
        self._variation_latents = np.zeros((0, 0), np.float32)
        self._random = np.random.default_rng()
        self.workers = Workers(self)
        self._build()
        self.set_project(project)

    # building -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.map = MapView()
        self.load_button = QPushButton("Load folder…")
        self.open_button = QPushButton("Open export…")
        self.sample_button = QPushButton("Sample prior")
        self.sample_button.setToolTip("Map points drawn from the prior N(0, I), drawn as their decoded images")
        self.sample_count = QSpinBox()
        self.sample_count.setRange(3, MAX_POINTS)
        self.sample_count.setValue(PRIOR_SAMPLES)
        self.sample_count.setToolTip("How many prior samples to map")
        self.projection_combo = QComboBox()
        self.projection_combo.addItems(core.available_projections())
        self.show_combo = QComboBox()
        self.show_combo.addItems(["Points", "Thumbnails"])
        self.colour_combo = QComboBox()
        self.colour_combo.addItem("Colour: folder", "folder")
        self.colour_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.keep_detail = QCheckBox("Keep detail")
        self.keep_detail.setToolTip("Dragging moves only the map's two directions; the rest of the point stays")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%p% %v/%m")
        self.cancel_button = QPushButton("Cancel")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        tools = QHBoxLayout()
        for widget in (self.load_button, self.open_button, self.sample_button, self.sample_count, self.projection_combo, self.show_combo, self.colour_combo, self.keep_detail):
            tools.addWidget(widget)
        tools.addStretch(1)
        tools.addWidget(self.progress)
        tools.addWidget(self.cancel_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.map, 1)
        below_map = QHBoxLayout()
        below_map.addWidget(self.legend, 1)
        hint = QLabel("drag to play · shift-click: path point · wheel: zoom · middle-drag: pan")
        hint.setEnabled(False)  # drawn greyed out: a hint, not a control
        hint.setWordWrap(True)
        below_map.addWidget(hint)
        left_layout.addLayout(below_map)

        self.preview = PixelView(minimum=200)
        self.stats = QLabel("No model")
        self.bits_label = QLabel()
        for label in (self.stats, self.bits_label):  # per-frame text must not re-layout the window
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bits_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.temperature = ValueSlider(0.0, 2.0, 1.0)
        self.temperature.setToolTip("Scales the point toward the prior's centre (0) or away from it")
        self.random_button = QPushButton("Random")
        self.use_button = QPushButton("Use image")
        self.use_button.setToolTip("Send the preview, with its latent, to the canvas or gallery")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Temperature"))
        controls.addWidget(self.temperature, 1)
        controls.addWidget(self.random_button)
        controls.addWidget(self.use_button)
        self.direction_bank = SliderBank()
        self.dimension_bank = SliderBank()
        self.variations = VariationsPanel()
        self.path_panel = PathPanel()
        self.bookmarks = BookmarksPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.direction_bank, "Directions")
        self.tabs.addTab(self.dimension_bank, "Dimensions")
        for page, title in ((self.variations, "Variations"), (self.path_panel, "Path"), (self.bookmarks, "Bookmarks")):
            self.tabs.addTab(scrolling(page), title)
        self.status = QLabel()
        self.status.setWordWrap(True)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.preview, 3)
        info = QHBoxLayout()
        info.addWidget(self.stats, 1)
        info.addWidget(self.bits_label, 1)
        right_layout.addLayout(info)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.tabs, 2)
        right_layout.addWidget(self.status)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 4)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addWidget(splitter, 1)
        self._show_progress(None)

        self.frame_timer = QTimer(self)
        self.frame_timer.setInterval(FRAME_MS)
        self.frame_timer.timeout.connect(self._on_frame_tick)
        self.settle_timer = QTimer(self)
        self.settle_timer.setSingleShot(True)
        self.settle_timer.setInterval(SETTLE_MS)
        self.settle_timer.timeout.connect(self._on_settled)

        self.map.pointClicked.connect(self._on_map_click)
        self.map.pointerDragged.connect(self._on_map_drag)
        self.load_button.clicked.connect(self._choose_folder)
        self.open_button.clicked.connect(self._choose_export)
        self.sample_button.clicked.connect(
            lambda: self.sample_points_from_prior(self.sample_count.value(), int(self._random.integers(2**31)))
        )
        self.projection_combo.currentTextChanged.connect(lambda _: self._analyse())
        self.show_combo.currentIndexChanged.connect(lambda _: self._draw_thumbnails())
        self.colour_combo.currentIndexChanged.connect(lambda _: self._colour_points())
        self.cancel_button.clicked.connect(self.workers.cancel_job)
        self.workers.progress.connect(self._show_progress)
        self.workers.failed.connect(self._say)
        self.temperature.valueChanged.connect(lambda _: self._request_frame())
        self.random_button.clicked.connect(self._random_point)
        self.use_button.clicked.connect(self._use_image)
        self.direction_bank.valueChanged.connect(self._on_direction_slider)
        self.dimension_bank.valueChanged.connect(self._on_dimension_slider)
        self.variations.changed.connect(self._update_variations)
        self.variations.grid.cellClicked.connect(self._on_variation_clicked)
        self._connect_path_panel()
        self.tabs.currentChanged.connect(lambda _: (self._sync_sliders(), self._update_variations()))
        self.bookmarks.save.clicked.connect(lambda: self.save_bookmark(self.bookmarks.name.text()))
        self.bookmarks.restore.clicked.connect(self._restore_selected_bookmark)
        self.bookmarks.list.itemDoubleClicked.connect(lambda item: self.restore_bookmark(item.data(Qt.ItemDataRole.UserRole)))
        for keys, action in (("R", self._random_point), ("P", lambda: self.add_path_point(self.current_latent())),
                             ("B", lambda: self.save_bookmark(self.bookmarks.name.text()))):
            shortcut = QShortcut(QKeySequence(keys), self, lambda action=action: action() if self.model else None)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.random_button.setToolTip("A random point from the prior (R)")
        self.path_panel.add_current.setToolTip("Add the current point to the path (P)")
        self.bookmarks.save.setToolTip("Save the current point in the project (B)")
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.map, self.load_button, self.open_button, self.sample_button, self.sample_count,
                       self.temperature, self.random_button, self.use_button, self.tabs):
            widget.setEnabled(enabled)

    # public API ---------------------------------------------------------------------------------
    def set_model(self, model: core.LatentModel, model_id: str) -> None:
        """Explore ``model``; points, path and sliders reset (the last folder is re-encoded, the
        last prior sample redrawn)."""
        if not isinstance(model, core.LatentModel):
            raise TypeError(f"{model_id}: this model cannot encode and decode, so it cannot be explored")
        self.workers.cancel_job()
        self.model, self.model_id = model, model_id
        self.workers.bump("decode")
        self._decode_ms = float("inf")
        self._decode_in_flight = False
        self._base = np.zeros(model.latent_dim, np.float32)
        self._reset_path()
        self.latents = self.labels = self.thumbnails = self.bits_per_dim = self.projection = None
        self.map.clear_points()
        self._set_colour_modes(likelihood=False)
        self._model_basis = core.model_basis(model)
        self._set_basis(None)
        self._set_enabled(True)
        self.stats.setText(f"{model_id}: {model.latent_dim} latent dimensions")
        self._refresh_bookmarks()
        self._request_frame()
        if self._folder is not None:
            self.load_points_from_folder(self._folder)
        elif self._prior_draw is not None:
            self.sample_points_from_prior(*self._prior_draw)

    def set_project(self, project) -> None:
        """Bookmarks go into ``project`` (a studio.core.store.Project); None turns them off."""
        from studio.qt.bridge import ProjectBridge

        if self._project_bridge is not None:
            self._project_bridge.detach()
            self._project_bridge = None
        self.project = project
        if project is not None:
            self._project_bridge = ProjectBridge(project, self)
            self._project_bridge.recordsChanged.connect(
                lambda event, _: self._refresh_bookmarks() if event == "bookmarks" else None
            )
        self._refresh_bookmarks()

    def load_points_from_folder(self, path: Path | str, limit: int = MAX_POINTS) -> None:
        """Encode the images under ``path`` on a worker thread and map them, coloured by subfolder."""
        model = self._require_model()
        self._folder, self._prior_draw = Path(path), None
        self.workers.start_job(
            core.encode_folder(model, Path(path), limit),
            lambda folder: self._receive_points(
                folder.latents, folder.labels, folder.thumbnails, folder.bits_per_dim,
                f"{len(folder.labels)} images from {Path(path).name}"
                + (f" ({folder.skipped} unreadable skipped)" if folder.skipped else ""),
            ),
            "Encoding folder",
        )

    def sample_points_from_prior(self, count: int = PRIOR_SAMPLES, seed: int = 0) -> None:
        """Map ``count`` seeded draws from the prior, decoded on a worker into thumbnails: a map for
        any model without encoding a folder (slow for a GAN, which encodes by optimisation)."""
        model = self._require_model()
        self._folder, self._prior_draw = None, (count, seed)
        self.workers.start_job(
            core.sample_prior(model, count, seed),
            lambda drawn: self._receive_points(drawn[0], None, drawn[1], None,
                                               f"{count} samples from the prior (seed {seed})"),
            "Sampling the prior",
        )

    def set_points(self, latents: np.ndarray, labels: list[str] | None = None,
                   thumbnails: list[np.ndarray] | None = None) -> None:
        """Map these latents (n, d); labels colour them, thumbnails (uint8 images) draw them."""
        model = self._require_model()
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != model.latent_dim:
            raise ValueError(f"points must be (n, {model.latent_dim}) latents of {self.model_id}, not {latents.shape}")
        if labels is not None and len(labels) != len(latents):
            raise ValueError(f"{len(labels)} labels for {len(latents)} points")
        if thumbnails is not None and len(thumbnails) != len(latents):
            raise ValueError(f"{len(thumbnails)} thumbnails for {len(latents)} points")
        self._folder = self._prior_draw = None
        labels = None if labels is None else [str(label) for label in labels]
        thumbnails = None if thumbnails is None else list(thumbnails)
        self._receive_points(latents, labels, thumbnails, None, f"{len(latents)} points")

    def current_latent(self) -> np.ndarray:
        """The latent (d,) decoded in the preview: the explored point times the temperature."""
        return (self._base * np.float32(self.temperature.value())).astype(np.float32)

    def set_latent(self, latent: np.ndarray) -> None:
        """Jump to exactly this latent (temperature back to 1)."""
        latent = self._check_latent(latent)
        self.temperature.blockSignals(True)
        self.temperature.setValue(1.0)
        self.temperature.blockSignals(False)
        self._set_base(latent)

    def save_bookmark(self, name: str = "") -> int | None:
        if self.project is None:
            self._say("Open a project to keep bookmarks.")
            return None
        self._require_model()
        name = name.strip() or f"Point {len(self.project.bookmarks(self.model_id)) + 1}"
        bookmark_id = self.project.add_bookmark(name, self.model_id, self.current_latent())
        self.bookmarks.name.clear()
        self._refresh_bookmarks()
        self._say(f"Bookmarked “{name}”.")
        return bookmark_id

    def restore_bookmark(self, bookmark_id: int) -> None:
        for identifier, name, _, latent in self.project.bookmarks(self.model_id) if self.project else []:
            if identifier == bookmark_id:
                self.set_latent(latent)
                self._say(f"Restored “{name}”.")
                return
        self._say("That bookmark is no longer in the project.")

    # the live frame -----------------------------------------------------------------------------
    def _set_base(self, latent: np.ndarray) -> None:
        self._base = np.asarray(latent, dtype=np.float32).copy()
        self._request_frame()

    def _request_frame(self) -> None:
        if self.model is None:
            return
        self._frame_wanted = True
        if not self.frame_timer.isActive():
            self._on_frame_tick()
            self.frame_timer.start()

    def _on_frame_tick(self) -> None:
        if self._decode_in_flight:
            return
        if not self._frame_wanted:
            self.frame_timer.stop()
            return
        self._frame_wanted = False
        latent = self.current_latent()
        if self._decode_ms < INLINE_DECODE_MS:
            self._show_frame(_timed_decode(self.model, latent))
            return
        self._decode_in_flight = True
        self.workers.run("decode", _timed_decode, self._show_frame, self.model, latent, finished=self._on_decode_finished)

    def _on_decode_finished(self) -> None:
        self._decode_in_flight = False

    def _show_frame(self, result: tuple[np.ndarray, np.ndarray, float]) -> None:
        latent, image, decode_ms = result
        self._decode_in_flight = False
        self._decode_ms = decode_ms if not np.isfinite(self._decode_ms) else 0.8 * self._decode_ms + 0.2 * decode_ms
        start = time.perf_counter()
        self.preview.set_image(image)
        convert_ms = (time.perf_counter() - start) * 1000.0
        self.preview_image = image
        self.frames_shown += 1
        now = time.perf_counter()
        interval, self._last_frame_at = now - self._last_frame_at, now
        if interval < STREAM_GAP_S:  # frames in a stream (a drag, a slider): show the rate achieved
            self._frame_rate = 1.0 / interval if not self._frame_rate else 0.9 * self._frame_rate + 0.1 / interval
        else:
            self._frame_rate = 0.0
        rate = f" · {self._frame_rate:.0f} fps" if self._frame_rate else ""
        self.stats.setText(
            f"decode {decode_ms:.2f} ms · convert {convert_ms:.2f} ms{rate} · |z| {float(np.linalg.norm(latent)):.2f}"
        )
        self._sync_sliders()
        if self.projection is not None and self.projection.linear:
            self.map.set_marker(self.projection.to_map(latent)[0])
        self.settle_timer.start()
        self.latentChanged.emit(latent)
        self.frameShown.emit()

    def _on_settled(self) -> None:
        self._update_variations()
        if self.projection is not None and not self.projection.linear:
            self.workers.run("marker", self.projection.to_map, lambda xy: self.map.set_marker(xy[0]), self.current_latent())
        if callable(getattr(self.model, "bits_per_dim_images", None)) and self.preview_image is not None:
            self.workers.run("bits", self.model.bits_per_dim_images, self._show_current_bits, [self.preview_image])

    def _show_current_bits(self, bits: np.ndarray) -> None:
        self.current_bits_per_dim = float(np.asarray(bits).ravel()[0])
        text = f"<b>{self.current_bits_per_dim:.3f}</b> bits/dim"
        if self.bits_per_dim is not None and len(self.bits_per_dim):
            typical = 100.0 * float((self.bits_per_dim > self.current_bits_per_dim).mean())
            text += f" · {typical:.0f}% of the map less typical"
        self.bits_label.setText(text)

    # map ----------------------------------------------------------------------------------------
    def _on_map_click(self, x: float, y: float, shift: bool) -> None:
        if self.model is None or self.projection is None:
            return
        index = self.map.nearest(x, y)
        if index is not None:
            latent = self.latents[index]
        else:
            latent = self.projection.to_latent(np.array([x, y]), self._base if self.keep_detail.isChecked() else None)
        if shift:
            self.add_path_point(latent)
        self._set_base(latent)
        if not self.projection.linear:  # a PCA map places the marker exactly with each frame
            self.map.set_marker(self.projection.coords[index] if index is not None else (x, y))

    def _on_map_drag(self, x: float, y: float, phase: str) -> None:
        if self.model is None or self.projection is None:
            return
        if phase == "start":
            self._drag_base = self._base.copy()
        base = self._drag_base if self.keep_detail.isChecked() else None
        self._set_base(self.projection.to_latent(np.array([x, y]), base))
        if not self.projection.linear:
            self.map.set_marker((x, y))

    def _receive_points(self, latents: np.ndarray, labels: list[str] | None,
                        thumbnails: list[np.ndarray] | None, bits: np.ndarray | None, summary: str) -> None:
        self.latents, self.labels, self.thumbnails, self.bits_per_dim = latents, labels, thumbnails, bits
        self._dim_scales = np.maximum(latents.std(axis=0), 1e-3) if len(latents) > 1 else None
        self._say(summary)
        self._analyse()

    def _analyse(self) -> None:
        """Project the points (PCA, t-SNE or UMAP) and find slider directions, on a worker."""
        if self.latents is None or self.model is None:
            return
        if len(self.latents) < 3:
            self._say("The map needs at least three points.")
            return
        latents, method, dim = self.latents, self.projection_combo.currentText(), self.model.latent_dim

        def work():
            yield 0, 0, f"Projecting ({method})"
            return core.fit_projection(latents, method), core.principal_basis(latents, dim, DIRECTION_SLIDERS)

        self.workers.start_job(work(), self._apply_analysis, f"Projecting ({method})")

    def _apply_analysis(self, result: tuple[core.MapProjection, tuple]) -> None:
        self.projection, basis = result
        self.keep_detail.setEnabled(self.projection.linear)
        self.map.set_points(self.projection.coords, self._folder_colours())
        self._set_basis(basis)
        self._colour_points()
        self._draw_thumbnails()
        self._update_path()
        self.mapReady.emit()
        if self.bits_per_dim is None and callable(getattr(self.model, "bits_per_dim_images", None)):
            model, latents, thumbnails = self.model, self.latents, self.thumbnails

            def work():
                yield 0, 0, "Decoding points"
                images = thumbnails or core.decode_in_batches(model, latents)
                return (yield from core.score_images(model, images))

            self.workers.start_job(work(), self._apply_bits, "Scoring bits/dim")
        elif self.bits_per_dim is not None:
            self._apply_bits(self.bits_per_dim)
        self._request_frame()

    def _apply_bits(self, bits: np.ndarray) -> None:
        self.bits_per_dim = np.asarray(bits, dtype=np.float64)
        self._set_colour_modes(likelihood=True)
        self._colour_points()
        self.likelihoodReady.emit()

    def _set_colour_modes(self, likelihood: bool) -> None:
        has = self.colour_combo.findData("bits") >= 0
        if likelihood and not has:
            self.colour_combo.addItem("Colour: bits/dim", "bits")
        elif not likelihood and has:
            self.colour_combo.removeItem(self.colour_combo.findData("bits"))

    def _folder_colours(self) -> list:
        if self.labels is None:
            return [label_colours(1)[0]] * len(self.latents)
        names = sorted(set(self.labels))
        palette = dict(zip(names, label_colours(len(names))))
        return [palette[label] for label in self.labels]

    def _colour_points(self) -> None:
        if self.projection is None:
            return
        if self.colour_combo.currentData() == "bits" and self.bits_per_dim is not None:
            colours, low, high = value_colours(self.bits_per_dim)
            self.map.set_colours(colours)
            self.legend.setText(
                f"bits/dim: <span style='color:#440154'>■</span> {low:.3f} (typical) … "
                f"<span style='color:#e0d000'>■</span> {high:.3f} (surprising)"
            )
            return
        self.map.set_colours(self._folder_colours())
        names = sorted(set(self.labels or []))
        palette = dict(zip(names, label_colours(len(names))))
        self.legend.setText("  ".join(f"<span style='color:{palette[n].name()}'>■</span> {n}" for n in names[:40]))

    def _draw_thumbnails(self) -> None:
        if self.projection is None or self.show_combo.currentText() != "Thumbnails":
            self.map.set_thumbnails(np.zeros(0, int), [])
            return
        indices = spread_subset(self.projection.coords)
        if self.thumbnails is not None:
            self.map.set_thumbnails(indices, [self.thumbnails[i] for i in indices])
            return
        self.workers.run("thumbnails", core.decode_in_batches, lambda images: self.map.set_thumbnails(indices, images),
                        self.model, self.latents[indices])

    # sliders and temperature --------------------------------------------------------------------
    def _set_basis(self, basis: tuple | None) -> None:
        dim = self.model.latent_dim if self.model else 0
        if self._model_basis is not None:  # the model's own directions win over the map's PCA
            names, self._basis = self._model_basis
            hint = f"{self.model_id}'s own latent directions, in standard deviations of the prior."
        else:
            self._basis = basis if basis is not None else core.principal_basis(None, dim, DIRECTION_SLIDERS)
            from_points = basis is not None
            names = [f"{'PC' if from_points else 'z'}{i + 1}" for i in range(len(self._basis[1]))]
            hint = ("Principal directions of the map's points, in standard deviations." if from_points
                    else "Load a folder to get its principal directions; these are the first latent axes.")
        self.direction_bank.set_rows(names, -DIRECTION_RANGE, DIRECTION_RANGE, hint)
        if dim <= DIMENSION_SLIDERS_UP_TO:
            reach = 4.0 if self.latents is None else max(4.0, float(np.ceil(np.abs(self.latents).max())))
            self.dimension_bank.set_rows([f"z{i + 1}" for i in range(dim)], -reach, reach, "Raw latent dimensions.")
        else:
            self.dimension_bank.set_rows([], 0, 0, f"{dim} dimensions are too many for sliders: use Directions.")
        self._sync_sliders()

    def _sync_sliders(self) -> None:
        """Move the visible bank's sliders to the current point (the other syncs when shown)."""
        mean, directions, scales = self._basis
        if self.direction_bank.isVisibleTo(self.tabs) and len(directions) and len(self._base) == directions.shape[1]:
            self.direction_bank.set_values((self._base - mean) @ directions.T / scales)
        elif self.dimension_bank.isVisibleTo(self.tabs) and self.dimension_bank.sliders:
            self.dimension_bank.set_values(self._base)

    def _on_direction_slider(self, index: int, value: float) -> None:
        mean, directions, scales = self._basis
        coordinate = float((self._base - mean) @ directions[index])
        self._set_base(self._base + (value * scales[index] - coordinate) * directions[index])

    def _on_dimension_slider(self, index: int, value: float) -> None:
        base = self._base.copy()
        base[index] = value
        self._set_base(base)

    def _random_point(self) -> None:
        if self.model is None:
            return
        self._set_base(self._random.standard_normal(self.model.latent_dim).astype(np.float32))

    def _use_image(self) -> None:
        if self.preview_image is not None:
            self.exportRequested.emit(self.preview_image, {"latent": self.current_latent().tolist(), "model_id": self.model_id})

    # variations ---------------------------------------------------------------------------------
    def _update_variations(self) -> None:
        if self.model is None or not self.variations.isVisibleTo(self.tabs):
            return
        side = self.variations.side
        neighbours = core.variations(self.current_latent(), side * side, self.variations.spread.value(),
                                     self.variations.seed.value(), self._dim_scales)
        neighbours[side * side // 2] = self.current_latent()
        self._variation_latents = neighbours
        self.workers.run("variations", self.model.decode_latents,
                        lambda images: self.variations.grid.set_images(images, side), neighbours)

    def _on_variation_clicked(self, index: int) -> None:
        self.set_latent(self._variation_latents[index])

    # bookmarks ----------------------------------------------------------------------------------
    def _refresh_bookmarks(self) -> None:
        panel = self.bookmarks
        panel.list.clear()
        usable = self.project is not None and self.model is not None
        for widget in (panel.name, panel.save, panel.list, panel.restore):
            widget.setEnabled(usable)
        if self.project is None:
            panel.hint.setText("Open a project to keep bookmarks.")
            return
        if self.model is None:
            return
        marks = [m for m in self.project.bookmarks(self.model_id) if m[3].shape == (self.model.latent_dim,)]
        panel.hint.setText(f"{len(marks)} bookmark{'s' if len(marks) != 1 else ''} for {self.model_id} in {self.project.name}.")
        for identifier, name, _, _ in marks:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, identifier)
            panel.list.addItem(item)
        if marks:
            latents = np.stack([m[3] for m in marks]).astype(np.float32)
            self.workers.run("bookmark icons", core.decode_in_batches, self._set_bookmark_icons, self.model, latents)

    def _set_bookmark_icons(self, images: list[np.ndarray]) -> None:
        for row, image in enumerate(images[: self.bookmarks.list.count()]):
            self.bookmarks.list.item(row).setIcon(icon_from_array(image))

    def _restore_selected_bookmark(self) -> None:
        item = self.bookmarks.list.currentItem()
        if item is not None:
            self.restore_bookmark(item.data(Qt.ItemDataRole.UserRole))

    # dialogs ------------------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to map (subfolders colour the points)")
        if folder:
            self.load_points_from_folder(folder)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an explorer export", "", "Explorer exports (*.png *.gif *.apng)")
        if path:
            self.open_export(path)

    def _show_progress(self, update: tuple[int, int, str] | None) -> None:
        self.progress.setVisible(update is not None)
        self.cancel_button.setVisible(update is not None)
        if update is not None:
            done, total, phase = update
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{phase} %p%" if total else phase)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _require_model(self) -> core.LatentModel:
        if self.model is None:
            raise RuntimeError("choose a model to explore first")
        return self.model

    def _check_latent(self, latent: np.ndarray) -> np.ndarray:
        model = self._require_model()
        latent = np.asarray(latent, dtype=np.float32).ravel()
        if latent.shape != (model.latent_dim,):
            raise ValueError(f"{self.model_id} takes latents of {model.latent_dim} numbers, not {latent.size}")
        return latent
