"""Playback through the real sounddevice and PortAudio libraries, into ALSA's null device (a
sound card that discards what it is given), in a child process whose ~/.asoundrc points there:
the stream, its callback on the audio thread and the finished signal are the real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json
import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
from studio.qt.waveform_playback import Player

app = QCoreApplication([])
player = Player()
report = {"unavailable": player.unavailable}
reads = []

def read(a, b):
    reads.append((a, b))
    return np.full((b - a, 1), 0.25, np.float32)

def run_until(done):
    loop = QEventLoop()
    check = QTimer(interval=5)
    check.timeout.connect(lambda: loop.quit() if done() else None)
    check.start()
    QTimer.singleShot(20000, loop.quit)
    loop.exec()

if not player.unavailable:
    positions = []
    player.positionChanged.connect(positions.append)
    player.play(read, 1, 16000, 1000, 5000)
    run_until(lambda: not player.playing)
    report.update(once_playing=player.playing, once_position=player.position, once_reads=reads[:],
                  last_position=positions[-1] if positions else None)
    reads.clear()
    player.play(read, 1, 16000, 1000, 1200, loop=True)
    run_until(lambda: sum(b - a for a, b in reads) >= 1000)
    player.stop()
    report.update(loop_reads=reads[:], loop_playing=player.playing)
print(json.dumps(report))
"""


def test_a_real_portaudio_stream_plays_a_region_once_and_in_a_loop(tmp_path) -> None:
    (tmp_path / ".asoundrc").write_text("pcm.!default { type null }\n")
    env = {**os.environ, "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["unavailable"] == ""
    assert not report["once_playing"] and report["once_position"] == 5000 == report["last_position"]
    once = report["once_reads"]
    assert once[0][0] == 1000 and once[-1][1] == 5000
    assert all(a == b for (_, a), (b, _) in zip(once, once[1:]))  # contiguous, each frame once
    looped = report["loop_reads"]
    assert not report["loop_playing"]
    assert any(a == 1000 for a, _ in looped[1:])  # wrapped back to the start
    assert all(1000 <= a < b <= 1200 for a, b in looped)
