"""Playback of a region through sounddevice, with a position the editor's cursor follows.

sounddevice needs the PortAudio library and an output device; when either is missing,
``Player.unavailable`` says why in one sentence and the editor disables its transport.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal


def probe_output() -> str:
    """Why playback cannot work here, or '' when an output device is present."""
    try:
        sd = importlib.import_module("sounddevice")
    except (ImportError, OSError) as exc:
        return f"Playback is off: the PortAudio sound library is not available ({exc})."
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudioError and friends: no sound system at all
        return f"Playback is off: no audio devices could be listed ({exc})."
    devices = [devices] if isinstance(devices, dict) else list(devices)
    if not any(int(device.get("max_output_channels", 0)) > 0 for device in devices):
        return "Playback is off: this computer has no audio output device."
    return ""


class Player(QObject):
    """Plays frames ``start..stop`` once or in a loop; ``position`` is the next frame to play."""

    positionChanged = Signal(int)
    playingChanged = Signal(bool)
    _finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.unavailable = probe_output()
        self.position = 0
        self.loop = False
        self._read: Callable[[int, int], np.ndarray] = lambda a, b: np.zeros((0, 1), np.float32)
        self._start = self._stop = 0
        self._stream = None
        self._timer = QTimer(self, interval=33)
        self._timer.timeout.connect(lambda: self.positionChanged.emit(self.position))
        self._finished.connect(self._on_finished)

    @property
    def playing(self) -> bool:
        return self._stream is not None

    def play(
        self, read: Callable[[int, int], np.ndarray], channels: int, rate: int, start: int, stop: int, loop: bool = False
    ) -> None:
        """``read(a, b)`` returns frames ``a..b`` (n, channels) float32; it is called on the audio thread."""
        if self.unavailable:
            raise RuntimeError(self.unavailable)
        self.stop()
        if stop <= start:
            return
        sd = importlib.import_module("sounddevice")
        self._read, self._start, self._stop, self.loop = read, start, stop, loop
        self.position = start
        self._stream = sd.OutputStream(
            samplerate=rate, channels=channels, dtype="float32",
            callback=self._fill, finished_callback=self._finished.emit,
        )
        self._stream.start()
        self._timer.start()
        self.playingChanged.emit(True)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._timer.stop()
        stream.abort()
        stream.close()
        self.playingChanged.emit(False)

    def _fill(self, outdata: np.ndarray, frames: int, _time, _status) -> None:
        """The sounddevice callback (audio thread): copy the next frames, wrapping when looping."""
        written, position = 0, self.position
        while written < frames:
            take = min(frames - written, self._stop - position)
            if take <= 0:
                if not self.loop:
                    outdata[written:] = 0
                    self.position = position
                    raise importlib.import_module("sounddevice").CallbackStop
                position = self._start
                continue
            outdata[written : written + take] = self._read(position, position + take)
            written += take
            position += take
        self.position = position

    def _on_finished(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._timer.stop()
            self.positionChanged.emit(self.position)
            self.playingChanged.emit(False)
