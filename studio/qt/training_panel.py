"""The training panel: pick a family and a folder, see what training will do, train and watch.

It runs the plugin's ``train`` action through the engine as a Job, like every other action:
live loss curves come from ``job.history``, sample previews from ``job.preview``, progress
and ETA from the job; Pause / Resume / Stop call ``Job.pause/resume/cancel``. The folder is
summarised (counts, sizes, what will be done, skipped files) on a worker thread. A run folder
with a training checkpoint can be resumed with the settings it was started with.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import media, training
from studio.core.checkpoints import CheckpointError
from studio.core.datasets import DatasetError, FolderSummary, summarize_folder
from studio.core.engine import Engine, Job, JobState, resolve_device
from studio.core.params import ParamError, ParamSet
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionSpec, Audio, Manifest
from studio.core.registry import Registry
from studio.qt.bridge import EngineBridge
from studio.qt.gallery import array_to_qimage
from studio.qt.jobs_panel import format_seconds
from studio.qt.params_form import ParamsForm

PRESETS = {"quick": 0.25, "balanced": 1.0, "quality": 4.0}  # scale of the action's default steps
PANEL_OWNED = ("data", "out", "resume")  # parameters the panel fills itself
HIDDEN_METRICS = ("lr",)
CURVE_COLOURS = ("#4c9be8", "#e8744c", "#5cc46a", "#c45cc4", "#d8c04a", "#4ad8d0")
PREVIEW_COUNT = 12
PREVIEW_COLUMNS = 6


# folder scanning on a worker thread ----------------------------------------------------------------
class FolderScanner(QObject):
    """``scanned(path, summary, preview)`` or ``failed(path, message)`` for the latest request."""

    scanned = Signal(str, object, object)
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._latest = ""

    def scan(self, path: str, kind: str, target: dict[str, int | None]) -> None:
        self._latest = path
        threading.Thread(target=self._run, args=(path, kind, target), name="folder-scan", daemon=True).start()

    def _run(self, path: str, kind: str, target: dict[str, int | None]) -> None:
        try:
            summary = summarize_folder(Path(path), kind, **target)
            preview = folder_preview(summary)
        except DatasetError as exc:
            self._emit(self.failed, path, str(exc))
            return
        self._emit(self.scanned, path, summary, preview)

    def _emit(self, signal, path: str, *args: Any) -> None:
        if path != self._latest:
            return  # a newer folder was picked meanwhile
        with contextlib.suppress(RuntimeError):  # the panel was closed meanwhile
            signal.emit(path, *args)


def folder_preview(summary: FolderSummary) -> np.ndarray | None:
    """A contact sheet of the first images, or the first clips' waveforms, as one RGB image."""
    tiles = []
    for path in summary.usable[: PREVIEW_COUNT if summary.kind == "image" else 4]:
        try:
            if summary.kind == "image":
                tiles.append(media.fit_square(media.to_rgb(media.load_image(path)), 44))
            else:
                tiles.append(waveform_image(media.load_audio(path).samples, 150, 40))
        except media.MediaError:
            continue
    if not tiles:
        return None
    return media.grid(tiles, columns=PREVIEW_COLUMNS if summary.kind == "image" else 2)


