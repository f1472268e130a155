"""Decoding and encoding image files off the UI thread for the image canvas."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from studio.core.media import MediaError, load_image, read_metadata


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, work: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._work, self._relay = work, relay

    def run(self) -> None:
        try:
            result = self._work()
        except MediaError as exc:
            self._report(self._relay.failed, str(exc))
        except Exception as exc:  # anything else still becomes one sentence, never a crash
            self._report(self._relay.failed, f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self._report(self._relay.done, result)

    @staticmethod
    def _report(signal: Any, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the widget that asked was closed meanwhile
            signal.emit(value)


class BackgroundIO(QObject):
    """Runs file work on the global thread pool; results come back on the owner's thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relays: set[_Relay] = set()

    def run(self, work: Callable[[], Any], on_done: Callable[[Any], None], on_failed: Callable[[str], None]) -> None:
        relay = _Relay(self)  # lives on this thread, so its signals are delivered here
        relay.done.connect(on_done)
        relay.failed.connect(on_failed)
        relay.done.connect(lambda _result: self._forget(relay))
        relay.failed.connect(lambda _message: self._forget(relay))
        self._relays.add(relay)
        QThreadPool.globalInstance().start(_Task(work, relay))

    def busy(self) -> bool:
        return bool(self._relays)

    def _forget(self, relay: _Relay) -> None:
        self._relays.discard(relay)
        relay.deleteLater()


def read_image_file(source: Path | bytes) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Pixels and, for our own PNGs, the generation metadata they carry."""
    image = load_image(source)
    meta = None
    if isinstance(source, Path):
        try:
            meta = read_metadata(source)
        except MediaError:
            meta = None
    return image, meta

