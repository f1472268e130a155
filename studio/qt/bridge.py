"""Qt signals over the core's plain-callback listeners.

Engine and Project callbacks fire on whatever thread did the work (usually the engine
worker). The bridges re-emit them as Qt signals from an object living on the UI thread, so
connected slots always run on the UI thread (queued delivery across threads). Progress events
are coalesced: at most one per job waits in the event queue, so a fast action cannot flood it.
"""

from __future__ import annotations

import contextlib
import threading

from PySide6.QtCore import QObject, Qt, Signal, Slot

from studio.core.checkpoints import Checkpoint
from studio.core.engine import Engine, Job, resolve_device
from studio.core.store import Project


class EngineBridge(QObject):
    """``jobEvent(event, job)`` on the UI thread for every engine event."""

    jobEvent = Signal(str, object)
    _deliver = Signal(str, object)

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._pending_progress: set[int] = set()
        self._lock = threading.Lock()
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        engine.subscribe(self._on_engine_event)

    def detach(self) -> None:
        self.engine.unsubscribe(self._on_engine_event)

    def _on_engine_event(self, event: str, job: Job) -> None:
        if event == "progress":
            with self._lock:
                if job.id in self._pending_progress:
                    return
                self._pending_progress.add(job.id)
        self._deliver.emit(event, job)

    @Slot(str, object)
    def _on_deliver(self, event: str, job: Job) -> None:
        if event == "progress":
            with self._lock:
                self._pending_progress.discard(job.id)
        self.jobEvent.emit(event, job)


class ProjectBridge(QObject):
    """``recordsChanged(event, ids)`` on the UI thread: event is added, changed or bookmarks."""

    recordsChanged = Signal(str, object)  # event, list of record ids
    _deliver = Signal(str, object)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self._active = True
        self._deliver.connect(self.recordsChanged, Qt.ConnectionType.QueuedConnection)
        project.subscribe(self._on_project_event)

    def detach(self) -> None:
        """The project has no unsubscribe; a detached bridge just stops forwarding."""
        self._active = False

    def _on_project_event(self, event: str, ids: list[int]) -> None:
        if self._active:
            self._deliver.emit(event, list(ids))


class ModelLoader(QObject):
    """Loads a checkpoint through the engine's model cache on a worker thread, for views that
    work on a model directly (the latent explorer); ``loaded(checkpoint_id, model)``."""

    loaded = Signal(str, object)
    failed = Signal(str, str)

    def load(self, engine: Engine, checkpoint: Checkpoint) -> None:
        threading.Thread(target=self._run, args=(engine, checkpoint), name="model-loader", daemon=True).start()

    def _run(self, engine: Engine, checkpoint: Checkpoint) -> None:
        try:
            model = engine.models.get(engine.registry, checkpoint, resolve_device(engine.device))
        except Exception as exc:  # a plugin's loader may fail in any way; the user gets one line
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self.failed.emit(checkpoint.id, f"{type(exc).__name__}: {exc}")
            return
        with contextlib.suppress(RuntimeError):
            self.loaded.emit(checkpoint.id, model)
