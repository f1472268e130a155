"""The main window: model browser, parameters, workspace tabs, gallery and jobs, menus.

It wires core objects (Registry, Engine, Project, Settings) to the panels; the panels hold
no model logic and the window never runs model code itself: every run is an engine Job.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSignalBlocker, Qt
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QShowEvent,
    QUndoGroup,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio import __version__
from studio.core import media
from studio.core.checkpoints import CheckpointError
from studio.core.engine import Engine, Job, JobState
from studio.core.paths import default_project_dir, resources_dir, user_config_dir
from studio.core.plugin import Audio
from studio.core.registry import BUILTINS, Registry
from studio.core.settings import Settings
from studio.core.store import Project, ProjectError, Record
from studio.qt.bridge import EngineBridge, ModelLoader, ProjectBridge
from studio.qt.dialogs import ErrorDialog, OomDialog, PluginManagerDialog, RestoreBar
from studio.qt.gallery import GalleryPanel
from studio.qt.image_canvas import ImageCanvas
from studio.qt.jobs_panel import JobsPanel
from studio.qt.model_browser import ModelBrowser, plugin_problem
from studio.qt.params_form import FileField, ParamsPanel
from studio.qt.preferences import PreferencesDialog

ViewFactory = Callable[[QWidget], QWidget]
MAX_RECENT = 8
LAYOUT_VERSION = 1


def _waveform_editor(parent: QWidget) -> QWidget:
    from studio.qt.waveform_editor import WaveformEditor

    return WaveformEditor(parent)


def _latent_explorer(parent: QWidget) -> QWidget:
    from studio.qt.latent_explorer import LatentExplorer

    return LatentExplorer(parent)


class _PendingView(QLabel):
    """A workspace tab whose real view is built (and its code imported) when first opened."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Opening the {name} view…")
        self.name = name
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName("hint")


