"""Run a function on Qt's thread pool and get its result (or exception) back on the UI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Relay(QObject):
    """Lives on the UI thread; the worker emits, Qt queues the call to the slots here."""

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, owner: BackgroundTasks, on_done: Callable[[Any], None], on_failed: Callable[[Exception], None]):
        super().__init__()  # no Qt parent: it must outlive a closed owner until the worker is done
        self.owner, self.on_done, self.on_failed = owner, on_done, on_failed
        self.done.connect(self._done)
        self.failed.connect(self._failed)

    @Slot(object)
    def _done(self, value: Any) -> None:
        if self.owner._finished(self):
            self.on_done(value)

    @Slot(object)
    def _failed(self, exc: Exception) -> None:
        if self.owner._finished(self):
            self.on_failed(exc)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # handed to the UI thread, which shows it as one sentence
            self.relay.failed.emit(exc)
        else:
            self.relay.done.emit(result)


class BackgroundTasks(QObject):
    """Keeps each task's relay alive until its callback has run on the UI thread.

    After ``detach()`` (the owner widget is closing) results are dropped, not delivered.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: set[_Relay] = set()
        self._attached = True

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def start(
        self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_failed: Callable[[Exception], None]
    ) -> None:
        relay = _Relay(self, on_done, on_failed)
        self._running.add(relay)
        QThreadPool.globalInstance().start(_Task(fn, relay))

    def detach(self) -> None:
        self._attached = False

    def _finished(self, relay: _Relay) -> bool:
        self._running.discard(relay)
        relay.deleteLater()
        return self._attached