def waveform_image(samples: np.ndarray, width: int, height: int, colour=(76, 155, 232)) -> np.ndarray:
    """Min/max envelope of (n,) or (n, ch) samples drawn on white, (height, width, 3) uint8."""
    mono = media.to_mono(samples)[:, 0] if samples.ndim == 2 else samples
    image = np.full((height, width, 3), 255, np.uint8)
    image[height // 2, :] = (210, 210, 210)
    if len(mono) == 0:
        return image
    edges = np.linspace(0, len(mono), width + 1).astype(int)
    for x in range(width):
        block = mono[edges[x] : max(edges[x + 1], edges[x] + 1)]
        low, high = float(np.clip(block.min(), -1, 1)), float(np.clip(block.max(), -1, 1))
        top = int(round((1 - high) / 2 * (height - 1)))
        bottom = int(round((1 - low) / 2 * (height - 1)))
        image[top : bottom + 1, x] = colour
    return image


def preview_array(preview: Any) -> np.ndarray | None:
    if isinstance(preview, Audio):
        return waveform_image(preview.samples, 480, 120)
    if isinstance(preview, np.ndarray) and preview.ndim in (2, 3):
        return preview
    return None


def estimate_seconds(registry: Registry, plugin_id: str, steps: int, batch_size: int | None,
                     device: str | None) -> tuple[float, str] | None:
    """Seconds for ``steps`` from a shipped or earlier model of the family trained on this kind of
    device (its card records steps, batch and seconds); None when there is nothing to go on."""
    best = None
    for ckpt in registry.checkpoints_for(plugin_id):
        info = ckpt.config.get("training", {})
        done, seconds = info.get("steps"), info.get("seconds")
        if not done or not seconds or (device and str(info.get("device", "")).split(":")[0] != device):
            continue
        per_step = float(seconds) / float(done)
        trained_batch = info.get("recipe", {}).get("batch_size")
        if batch_size and trained_batch:
            per_step *= batch_size / float(trained_batch)
        if best is None or ckpt.source == "user":
            best = (per_step * steps, ckpt.id)
    return best


# the panel ------------------------------------------------------------------------------------
class TrainingPanel(QWidget):
    """Train a model of any family with a ``train`` action, through the engine."""

    jobStarted = Signal(object)
    jobFinished = Signal(object)

    def __init__(self, registry: Registry, engine: Engine, project=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry, self.engine, self.project = registry, engine, project
        self.job: Job | None = None
        self._families: list[tuple[Manifest, ActionSpec]] = []
        self.summary: FolderSummary | None = None
        self._paces: dict[str, float] = {}  # plugin id -> measured seconds per step this session
        self._drawn_history = 0
        self._shown_preview: Any = None
        self._curves: dict[str, pg.PlotDataItem] = {}
        self.bridge = EngineBridge(engine, self)
        self.bridge.jobEvent.connect(self._on_job_event)
        self.scanner = FolderScanner(self)
        self.scanner.scanned.connect(self._on_scanned)
        self.scanner.failed.connect(self._on_scan_failed)
        self._build()
        self._fill_families()

    # layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.family = QComboBox()
        self.family.setToolTip("Model family to train (plugins with a Train action)")
        self.family.currentIndexChanged.connect(self._family_changed)
        self.presets = QButtonGroup(self)
        preset_row = QHBoxLayout()
        preset_row.setSpacing(0)
        for i, name in enumerate(PRESETS):
            button = QToolButton()
            button.setText(name.capitalize())
            button.setCheckable(True)
            button.setObjectName("segment")
            button.setProperty("position", ("first", "middle", "last")[i])
            button.setToolTip(f"{PRESETS[name]:g} x the family's default number of steps")
            self.presets.addButton(button, i)
            preset_row.addWidget(button)
        preset_row.addStretch(1)
        self.presets.button(1).setChecked(True)
        self.presets.idClicked.connect(self._apply_preset)
        self.estimate = QLabel()
        self.estimate.setObjectName("hint")
        self.estimate.setWordWrap(True)

        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("Folder of images or audio (subfolders are classes)")
        self.data_edit.editingFinished.connect(self._rescan)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_data)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(browse)
        self.summary_label = QLabel("Pick a folder to see what it holds.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_preview = QLabel()
        self.folder_preview.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        self.skipped.setVisible(False)
        self.skipped.setToolTip("Files that will be skipped, and why")

        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("Run folder (checkpoints and the finished model)")
        self.out_edit.editingFinished.connect(self._check_run_folder)
        out_browse = QPushButton("Browse…")
        out_browse.clicked.connect(self._choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)
        self.run_state = QLabel()
        self.run_state.setObjectName("hint")
        self.run_state.setWordWrap(True)
        self.resume_button = QPushButton("Resume from checkpoint")
        self.resume_button.setToolTip("Continue the interrupted run in the run folder, with its settings")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume_run)
        open_run = QPushButton("Open run folder…")
        open_run.setToolTip("Pick an interrupted run folder to resume")
        open_run.clicked.connect(self._choose_run)
        resume_row = QHBoxLayout()
        resume_row.addWidget(self.run_state, 1)
        resume_row.addWidget(open_run)
        resume_row.addWidget(self.resume_button)

        self.form = ParamsForm()
        self.form.changed.connect(self._update_estimate)

        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop now; the run folder keeps its last checkpoint")
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Ready")
        self.status.setWordWrap(True)

        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setLogMode(y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMinimumHeight(160)
        self.sample_view = QLabel("Samples appear here while training.")
        self.sample_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_view.setMinimumSize(160, 160)

        setup = QVBoxLayout()
        form = QFormLayout()
        form.addRow("Family", self.family)
        form.addRow("Preset", preset_row)
        form.addRow("", self.estimate)
        setup.addLayout(form)
        data_box = QGroupBox("Data")
        data_layout = QVBoxLayout(data_box)
        data_layout.addLayout(data_row)
        data_layout.addWidget(self.summary_label)
        data_layout.addWidget(self.folder_preview)
        data_layout.addWidget(self.skipped)
        setup.addWidget(data_box)
        run_box = QGroupBox("Run folder")
        run_layout = QVBoxLayout(run_box)
        run_layout.addLayout(out_row)
        run_layout.addLayout(resume_row)
        setup.addWidget(run_box)
        params_box = QGroupBox("Settings")
        QVBoxLayout(params_box).addWidget(self.form)
        setup.addWidget(params_box)
        setup.addStretch(1)
        setup_widget = QWidget()
        setup_widget.setLayout(setup)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(setup_widget)
        scroll.setMinimumWidth(400)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        watch = QWidget()
        watch_layout = QVBoxLayout(watch)
        watch_layout.addLayout(buttons)
        watch_layout.addWidget(self.progress)
        watch_layout.addWidget(self.status)
        watch_split = QSplitter(Qt.Orientation.Vertical)
        watch_split.addWidget(self.plot)
        watch_split.addWidget(self.sample_view)
        watch_layout.addWidget(watch_split, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(watch)
        split.setStretchFactor(1, 1)
        split.setSizes([440, 660])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)
        self._set_running(False)

    # families -----------------------------------------------------------------------------------
    def trainable(self) -> list[tuple[Manifest, ActionSpec]]:
        found = []
        for info in self.registry.usable():
            actions = info.manifest.actions_for("train") if info.manifest else []
            if actions:
                found.append((info.manifest, actions[0]))
        return sorted(found, key=lambda pair: pair[0].name.lower())

    def _fill_families(self) -> None:
        self._families = self.trainable()
        self.family.blockSignals(True)
        self.family.clear()
        for manifest, _ in self._families:
            self.family.addItem(f"{manifest.name} ({manifest.modality})", manifest.id)
        self.family.blockSignals(False)
        if not self._families:
            self.status.setText("No installed plugin can train.")
            self.train_button.setEnabled(False)
            return
        self._set_running(False)
        self._family_changed(0)

    def select_family(self, plugin_id: str) -> None:
        index = self.family.findData(plugin_id)
        if index < 0:
            raise KeyError(f"no trainable plugin {plugin_id!r}")
        self.family.setCurrentIndex(index)
        self._family_changed(index)

    @property
    def manifest(self) -> Manifest | None:
        index = self.family.currentIndex()
        return self._families[index][0] if 0 <= index < len(self._families) else None

    @property
    def action(self) -> ActionSpec | None:
        index = self.family.currentIndex()
        return self._families[index][1] if 0 <= index < len(self._families) else None

    def _family_changed(self, _index: int) -> None:
        action = self.action
        if action is None:
            return
        shown = tuple(p for p in action.params if p.name not in PANEL_OWNED)
        self.form.set_params(ParamSet(shown))
        for name in ("size", "color", "rate", "channels"):
            if name in self.form.fields:
                self.form.fields[name].changed.connect(self._rescan)
        self._apply_preset(self.presets.checkedId())
        self._default_out()
        self._rescan()

    # presets and the time estimate ------------------------------------------------------------------
    def _apply_preset(self, preset_id: int) -> None:
        action = self.action
        steps = action.params.get("steps") if action else None
        if steps is None or steps.default is None:
            self._update_estimate()
            return
        scaled = max(1, int(round(steps.default * list(PRESETS.values())[max(preset_id, 0)])))
        if steps.max is not None:
            scaled = min(scaled, int(steps.max))
        self.form.set_values({"steps": scaled})
        self._update_estimate()

    def _update_estimate(self) -> None:
        manifest = self.manifest
        if manifest is None:
            return
        values = self.form.values()
        steps = values.get("steps")
        device = self._device()
        where = device.upper() if device else "this machine"
        if not steps:
            self.estimate.setText("")
            return
        if manifest.id in self._paces:
            seconds, source = self._paces[manifest.id] * steps, "the last run here"
        else:
            found = estimate_seconds(self.registry, manifest.id, steps, values.get("batch_size"), device)
            if found is None:
                self.estimate.setText(f"{steps} steps on {where}; the time shows after the first steps")
                return
            seconds, source = found[0], f"model {found[1]}"
        self.estimate.setText(f"{steps} steps ≈ {format_seconds(seconds)} on {where} (from {source})")

    def _device(self) -> str | None:
        """The engine's device; None while torch is not loaded yet (finding out would block the UI)."""
        if self.engine.device not in ("", "auto"):
            return self.engine.device
        return resolve_device("auto") if "torch" in sys.modules else None

    # data folder -----------------------------------------------------------------------------------
    def set_data_folder(self, path: Path | str) -> None:
        self.data_edit.setText(str(path))
        self._default_out()
        self._rescan()

    def _choose_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training data folder", self.data_edit.text())
        if folder:
            self.set_data_folder(folder)

    def _target(self) -> dict[str, int | None]:
        values = self.form.values()
        target: dict[str, int | None] = {}
        if self.manifest is not None and self.manifest.modality == "audio":
            target["rate"] = values.get("rate") or values.get("sample_rate")
        else:
            target["size"] = values.get("size")
            color = values.get("color")
            target["channels"] = {"gray": 1, "rgb": 3}.get(color) if color else values.get("channels")
        return target

    def _rescan(self) -> None:
        text = self.data_edit.text().strip()
        if not text:
            return
        kind = self.manifest.modality if self.manifest and self.manifest.modality in ("image", "audio") else "auto"
        self.summary_label.setText("Reading the folder…")
        self.scanner.scan(str(Path(text).expanduser()), kind, self._target())

    def _on_scanned(self, path: str, summary: FolderSummary, preview: np.ndarray | None) -> None:
        self.summary = summary
        self.summary_label.setText(summary.text())
        if preview is not None:
            self.folder_preview.setPixmap(QPixmap.fromImage(array_to_qimage(preview)))
        else:
            self.folder_preview.clear()
        self.skipped.clear()
        for file, why in summary.skipped:
            self.skipped.addItem(f"{file.relative_to(summary.root)}: {why}")
        self.skipped.setVisible(bool(summary.skipped))

    def _on_scan_failed(self, path: str, message: str) -> None:
        self.summary = None
        self.summary_label.setText(message)
        self.folder_preview.clear()
        self.skipped.clear()
        self.skipped.setVisible(False)

    # run folder and resume --------------------------------------------------------------------------
    def _default_out(self) -> None:
        if self.out_edit.isModified() or self.manifest is None:
            return
        data = self.data_edit.text().strip()
        name = f"{self.manifest.family}-{Path(data).name}" if data else self.manifest.family
        self.out_edit.setText(str(user_models_dir() / name))
        self._check_run_folder()

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", self.out_edit.text())
        if folder:
            self.set_run_folder(folder)

    def _choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Interrupted run folder", str(user_models_dir()))
        if folder:
            self.set_run_folder(folder, adopt_settings=True)

    def set_run_folder(self, path: Path | str, adopt_settings: bool = False) -> None:
        """Use ``path`` as the run folder; with ``adopt_settings`` take the family, data and
        settings of the run saved there."""
        self.out_edit.setText(str(path))
        self.out_edit.setModified(True)
        info = self._check_run_folder()
        if adopt_settings and info is not None:
            self._adopt(info)

    def _check_run_folder(self) -> dict | None:
        text = self.out_edit.text().strip()
        info, problem = None, ""
        if text:
            try:
                info = training.state_info(Path(text).expanduser())
            except CheckpointError as exc:
                problem = str(exc)
        if info is None:
            self.run_state.setText(problem or ("A new run." if text else ""))
            self.resume_button.setEnabled(False)
            return None
        total = info.get("config", {}).get("steps", 0)
        self.run_state.setText(f"This folder holds a run stopped at step {info['step']} of {total}."
                               if info["step"] < total else
                               f"This folder holds a finished run of {info['step']} steps; raise Steps to go on.")
        self.resume_button.setEnabled(self.job is None or self.job.state.finished)
        return info

    def _adopt(self, info: dict) -> None:
        params = dict(info.get("params") or {})
        plugin = params.pop("plugin", None)
        if plugin and self.family.findData(plugin) >= 0:
            self.select_family(plugin)
        if not params:
            params = {k: v for k, v in info.get("config", {}).items() if k in self.form.fields}
        data = params.pop("data", None) or info.get("data", {}).get("folder")
        params.pop("out", None)
        params.pop("resume", None)
        self.form.set_values(params)
        if data:
            self.data_edit.setText(str(data))
            self._rescan()

    # running -----------------------------------------------------------------------------------------
    def _job_params(self, resume: bool) -> dict[str, Any]:
        action = self.action
        if action is None:
            raise ParamError("no family can train")
        data = self.data_edit.text().strip()
        if not data:
            raise ParamError("data: pick a folder of images or audio to train on")
        values = self.form.validated()
        values["data"] = str(Path(data).expanduser())
        if action.params.get("out") is not None:
            values["out"] = self.out_edit.text().strip()
        if action.params.get("resume") is not None:
            values["resume"] = resume
        elif resume:
            raise ParamError(f"{self.manifest.name} cannot resume a run")
        return values

    def start(self, resume: bool = False) -> Job | None:
        if self.job is not None and not self.job.state.finished:
            return None
        try:
            values = self._job_params(bool(resume))
        except ParamError as exc:
            self.status.setText(str(exc))
            return None
        self._reset_watch()
        self.job = Job(self.manifest.id, self.action.id, None, values, device=self.engine.device)
        self._set_running(True)
        self.status.setText("Resuming…" if resume else "Starting…")
        self.engine.submit(self.job)
        self.jobStarted.emit(self.job)
        return self.job

    def resume_run(self) -> Job | None:
        return self.start(resume=True)

    def stop(self) -> None:
        if self.job is not None and not self.job.state.finished:
            self.pause_button.setChecked(False)
            self.engine.cancel(self.job)
            self.status.setText("Stopping after this step…")

    def _pause_toggled(self, on: bool) -> None:
        if self.job is None or self.job.state.finished:
            return
        if on:
            self.job.pause()
            self.pause_button.setText("Resume")
            self.status.setText("Pausing after this step…")
        else:
            self.job.resume()
            self.pause_button.setText("Pause")

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running and bool(self._families))
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.family.setEnabled(not running)
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
        self.resume_button.setEnabled(not running and self.resume_button.isEnabled())

    def _reset_watch(self) -> None:
        self.plot.clear()
        self._curves = {}
        self._drawn_history = 0
        self._shown_preview = None
        self.progress.setRange(0, 100)
        self.progress.setValue(0)

    # engine events --------------------------------------------------------------------------------------
    def _on_job_event(self, event: str, job: Job) -> None:
        if job is not self.job:
            return
        if event == "paused":
            self.status.setText(f"Paused at step {job.step} of {job.total}")
        elif event in ("progress", "resumed", "started"):
            self._show_progress(job)
        elif job.state.finished:
            self._show_progress(job)
            self._finished(job)

    def _show_progress(self, job: Job) -> None:
        if job.total:
            self.progress.setRange(0, job.total)
            self.progress.setValue(min(job.step, job.total))
            self.progress.setFormat("step %v of %m  (%p%)")
        if job.state == JobState.RUNNING and not job.paused:
            parts = [f"Step {job.step} of {job.total}"]
            if job.eta is not None and job.step > 0:
                parts.append(f"about {format_seconds(job.eta)} left")
            if job.metrics.get("loss") is not None:
                parts.append(f"loss {job.metrics['loss']:.4g}")
            if job.message:
                parts.append(job.message)
            self.status.setText(" · ".join(parts))
        self._draw_curves(job)
        if job.preview is not None and job.preview is not self._shown_preview:
            self._shown_preview = job.preview
            array = preview_array(job.preview)
            if array is not None:
                pixmap = QPixmap.fromImage(array_to_qimage(array))
                side = max(self.sample_view.width(), 160)
                if pixmap.width() < side // 2:  # small samples: enlarge without blurring
                    pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)
                self.sample_view.setPixmap(pixmap)

    def _draw_curves(self, job: Job) -> None:
        history = list(job.history)
        if len(history) == self._drawn_history:
            return
        self._drawn_history = len(history)
        series: dict[str, tuple[list[int], list[float]]] = {}
        for step, metrics in history:
            for name, value in metrics.items():
                if name in HIDDEN_METRICS or value is None or not math.isfinite(value) or value <= 0:
                    continue
                xs, ys = series.setdefault(name, ([], []))
                xs.append(step)
                ys.append(value)
        for name, (xs, ys) in series.items():
            curve = self._curves.get(name)
            if curve is None:
                colour = CURVE_COLOURS[len(self._curves) % len(CURVE_COLOURS)]
                curve = self.plot.plot([], [], name=name, pen=pg.mkPen(colour, width=2 if name == "loss" else 1))
                self._curves[name] = curve
            curve.setData(np.asarray(xs, float), np.asarray(ys, float))

    def _finished(self, job: Job) -> None:
        self._set_running(False)
        if job.step and job.elapsed:
            self._paces[job.plugin_id] = job.elapsed / job.step
        if job.state == JobState.DONE:
            text = job.result.text if job.result is not None else "done"
            self.status.setText(f"Finished in {format_seconds(job.elapsed)}: {text}")
            self.registry.checkpoints(refresh=True)
        elif job.state == JobState.CANCELLED:
            self.status.setText(f"Stopped at step {job.step}; the run folder keeps its last checkpoint.")
        else:
            self.status.setText(f"Failed: {job.error}")
        self._check_run_folder()
        self._update_estimate()
        self.jobFinished.emit(job)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.bridge.detach()
        super().closeEvent(event)