class MainWindow(QMainWindow):
    view_factories: dict[str, ViewFactory] = {}

    @classmethod
    def register_view(cls, name: str, factory: ViewFactory) -> None:
        """Map a manifest ``views`` name ("waveform", "latent", ...) to a widget factory."""
        cls.view_factories[name] = factory

    def __init__(
        self,
        settings: Settings | None = None,
        project_path: Path | None = None,
        device: str | None = None,
        safe_mode: bool = False,
        builtins: tuple[str, ...] = BUILTINS,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.safe_mode = safe_mode
        self.builtins = builtins
        self.setWindowTitle("Studio")
        self.setWindowIcon(QIcon(str(resources_dir() / "icon.svg")))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.registry = self._make_registry()
        self.engine = Engine(self.registry, None, device=device or self.settings.get("device", "auto"))
        self.engine_bridge = EngineBridge(self.engine, self)
        self.engine_bridge.jobEvent.connect(self._on_job_event)
        self.project: Project | None = None
        self.project_bridge: ProjectBridge | None = None
        self.last_device = ""
        self._dialogs: list[QWidget] = []
        self.views: dict[str, QWidget] = {}
        self.view_tabs: dict[str, QWidget] = {}
        self._loading_model = ""
        self._pending_encode: np.ndarray | None = None
        self.model_loader = ModelLoader(self)
        self.model_loader.loaded.connect(self._model_loaded)
        self.model_loader.failed.connect(self._model_failed)

        self.undo_stack = QUndoStack(self)
        self.undo_group = QUndoGroup(self)
        self._build_workspace()
        self._build_docks()
        self._build_menus()
        self._build_status_bar()
        self.undo_group.addStack(self.undo_stack)
        self.undo_group.addStack(self.canvas.undo_stack)
        self.undo_group.setActiveStack(self.undo_stack)
        QApplication.instance().focusChanged.connect(self._focus_changed)

        self.models.set_device_text(self._device_text())
        self.models.set_registry(self.registry)
        initial = self._initial_project(project_path)
        if not self.open_project(initial) and initial != default_project_dir():
            self.open_project(default_project_dir())
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._layout_restored = self._restore_layout()
        self._shown = False
        self._closed = False

    # construction ---------------------------------------------------------------------------------
    def _make_registry(self) -> Registry:
        registry = Registry(enabled=self.settings.get("enabled_plugins", []), safe_mode=self.safe_mode,
                            builtins=self.builtins)
        registry.model_roots += [(Path(folder), "user") for folder in self.settings.get("model_folders", [])]
        return registry

    def _build_workspace(self) -> None:
        self.workspace = QTabWidget()
        self.workspace.setDocumentMode(True)
        self.workspace.setMovable(True)
        self.canvas = ImageCanvas()
        self.canvas.sendToAction.connect(lambda name: self.send_to_action(name, "image"))
        self.canvas.installEventFilter(self)
        self.canvas.fileLoaded.connect(self._canvas_file_loaded)
        self.views["image"] = self.canvas
        self.view_tabs["image"] = self.canvas
        self.workspace.currentChanged.connect(self._tab_changed)
        self.workspace.addTab(self.canvas, self.style().standardIcon(QStyle.StandardPixmap.SP_DesktopIcon), "Image")
        self.restore_bar = RestoreBar()
        self.restore_bar.restoreRequested.connect(self.restore_parameters)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.restore_bar)
        layout.addWidget(self.workspace, 1)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.models = ModelBrowser()
        self.models.selectionChanged.connect(self._model_selected)
        self.params = ParamsPanel(canvas_provider=self.canvas_input_path)
        self.params.runRequested.connect(self.run_action)
        self.gallery = GalleryPanel(self.undo_stack)
        self.gallery.openRequested.connect(self.open_record)
        self.gallery.reuseRequested.connect(self.reuse_record)
        self.gallery.exportRequested.connect(self.export_dialog)
        self.gallery.input_targets = self.image_set_targets
        self.gallery.useAsInputRequested.connect(self.use_records_as_input)
        self.jobs = JobsPanel()
        self.jobs.cancelRequested.connect(self.engine.cancel)
        self.jobs.retryRequested.connect(self.retry_on_cpu)
        self.jobs.detailsRequested.connect(self.show_job_details)
        self.models_dock = self._dock("Models", "modelsDock", self.models, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.params_dock = self._dock("Parameters", "paramsDock", self.params, Qt.DockWidgetArea.RightDockWidgetArea)
        self.gallery_dock = self._dock("Gallery", "galleryDock", self.gallery, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.jobs_dock = self._dock("Jobs", "jobsDock", self.jobs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.gallery_dock, self.jobs_dock, Qt.Orientation.Horizontal)
        # The training panel (pyqtgraph curves) is built the first time its tab is shown.
        self.training_panel = None
        self.training_dock = self._dock("Training", "trainingDock", QWidget(), Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.jobs_dock, self.training_dock)
        self.jobs_dock.raise_()
        self.training_dock.visibilityChanged.connect(self._ensure_training_panel)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resize(1440, 900)

    def _ensure_training_panel(self, visible: bool = True):
        if visible and self.training_panel is None:
            from studio.qt.training_panel import TrainingPanel

            self.training_panel = TrainingPanel(self.registry, self.engine, self.project)
            self.training_dock.setWidget(self.training_panel)
        return self.training_panel

    def _apply_default_sizes(self) -> None:
        width = self.width()
        self.resizeDocks([self.models_dock, self.params_dock], [300, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.gallery_dock, self.jobs_dock], [max(width - 720, 300), 420], Qt.Orientation.Horizontal)
        self.resizeDocks([self.gallery_dock], [max(self.height() // 3, 220)], Qt.Orientation.Vertical)

    def _action(self, menu, text: str, slot: Callable[[], Any], shortcut: Any = None, icon: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        pixmap = QStyle.StandardPixmap
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&New Project…", self.new_project_dialog, QKeySequence.StandardKey.New, pixmap.SP_FileDialogNewFolder)
        self._action(file_menu, "&Open Project…", self.open_project_dialog, QKeySequence.StandardKey.Open, pixmap.SP_DialogOpenButton)
        self.recent_menu = file_menu.addMenu("Recent Projects")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(file_menu, "Save Project &As…", self.save_project_as_dialog, "Ctrl+Shift+S", pixmap.SP_DialogSaveButton)
        file_menu.addSeparator()
        self._action(file_menu, "Open &Image or Audio…", self.open_file_dialog, "Ctrl+Shift+O")
        self.export_action = self._action(file_menu, "&Export…", self.export_current, "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit_menu = bar.addMenu("&Edit")
        undo = self.undo_group.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_group.createRedoAction(self, "Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        edit_menu.addSeparator()
        self._action(edit_menu, "&Run Action", self.params.run, "Ctrl+Return")

        view_menu = bar.addMenu("&View")
        for dock in (self.models_dock, self.params_dock, self.gallery_dock, self.jobs_dock, self.training_dock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self._action(view_menu, "Zoom &In", self.canvas.zoom_in, QKeySequence.StandardKey.ZoomIn)
        self._action(view_menu, "Zoom &Out", self.canvas.zoom_out, QKeySequence.StandardKey.ZoomOut)
        self._action(view_menu, "&Fit", self.canvas.fit, "Ctrl+0")
        self._action(view_menu, "&Actual Size", self.canvas.actual_size, "Ctrl+1")
        view_menu.addSeparator()
        self._action(view_menu, "&Reset Layout", self.reset_layout)

        tools_menu = bar.addMenu("&Tools")
        self._action(tools_menu, "&Preferences…", self.preferences_dialog, QKeySequence.StandardKey.Preferences)
        self._action(tools_menu, "P&lugins…", self.plugins_dialog)
        self._action(tools_menu, "Re&scan Models", self.rescan_models, "F5")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About Studio", self.about_dialog, icon=pixmap.SP_MessageBoxInformation)

    def _build_status_bar(self) -> None:
        self.project_label = QLabel()
        self.device_label = QLabel()
        self.device_label.setToolTip("Compute device (Tools > Preferences)")
        for label in (self.project_label, self.device_label):
            label.setObjectName("hint")
            self.statusBar().addPermanentWidget(label)
        self._update_device_label()

    # layout --------------------------------------------------------------------------------------
    def _qsettings(self) -> QSettings:
        return QSettings(str(user_config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_layout(self) -> bool:
        stored = self._qsettings()
        geometry = stored.value("geometry")
        state = stored.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        return isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            if not self._layout_restored:
                self._apply_default_sizes()

    def _save_layout(self) -> None:
        stored = self._qsettings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState(LAYOUT_VERSION))
        stored.sync()

    def reset_layout(self) -> None:
        for dock in (self.models_dock, self.params_dock, self.gallery_dock, self.jobs_dock, self.training_dock):
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self._apply_default_sizes()

    # projects ------------------------------------------------------------------------------------
    def _initial_project(self, project_path: Path | None) -> Path:
        if project_path is not None:
            return Path(project_path)
        last = self.settings.get("last_project")
        if last and Path(last).is_dir():
            return Path(last)
        return default_project_dir()

    def open_project(self, path: Path) -> bool:
        try:
            project = Project(Path(path))
        except ProjectError as exc:
            self.show_error("Cannot open the project", str(exc))
            return False
        self._set_project(project)
        return True

    def _set_project(self, project: Project) -> None:
        old, old_bridge = self.project, self.project_bridge
        if old_bridge is not None:
            old_bridge.detach()
            old_bridge.deleteLater()
        self.project = project
        self.engine.project = project
        self.project_bridge = ProjectBridge(project, self)
        self.project_bridge.recordsChanged.connect(self._records_changed)
        self.undo_stack.clear()
        self.gallery.set_project(project)
        if self.training_panel is not None:
            self.training_panel.project = project
        for view in self.views.values():
            if hasattr(view, "set_project"):
                view.set_project(project)
        if old is not None and old is not project:
            old.close()
        self.setWindowTitle(f"{project.name} — Studio")
        self.project_label.setText(f"Project: {project.name}")
        self.project_label.setToolTip(str(project.path))
        recent = [str(project.path)] + [p for p in self.settings.get("recent_projects", []) if p != str(project.path)]
        self.settings.set("recent_projects", recent[:MAX_RECENT])
        self.settings.set("last_project", str(project.path))

    def new_project(self, path: Path) -> bool:
        path = Path(path)
        if (path / "project.db").exists():
            self.show_error("Cannot create the project", f"{path}: a project already exists there; use Open Project")
            return False
        return self.open_project(path)

    def save_project_as(self, path: Path) -> bool:
        if self.project is None:
            return False
        try:
            project = self.project.save_as(Path(path))
        except (ProjectError, OSError) as exc:
            self.show_error("Cannot save the project", str(exc))
            return False
        self._set_project(project)
        return True

    def new_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "New project: choose an empty folder")
        if path:
            self.new_project(Path(path))

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project folder", str(self.project.path if self.project else ""))
        if path:
            self.open_project(Path(path))

    def save_project_as_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save project as: choose an empty folder")
        if path:
            self.save_project_as(Path(path))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.settings.get("recent_projects", []) if Path(p).is_dir()]
        for path in recent:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_project(Path(p)))
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    def _records_changed(self, event: str, ids: list[int]) -> None:
        self.gallery.on_records_changed(event, ids)

    # models and actions --------------------------------------------------------------------------
    def _model_selected(self, plugin_id: str, checkpoint_id: str) -> None:
        if not plugin_id:
            self.params.set_target(None, None)
            return
        info = self.registry.get(plugin_id)
        problem = plugin_problem(info)
        try:
            config = self.registry.checkpoint(checkpoint_id).config if checkpoint_id else {}
        except CheckpointError:
            config = {}
        self.params.set_target(info.manifest, checkpoint_id or None, problem, config)
        if info.manifest is not None and not problem:
            for name in info.manifest.views:
                self._offer_view(name)
        self._sync_latent_view()

    def _offer_view(self, name: str) -> None:
        """A tab for a view the selected plugin uses; the real widget is built when first opened."""
        if name in self.views or name not in self.view_factories:
            return
        if any(isinstance(self.workspace.widget(i), _PendingView) and self.workspace.widget(i).name == name
               for i in range(self.workspace.count())):
            return
        self.workspace.addTab(_PendingView(name), name.capitalize())

    def view(self, name: str) -> QWidget | None:
        """The workspace tab for a view name, built on first use; None if nobody provides it."""
        if name in self.views:
            return self.views[name]
        factory = self.view_factories.get(name)
        if factory is None:
            return None
        try:
            widget = factory(self.workspace)
        except ImportError:
            return None
        self.views[name] = widget
        widget.installEventFilter(self)
        # Views may want more room than the centre has; scroll rather than push the docks away.
        tab = QScrollArea()
        tab.setWidgetResizable(True)
        tab.setFrameShape(QFrame.Shape.NoFrame)
        tab.setWidget(widget)
        self.view_tabs[name] = tab
        pending = [i for i in range(self.workspace.count())
                   if isinstance(self.workspace.widget(i), _PendingView) and self.workspace.widget(i).name == name]
        with QSignalBlocker(self.workspace):
            if pending:
                placeholder = self.workspace.widget(pending[0])
                self.workspace.insertTab(pending[0], tab, name.capitalize())
                self.workspace.removeTab(pending[0] + 1)
                placeholder.deleteLater()
            else:
                self.workspace.addTab(tab, name.capitalize())
        stack = getattr(widget, "undo_stack", None)
        if isinstance(stack, QUndoStack):
            self.undo_group.addStack(stack)
        if hasattr(widget, "set_project"):
            widget.set_project(self.project)
        if name == "waveform" and hasattr(widget, "sendToAction"):
            widget.sendToAction.connect(lambda action: self.send_to_action(action, "audio"))
        if name == "latent" and hasattr(widget, "exportRequested"):
            widget.exportRequested.connect(lambda preview, _info: self.show_image(preview))
        return widget

    def show_view(self, name: str) -> None:
        self.workspace.setCurrentWidget(self.view_tabs[name])

    def _tab_changed(self, index: int) -> None:
        current = self.workspace.widget(index)
        if isinstance(current, _PendingView) and self.view(current.name) is not None:
            self.show_view(current.name)
        self._sync_latent_view()

    def _sync_latent_view(self) -> None:
        """The latent explorer, when it is the open tab, explores the selected checkpoint."""
        explorer = self.views.get("latent")
        if explorer is None or self.workspace.currentWidget() is not self.view_tabs["latent"]:
            return
        plugin_id, checkpoint_id = self.models.selection()
        if not checkpoint_id or checkpoint_id in (explorer.model_id, self._loading_model):
            return
        try:
            checkpoint = self.registry.checkpoint(checkpoint_id)
        except CheckpointError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            return
        self._loading_model = checkpoint_id
        self.statusBar().showMessage(f"Loading {checkpoint_id} for the latent explorer…")
        self.model_loader.load(self.engine, checkpoint)

    def _model_loaded(self, checkpoint_id: str, model: Any) -> None:
        self._loading_model = ""
        explorer = self.views.get("latent")
        if explorer is None or self.models.selection()[1] != checkpoint_id:
            self._sync_latent_view()
            return
        try:
            explorer.set_model(model, checkpoint_id)
        except TypeError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            return
        self.statusBar().showMessage(f"Exploring {checkpoint_id}", 4000)
        self._apply_pending_encode(explorer)

    def _model_failed(self, checkpoint_id: str, message: str) -> None:
        self._loading_model = ""
        self.statusBar().showMessage(f"Cannot load {checkpoint_id}: {message}", 10000)

    def run_action(self, action_id: str, params: dict[str, Any], seed: int) -> Job | None:
        manifest = self.params.manifest
        if manifest is None:
            return None
        action = manifest.action(action_id)
        job = Job(
            plugin_id=manifest.id,
            action_id=action_id,
            model_id=self.params.model_id if action.needs_model else None,
            params=params,
            seed=seed,
        )
        self.engine.submit(job)
        self.statusBar().showMessage(f"Queued {job.title} (seed {seed})", 4000)
        return job

    def retry_on_cpu(self, failed: Job) -> Job:
        job = Job(
            plugin_id=failed.plugin_id,
            action_id=failed.action_id,
            model_id=failed.model_id,
            params=dict(failed.params),
            seed=failed.seed,
            device="cpu",
            parents=list(failed.parents),
        )
        self.engine.submit(job)
        return job

    def _remember_model_folder(self, folder: Path) -> None:
        """A model trained outside the models folders stays listed, in this and later sessions."""
        folder = folder.resolve()
        if any(folder == root.resolve() or folder.parent == root.resolve() for root, _ in self.registry.model_roots):
            return
        self.registry.model_roots.append((folder, "user"))
        self.settings.set("model_folders", [*self.settings.get("model_folders", []), str(folder)])

    def rescan_models(self) -> None:
        self.registry.checkpoints(refresh=True)
        self.models.set_registry(self.registry)

    def _on_job_event(self, event: str, job: Job) -> None:
        self.jobs.on_job_event(event, job)
        if job.resolved_device and job.resolved_device != self.last_device:
            self.last_device = job.resolved_device
            self._update_device_label()
            self.models.set_device_text(self._device_text())
        if event == JobState.DONE.value:
            self._job_done(job)
        elif event == JobState.FAILED.value:
            self.statusBar().showMessage(f"{job.title} failed: {job.error}", 8000)
            if job.error_kind == "oom":
                dialog = OomDialog(job.error, job.details, self)
                dialog.retryRequested.connect(lambda: self.retry_on_cpu(job))
                self._show_dialog(dialog)

    def _job_done(self, job: Job) -> None:
        result = job.result
        if result is None:
            return
        if result.model_dir is not None:
            self._remember_model_folder(Path(result.model_dir))
            self.rescan_models()
        if result.text:
            self.statusBar().showMessage(f"{job.title}: {result.text}", 10000)
        image_ids = [i for i in job.record_ids if self.project is not None and self._kind(i) == "image"]
        if result.images:
            self.show_image(result.images[0], image_ids[0] if image_ids else None)
        elif result.audio:
            audio_ids = [i for i in job.record_ids if i not in image_ids]
            self.show_audio(result.audio[0], audio_ids[0] if audio_ids else None)

    def _kind(self, record_id: int) -> str:
        try:
            return self.project.record(record_id).kind if self.project else ""
        except KeyError:
            return ""

    def show_job_details(self, job: Job) -> None:
        self._show_dialog(ErrorDialog(f"{job.title} failed", job.error, job.details, self))

    # canvas and views -----------------------------------------------------------------------------
    def show_image(self, image: np.ndarray, record_id: int | None = None, meta: dict[str, Any] | None = None) -> None:
        self.canvas.set_image(image, record_id)
        if meta is None and record_id is not None and self.project is not None:
            with contextlib.suppress(KeyError):
                meta = self.project.record(record_id).metadata()
        self.canvas.set_metadata(meta)
        self.show_view("image")
        self.canvas.fit()

    def show_audio(self, audio: Audio, record_id: int | None = None) -> bool:
        editor = self.view("waveform")
        if editor is None:
            return False
        editor.set_audio(audio, record_id=record_id)
        self.show_view("waveform")
        return True

    def canvas_input_path(self, name: str = "image") -> Path | None:
        """The canvas as a file an action can read. For a mask parameter, the painted mask as a
        grey PNG. Else the image: the record's own file when the canvas shows a result (so
        lineage is kept), or a snapshot PNG in the project's inputs folder."""
        folder = (self.project.path if self.project else user_config_dir()) / "inputs"
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        if "mask" in name:
            mask = self.canvas.mask()
            return None if mask is None else media.save_image(folder / f"mask-{stamp}.png", mask[..., None])
        image = self.canvas.image()
        if image is None:
            return None
        record_id = self.canvas.record_id()
        if record_id is not None and self.project is not None:
            with contextlib.suppress(KeyError):
                return self.project.record(record_id).file
        return media.save_image(folder / f"canvas-{stamp}.png", image)

    def audio_input_path(self) -> Path | None:
        """The waveform editor's audio as a file: the record's own file while unedited, else a
        float WAV snapshot in the project's inputs folder."""
        editor = self.views.get("waveform")
        if editor is None:
            return None
        audio = editor.audio()
        if len(audio.samples) == 0:
            return None
        record_id = getattr(editor, "record_id", None)
        if record_id is not None and self.project is not None and editor.undo_stack.isClean():
            with contextlib.suppress(KeyError):
                return self.project.record(record_id).file
        folder = (self.project.path if self.project else user_config_dir()) / "inputs"
        path = folder / f"audio-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.wav"
        return media.save_audio(path, audio, subtype="float")

    def send_to_action(self, name: str, kind: str = "image") -> bool:
        """A view's "send to": select that action of the current plugin and feed it the view's
        image and mask (the canvas) or audio (the waveform editor). "inpaint" falls back to an
        edit action that takes a mask."""
        if name == "encode":
            return self.encode_into_explorer()
        manifest = self.params.manifest
        if manifest is None:
            return False
        action = next((a for a in manifest.actions if name in (a.id, a.verb)), None)
        if action is None and name == "inpaint":
            action = next((a for a in manifest.actions_for("edit") if a.params.get("mask") is not None), None)
        if action is None:
            self.statusBar().showMessage(f"{manifest.name} has no {name} action", 5000)
            return False
        self.params.select_action(action.id)
        fields = [f for f in self.params.form.fields.values() if isinstance(f, FileField) and f.param.type == kind]
        if kind == "image":
            images = [f for f in fields if not f.is_mask and f.canvas_button is not None]
            masks = [f for f in fields if f.is_mask and f.canvas_button is not None]
            if images:
                images[0].canvas_button.setChecked(True)
            if masks and self.canvas.mask() is not None:
                masks[0].canvas_button.setChecked(True)
        elif fields:
            path = self.audio_input_path()
            if path is not None:
                fields[0].set_value(str(path))
            self._fill_audio_positions()
        self.params_dock.show()
        self.params_dock.raise_()
        return True

    def image_set_targets(self) -> list[tuple[str, str]]:
        """Folder parameters of the current action that take a set of images (``*_images``)."""
        action = self.params.action
        if action is None:
            return []
        return [(p.name, f"'{p.title}'") for p in action.params if p.type == "path" and p.name.endswith("_images")]

    def use_records_as_input(self, name: str, records: list[Record]) -> Path:
        """Copy gallery images into a folder of the project and fill that folder parameter."""
        folder = self.project.path / "sets" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{len(records)}"
        folder.mkdir(parents=True, exist_ok=True)
        for record in records:
            if record.kind == "image" and record.file.exists():
                shutil.copy2(record.file, folder / record.file.name)
        self.params.form.set_values({name: str(folder)})
        self.statusBar().showMessage(f"{len(records)} images set as {name}", 4000)
        return folder

    def _fill_audio_positions(self) -> None:
        """The editor's cursor and selection, in seconds, into the action's cursor/start/end fields."""
        editor = self.views.get("waveform")
        document = getattr(editor, "document", None)
        if document is None:
            return
        rate = document.rate
        values = {"cursor": editor.cursor() / rate}
        selection = editor.selection()
        if selection is not None:
            values.update(start=selection[0] / rate, end=selection[1] / rate)
        self.params.form.set_values({k: round(v, 4) for k, v in values.items() if k in self.params.form.fields})

    def encode_into_explorer(self) -> bool:
        """Encode the canvas image with the selected model and show it in the latent explorer."""
        image = self.canvas.image()
        if image is None:
            self.statusBar().showMessage("Open or generate an image to encode first", 5000)
            return False
        if self.view("latent") is None:
            return False
        self._pending_encode = image
        self.show_view("latent")
        self._sync_latent_view()
        explorer = self.views["latent"]
        if explorer.model is not None and explorer.model_id == self.models.selection()[1]:
            self._apply_pending_encode(explorer)
        return True

    def _apply_pending_encode(self, explorer) -> None:
        image, self._pending_encode = self._pending_encode, None
        if image is None:
            return
        try:
            explorer.set_latent(explorer.model.encode_images([image])[0])
        except (ValueError, TypeError, RuntimeError) as exc:
            self.show_error("Cannot encode the image", f"{type(exc).__name__}: {exc}")
            return
        self.statusBar().showMessage(f"Encoded the canvas image with {explorer.model_id}", 4000)

    def open_record(self, record: Record) -> None:
        try:
            if record.kind == "audio":
                if not self.show_audio(media.load_audio(record.file), record.id):
                    self.statusBar().showMessage("No waveform editor is installed to open audio", 5000)
                return
            self.show_image(media.load_image(record.file), record.id)
        except media.MediaError as exc:
            self.show_error("Cannot open the result", str(exc))

    # reuse and restore -----------------------------------------------------------------------------
    def reuse_record(self, record: Record) -> None:
        self.restore_parameters(record.metadata())

    def restore_parameters(self, meta: dict[str, Any]) -> bool:
        """Select the plugin, model and action of ``meta`` and refill the form and the seed."""
        plugin_id = str(meta.get("plugin") or "")
        info = self.registry.plugins.get(plugin_id)
        if info is None or plugin_problem(info):
            reason = plugin_problem(info) if info else "it is not installed"
            self.statusBar().showMessage(f"Cannot restore: plugin {plugin_id or '?'} is unavailable ({reason})", 8000)
            return False
        model_id = str(meta.get("model_id") or "")
        note = ""
        if not self.models.select(plugin_id, model_id):
            self.models.select(plugin_id)
            if model_id:
                note = f"; model {model_id} is not installed"
        params = meta.get("params") if isinstance(meta.get("params"), dict) else {}
        seed = meta.get("seed")
        unused = self.params.restore(meta.get("action"), params, int(seed) if isinstance(seed, int) else None)
        if unused:
            note += f"; ignored {', '.join(unused)}"
        if self.params.seed.mode == "lock":
            note += "; the seed stays locked"
        self.statusBar().showMessage(f"Restored parameters{note}", 8000)
        self.params_dock.show()
        return True

    # files ---------------------------------------------------------------------------------------
    def open_file(self, path: Path) -> bool:
        """Open an image in the canvas (or audio in the waveform editor) and offer its parameters."""
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix in media.AUDIO_SUFFIXES:
                audio = media.load_audio(path)
                meta = media.read_metadata(path)
                if not self.show_audio(audio):
                    self.statusBar().showMessage("No waveform editor is installed to open audio", 5000)
            else:
                image = media.load_image(path)
                meta = media.read_metadata(path)
                self.show_image(image, None, meta)
        except media.MediaError as exc:
            self.show_error("Cannot open the file", str(exc))
            return False
        if meta and meta.get("plugin"):
            self.restore_bar.offer(meta, path.name)
        else:
            self.restore_bar.hide()
        return True

    def _canvas_file_loaded(self, path: str, meta: dict[str, Any] | None) -> None:
        """The canvas opened or pasted an image itself; offer its parameters too."""
        if meta and meta.get("plugin"):
            self.restore_bar.offer(meta, Path(path).name if path else "The pasted image")

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in media.IMAGE_SUFFIXES + media.AUDIO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open image or audio", "", f"Media ({patterns});;All files (*)")
        if path:
            self.open_file(Path(path))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Files dropped on a workspace view open here too, so their parameters are offered."""
        if event.type() == QEvent.Type.Drop and isinstance(event, QDropEvent):
            files = _dropped_files(event)
            if files:
                event.acceptProposedAction()
                self.open_file(files[0])
                return True
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_files(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = _dropped_files(event)
        if files:
            event.acceptProposedAction()
            self.open_file(files[0])

    def export_record(self, record: Record, path: Path, subtype: str = "16") -> Path | None:
        """PNG (with metadata) or another image format; audio as WAV or FLAC."""
        try:
            if record.kind == "audio":
                return media.save_audio(path, media.load_audio(record.file), subtype, meta=record.metadata())
            return media.save_image(path, media.load_image(record.file), record.metadata())
        except media.MediaError as exc:
            self.show_error("Cannot export", str(exc))
            return None

    def export_current(self) -> None:
        records = self.gallery.selected_records()
        if records:
            self.export_dialog(records[0])
            return
        if self.canvas.image() is None:
            self.statusBar().showMessage("Nothing to export: select a result in the gallery", 5000)
            return
        self.canvas.export()

    def export_dialog(self, record: Record) -> None:
        if record.kind == "audio":
            filters = {
                "WAV 16-bit (*.wav)": "16", "WAV 24-bit (*.wav)": "24", "WAV 32-bit float (*.wav)": "float",
                "FLAC 16-bit (*.flac)": "16", "FLAC 24-bit (*.flac)": "24",
            }
            default = f"{record.model_id or record.plugin}-{record.id}.wav"
        else:
            filters = {"PNG with parameters (*.png)": "", "JPEG (*.jpg)": "", "WebP (*.webp)": "", "TIFF (*.tif)": ""}
            default = f"{record.model_id or record.plugin}-{record.id}-seed{record.seed}.png"
        path, chosen = QFileDialog.getSaveFileName(self, "Export", default, ";;".join(filters))
        if not path:
            return
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(chosen.split("*")[-1].rstrip(")"))
        written = self.export_record(record, target, filters.get(chosen) or "16")
        if written is not None:
            self.statusBar().showMessage(f"Exported {written}", 6000)

    # dialogs -------------------------------------------------------------------------------------
    def show_error(self, title: str, message: str, details: str = "") -> None:
        self._show_dialog(ErrorDialog(title, message, details, self))

    def _show_dialog(self, dialog: QWidget) -> None:
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]
        dialog.show()

    def preferences_dialog(self) -> None:
        dialog = PreferencesDialog(self.engine.device, self.registry, self.settings.get("enabled_plugins", []), self)
        if dialog.exec():
            self.apply_preferences(dialog.device(), dialog.enabled_ids())

    def plugins_dialog(self) -> None:
        dialog = PluginManagerDialog(self.registry, self.settings.get("enabled_plugins", []), self)
        if dialog.exec():
            self.apply_preferences(self.engine.device, dialog.enabled_ids())

    def apply_preferences(self, device: str, enabled: list[str]) -> None:
        self.settings.set("device", device)
        self.engine.device = device
        self.last_device = ""
        self._update_device_label()
        self.models.set_device_text(self._device_text())
        if sorted(enabled) != sorted(self.settings.get("enabled_plugins", [])):
            self.settings.set("enabled_plugins", sorted(enabled))
            self.registry = self._make_registry()
            self.engine.registry = self.registry
            self.models.set_registry(self.registry)

    def _device_text(self) -> str:
        if self.last_device:
            return f"{self.last_device.upper()} (setting: {self.engine.device})"
        return f"{self.engine.device} (resolved on the first run)" if self.engine.device == "auto" else self.engine.device.upper()

    def _update_device_label(self) -> None:
        self.device_label.setText(f"Device: {self.last_device.upper() or self.engine.device}")

    def about_text(self) -> str:
        torch = sys.modules.get("torch")
        if torch is not None:
            torch_text = torch.__version__
        else:
            try:
                torch_text = f"{version('torch')} (loads on the first run)"
            except PackageNotFoundError:
                torch_text = "not installed"
        return (
            f"<h3>Studio {__version__}</h3>"
            "<p>An offline desktop studio for generative models: generate, edit and interpolate.</p>"
            f"<p>Python {platform.python_version()}<br>Qt {_qt_version()} (PySide6 {pyside_version})<br>"
            f"PyTorch {torch_text}<br>Device: {self._device_text()}<br>"
            f"Plugins: {len(self.registry.usable())} on, {len(self.registry.plugins) - len(self.registry.usable())} off"
            f"{' (safe mode)' if self.safe_mode else ''}</p>"
        )

    def about_dialog(self) -> None:
        QMessageBox.about(self, "About Studio", self.about_text())

    # focus and shutdown ---------------------------------------------------------------------------
    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        widget = new
        while widget is not None:
            for view in self.views.values():
                stack = getattr(view, "undo_stack", None)
                if widget is view and isinstance(stack, QUndoStack):
                    self.undo_group.setActiveStack(stack)
                    return
            if widget is self.gallery:
                self.undo_group.setActiveStack(self.undo_stack)
                return
            widget = widget.parentWidget()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closed:
            super().closeEvent(event)
            return
        self._closed = True
        self._save_layout()
        QApplication.instance().focusChanged.disconnect(self._focus_changed)
        self.engine_bridge.detach()
        self.engine.shutdown(cancel=True, timeout=3.0)
        self.engine.project = None  # a job that outlived the timeout must not write to a closed project
        if self.project_bridge is not None:
            self.project_bridge.detach()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)


def _dropped_files(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    suffixes = media.IMAGE_SUFFIXES + media.AUDIO_SUFFIXES
    files = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [f for f in files if f.suffix.lower() in suffixes and f.is_file()]


def _qt_version() -> str:
    from PySide6.QtCore import qVersion

    return qVersion()


def apply_theme(app: QApplication) -> None:
    """Fusion with a dark palette, plus the small style sheet in resources/theme.qss."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: QColor(33, 36, 43),
        QPalette.ColorRole.WindowText: QColor(220, 223, 228),
        QPalette.ColorRole.Base: QColor(26, 28, 34),
        QPalette.ColorRole.AlternateBase: QColor(38, 41, 48),
        QPalette.ColorRole.ToolTipBase: QColor(44, 48, 56),
        QPalette.ColorRole.ToolTipText: QColor(230, 232, 236),
        QPalette.ColorRole.PlaceholderText: QColor(120, 126, 136),
        QPalette.ColorRole.Text: QColor(220, 223, 228),
        QPalette.ColorRole.Button: QColor(45, 49, 58),
        QPalette.ColorRole.ButtonText: QColor(220, 223, 228),
        QPalette.ColorRole.BrightText: QColor(255, 110, 110),
        QPalette.ColorRole.Link: QColor(97, 175, 239),
        QPalette.ColorRole.Highlight: QColor(58, 110, 190),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
    }
    for role, color in colors.items():
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 115, 124))
    app.setPalette(palette)
    qss = resources_dir() / "theme.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))



MainWindow.register_view("image", ImageCanvas)
MainWindow.register_view("waveform", _waveform_editor)
MainWindow.register_view("latent", _latent_explorer)
