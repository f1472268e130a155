"""Paths through latent space for the explorer: anchors, the interpolation strip, scrubbing,
exports (frames, GIF, APNG, contact sheet, each recording its latents) and reopening them.

A mixin of LatentExplorer: it uses the explorer's model, map, projection, path panel and workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog, QListWidgetItem

from studio.core import latent as core
from studio.core import media
from studio.qt.explorer_panels import icon_from_array

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"
EXPORT_KINDS = ("frames", "gif", "apng", "sheet")
STRIP_COLUMNS = 12
SHEET_COLUMNS = 8


class PathFeatures:
    path_anchors: list[np.ndarray]
    path_frames: np.ndarray | None  # (steps, d), decoded into path_images
    path_images: list[np.ndarray]

    def _connect_path_panel(self) -> None:
        panel = self.path_panel
        panel.add_current.clicked.connect(lambda: self.add_path_point(self.current_latent()))
        panel.add_files.clicked.connect(self._choose_path_files)
        panel.remove.clicked.connect(self._remove_path_point)
        panel.clear.clicked.connect(self.clear_path)
        panel.steps.valueChanged.connect(lambda _: self._update_path())
        panel.mode.currentIndexChanged.connect(lambda _: self._update_path())
        panel.scrub.valueChanged.connect(self._on_scrub)
        panel.strip.cellClicked.connect(panel.scrub.setValue)
        for kind, button in zip(EXPORT_KINDS, (panel.export_frames, panel.export_gif, panel.export_apng, panel.export_sheet)):
            button.clicked.connect(lambda _=False, kind=kind: self._choose_export_target(kind))

    def _reset_path(self) -> None:
        self.path_anchors, self.path_frames, self.path_images = [], None, []
        self.path_panel.anchors.clear()
        self.path_panel.strip.set_images([])
        self.map.set_path(np.zeros((0, 2)), np.zeros((0, 2)))

    def add_path_point(self, latent: np.ndarray) -> None:
        latent = self._check_latent(latent)
        self.path_anchors.append(latent)
        item = QListWidgetItem(f"{len(self.path_anchors)}")
        item.setIcon(icon_from_array(self.model.decode_latents(latent[None])[0]))
        self.path_panel.anchors.addItem(item)
        self._update_path()

    def add_path_files(self, paths: list[Path | str]) -> None:
        """Encode image files (or reuse the latents recorded in our exports) as path points."""
        model = self._require_model()

        def work() -> list[np.ndarray]:
            found: list[np.ndarray] = []
            for path in paths:
                recorded = core.read_export_latents(Path(path))
                if recorded is not None and recorded.latents.shape[1] == model.latent_dim:
                    found.append(recorded.latents[0])
                else:
                    found.append(model.encode_images([media.load_image(path)])[0])
            return found

        self.workers.run("path files", work, lambda latents: [self.add_path_point(z) for z in latents])

    def clear_path(self) -> None:
        self.path_anchors = []
        self.path_panel.anchors.clear()
        self._update_path()

    def export_path(self, kind: str, target: Path | str) -> None:
        """Write the path as ``frames`` (a PNG folder), ``gif``, ``apng`` or ``sheet`` on a worker;
        ``exported(files)`` follows. Every file records its latents and the model id."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export {kind!r}: use one of {', '.join(EXPORT_KINDS)}")
        if len(self.path_anchors) < 2:
            self._say("A path needs two or more points: shift-click the map or use Add current.")
            return
        mode = self.path_panel.mode.currentText()
        frames = np.stack(core.path(self.path_anchors, self.path_panel.steps.value(), mode))
        model, model_id, meta = self.model, self.model_id, core.path_meta(self.path_anchors, mode)
        scale, fps = self.path_panel.scale.value(), self.path_panel.fps.value()
        cached = self.path_images if self.path_frames is not None and np.array_equal(self.path_frames, frames) else None

        def work() -> list[Path]:
            images = cached or core.decode_in_batches(model, frames)
            target_path = Path(target)
            if kind == "frames":
                return core.export_frames(target_path, images, frames, model_id, scale, meta)
            if kind == "sheet":
                columns = min(len(images), SHEET_COLUMNS)
                return [core.export_contact_sheet(target_path, images, frames, model_id, columns, scale, meta)]
            suffix = ".gif" if kind == "gif" else ".png"
            path = target_path if target_path.suffix.lower() in (suffix, ".apng") else target_path.with_suffix(suffix)
            return [core.export_animation(path, images, frames, model_id, fps, scale, meta)]

        self._say("Exporting…")
        self.workers.run("export", work, self._on_exported)

    def open_export(self, path: Path | str) -> None:
        """Reopen an explorer export: one latent becomes the current point, several the path."""
        self._require_model()
        recorded = core.read_export_latents(Path(path))
        if recorded is None:
            self._say(f"{Path(path).name} holds no latent from the explorer.")
            return
        latents, model_id = recorded.latents, recorded.model_id
        if latents.shape[1] != self.model.latent_dim:
            self._say(f"{Path(path).name} was made with {model_id}, whose latents do not fit {self.model_id}.")
            return
        if len(latents) == 1:
            self.set_latent(latents[0])
        else:
            self.clear_path()
            if recorded.mode:
                self.path_panel.mode.setCurrentText(recorded.mode)
            self.path_panel.steps.setValue(len(latents))
            anchors = recorded.anchors if recorded.anchors is not None else latents[[0, -1]]
            for latent in anchors:
                self.add_path_point(latent)
            self.set_latent(latents[0])
        warning = f" (made with {model_id})" if model_id and model_id != self.model_id else ""
        self._say(f"Opened {Path(path).name}{warning}.")

    def _update_path(self) -> None:
        steps = self.path_panel.steps.value()
        self.path_panel.scrub.setRange(0, steps - 1)
        if len(self.path_anchors) < 2 or self.model is None:
            self.path_frames, self.path_images = None, []
            self.path_panel.strip.set_images([])
            anchors = np.zeros((0, 2))
            if self.path_anchors and self.projection is not None:
                anchors = self.projection.to_map(np.stack(self.path_anchors))
            self.map.set_path(anchors, np.zeros((0, 2)))
            return
        frames = np.stack(core.path(self.path_anchors, steps, self.path_panel.mode.currentText()))
        model, projection, anchors = self.model, self.projection, np.stack(self.path_anchors)

        def work() -> tuple:
            images = core.decode_in_batches(model, frames)
            if projection is None:
                return frames, images, None, None
            return frames, images, projection.to_map(anchors), projection.to_map(frames)

        self.workers.run("path", work, self._show_path)

    def _show_path(self, result: tuple) -> None:
        self.path_frames, self.path_images, anchors_xy, line_xy = result
        self.path_panel.strip.set_images(self.path_images, min(len(self.path_images), STRIP_COLUMNS))
        self.path_panel.strip.set_highlighted(self.path_panel.scrub.value())
        if anchors_xy is not None:
            self.map.set_path(anchors_xy, line_xy)
        self.pathReady.emit()

    def _on_scrub(self, index: int) -> None:
        if self.path_frames is not None and index < len(self.path_frames):
            self.path_panel.strip.set_highlighted(index)
            self.set_latent(self.path_frames[index])

    def _remove_path_point(self) -> None:
        row = self.path_panel.anchors.currentRow()
        row = row if row >= 0 else len(self.path_anchors) - 1
        if row >= 0:
            del self.path_anchors[row]
            self.path_panel.anchors.takeItem(row)
            for index in range(self.path_panel.anchors.count()):
                self.path_panel.anchors.item(index).setText(str(index + 1))
            self._update_path()

    def _on_exported(self, files: list[Path]) -> None:
        self._say(f"Exported {len(files)} file{'s' if len(files) != 1 else ''} to {files[0].parent}." if files else "")
        self.exported.emit(files)

    def _choose_path_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to add to the path", "", IMAGE_FILTER)
        if paths:
            self.add_path_files(paths)

    def _choose_export_target(self, kind: str) -> None:
        if kind == "frames":
            target = QFileDialog.getExistingDirectory(self, "Folder for the frames")
        else:
            suffix = {"gif": "GIF (*.gif)", "apng": "Animated PNG (*.png *.apng)", "sheet": "PNG (*.png)"}[kind]
            target, _ = QFileDialog.getSaveFileName(self, "Export the path", f"path-{self.model_id}", suffix)
        if target:
            self.export_path(kind, target)
