"""Worker threads for the explorer: quick calls whose stale results are dropped, and one long
job at a time with progress and cancel. Results arrive on the UI thread, and only while the
owning widget lives."""

from __future__ import annotations

from collections.abc import Callable, Generator

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid
from superqt.utils import create_worker


def one_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Workers(QObject):
    progress = Signal(object)  # (done, total, phase) while a job runs; None when it ends
    failed = Signal(str)  # one sentence

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._tokens: dict[str, int] = {}
        self._job = None

    def bump(self, kind: str) -> int:
        """Forget results of ``kind`` asked for so far; returns the new token."""
        self._tokens[kind] = self._tokens.get(kind, 0) + 1
        return self._tokens[kind]

    def current(self, kind: str, token: int) -> bool:
        return isValid(self) and self._tokens.get(kind, 0) == token

    def run(self, kind: str, function: Callable, done: Callable, *args, finished: Callable | None = None) -> None:
        """``function(*args)`` on a worker; ``done(result)`` unless a newer ``kind`` was asked for.
        ``finished()`` follows in every case (success, failure or stale)."""
        token = self.bump(kind)
        worker = create_worker(function, *args, _start_thread=False)
        worker.returned.connect(lambda result: done(result) if self.current(kind, token) else None)
        worker.errored.connect(lambda exc: self.failed.emit(one_sentence(exc)) if self.current(kind, token) else None)
        if finished is not None:
            worker.finished.connect(lambda: finished() if isValid(self) else None)
        worker.start()

    def start_job(self, generator: Generator, done: Callable, label: str) -> None:
        """Run a generator yielding (done, total, phase); a new job cancels the running one."""
        self.cancel_job()
        token = self.bump("job")
        worker = create_worker(lambda: (yield from generator), _start_thread=False)
        worker.yielded.connect(lambda update: self.progress.emit(update) if self.current("job", token) else None)
        worker.returned.connect(lambda result: self._finish_job(token, done, result))
        worker.errored.connect(lambda exc: self._finish_job(token, lambda e: self.failed.emit(one_sentence(e)), exc))
        self._job = worker
        self.progress.emit((0, 0, label))
        worker.start()

    def _finish_job(self, token: int, done: Callable, result) -> None:
        if not self.current("job", token):
            return
        self._job = None
        self.progress.emit(None)
        done(result)

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.quit()
            self._job = None
            self.bump("job")
            self.progress.emit(None)
