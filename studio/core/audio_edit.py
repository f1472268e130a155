"""Audio editing as undoable commands on a document, in plain numpy (no Qt).

Every edit replaces one region ``[start, stop)`` by new samples (possibly of another length).
A command keeps only what it removed, never a copy of the whole file, and recomputes its new
samples from that region when redone, so undo memory grows with the edited region only::

    doc = AudioDocument(audio)
    edit = gain(1000, 5000, db=-6.0)
    edit.apply(doc)    # doc.samples[1000:5000] *= 0.501
    edit.revert(doc)   # bit-identical to before
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.core.audio_summary import Envelope, LevelIndex, PeakSummary, envelope
from studio.core.media import resample
from studio.core.plugin import Audio

CHUNK = 1 << 18  # frames per chunk (about 5.5 s at 48 kHz)


class AudioDocument:
    """The samples being edited, as a list of read-only chunks with a peak summary each.

    Like Audacity's block files: an edit rebuilds only the chunks it touches (plus a neighbour
    when a chunk would get too small), so cutting a second out of an hour costs milliseconds.
    Chunks are never written to, so a snapshot of the list is a consistent copy for a worker
    thread. ``samples`` joins the chunks into one read-only array on demand (and keeps it until
    the next edit).
    """

    def __init__(self, audio: Audio, copy: bool = True, chunk: int | None = None) -> None:
        samples = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
        samples = np.array(samples, dtype=np.float32, order="C", copy=copy or None)
        samples.flags.writeable = False
        self.rate = int(audio.rate)
        self.channels = samples.shape[1]
        self.chunk = int(chunk or CHUNK)
        self.version = 0
        self._set(self._split(samples), samples)

    def _set(
        self,
        chunks: list[np.ndarray],
        whole: np.ndarray | None,
        summaries: list[PeakSummary] | None = None,
        levels: dict[int, LevelIndex] | None = None,
    ) -> None:
        summaries = summaries or [PeakSummary(c) for c in chunks]
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks], dtype=np.int64)])
        # one assignment, so a worker thread reading ``_state`` sees the old or the new document
        self._state = (chunks, summaries, offsets)
        self._whole = whole
        if levels is None:
            levels = {k: LevelIndex.build(offsets[:-1], summaries, k) for k in range(len(PeakSummary.blocks))}
        self._levels = levels

    def _split(self, samples: np.ndarray) -> list[np.ndarray]:
        """Read-only views of about equal size, none over ``chunk`` frames (one chunk when short)."""
        count = max(1, -(-len(samples) // self.chunk))
        bounds = np.linspace(0, len(samples), count + 1).astype(np.int64)
        views = [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        for view in views:
            view.flags.writeable = False
        return views

    @property
    def length(self) -> int:
        return int(self._state[2][-1])

    @property
    def chunk_count(self) -> int:
        return len(self._state[0])

    @property
    def summary_nbytes(self) -> int:
        return sum(summary.nbytes for summary in self._state[1])

    @property
    def samples(self) -> np.ndarray:
        if self._whole is None:
            chunks, summaries, _ = self._state
            whole = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
            whole.flags.writeable = False
            bounds = np.cumsum([0] + [len(c) for c in chunks])
            self._set([whole[a:b] for a, b in zip(bounds[:-1], bounds[1:])], whole, summaries, self._levels)
        return self._whole

    def audio(self) -> Audio:
        return Audio(self.samples, self.rate)

    def snapshot(self) -> list[np.ndarray]:
        """The chunks as they are now; join them (in any thread) for a copy of the audio."""
        return list(self._state[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` (a read-only view when they lie in one chunk)."""
        chunks, _, offsets = self._state
        start, stop = max(0, int(start)), min(int(offsets[-1]), int(stop))
        if stop <= start:
            return np.zeros((0, self.channels), np.float32)
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        last = int(np.searchsorted(offsets, stop, side="left"))
        parts = [chunks[i][max(0, start - offsets[i]) : stop - offsets[i]] for i in range(first, last)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def region(self, start: int, stop: int) -> np.ndarray:
        return self.read(start, stop)

    def envelope(self, start: float, stop: float, columns: int) -> Envelope:
        """What to draw for ``[start, stop)`` (in frames) at ``columns`` pixel columns."""
        return envelope(self.read, self._level, self.length, start, stop, columns)

    def _level(self, level: int) -> LevelIndex:
        return self._levels[level]

    def replace(self, start: int, stop: int, new: np.ndarray) -> None:
        """Put ``new`` (k, channels) where ``[start, stop)`` was, rebuilding only the chunks touched."""
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"region {start}..{stop} is outside the audio (0..{self.length})")
        new = np.asarray(new, dtype=np.float32).reshape(-1, self.channels)
        chunks, summaries, offsets = self._state
        first = max(0, min(len(chunks) - 1, int(np.searchsorted(offsets, start, side="right")) - 1))
        last = max(first + 1, int(np.searchsorted(offsets, stop, side="left")))
        middle = [chunks[first][: start - offsets[first]], new, chunks[last - 1][stop - offsets[last - 1] :]]
        rebuilt = sum(len(part) for part in middle)
        if rebuilt < self.chunk // 4 and last < len(chunks):  # too small alone: take in the next chunk
            middle.append(chunks[last])
            last += 1
        if rebuilt < self.chunk // 4 and first > 0 and len(middle) == 3:
            middle.insert(0, chunks[first - 1])
            first -= 1
        joined = np.concatenate(middle)
        fresh = self._split(joined) if len(joined) or len(chunks) == last - first else []
        fresh_summaries = [PeakSummary(c) for c in fresh]
        fresh_offsets = offsets[first] + np.concatenate([[0], np.cumsum([len(c) for c in fresh[:-1]])]).astype(np.int64)
        shift = len(joined) - int(offsets[last] - offsets[first])
        levels = {}
        for k, index in self._levels.items():
            cut_from = sum(len(summary.mins[k]) for summary in summaries[:first])
            cut_to = cut_from + sum(len(summary.mins[k]) for summary in summaries[first:last])
            levels[k] = index.splice(cut_from, cut_to, LevelIndex.build(fresh_offsets, fresh_summaries, k), shift)
        self._set(
            chunks[:first] + fresh + chunks[last:], None,
            summaries[:first] + fresh_summaries + summaries[last:], levels,
        )
        self.version += 1


@dataclass
class Edit:
    """Replace ``[start, stop)`` by ``make(old_region)``; undo puts the old region back."""

    label: str
    start: int
    stop: int
    make: Callable[[np.ndarray], np.ndarray]
    _old: np.ndarray | None = field(default=None, repr=False)
    _new_length: int = 0

    def apply(self, doc: AudioDocument) -> None:
        old = doc.region(self.start, self.stop).copy()
        new = self.make(old)
        doc.replace(self.start, self.stop, new)
        self._old, self._new_length = old, len(new)

    def revert(self, doc: AudioDocument) -> None:
        if self._old is None:
            raise RuntimeError(f"{self.label}: revert before apply")
        doc.replace(self.start, self.start + self._new_length, self._old)
        self._old = None

    @property
    def new_stop(self) -> int:
        """End of the edited region after apply (where the following audio now starts)."""
        return self.start + self._new_length


@dataclass
class EditGroup:
    """Several edits applied in order and reverted in reverse order (e.g. trim)."""

    label: str
    edits: list[Edit]

    def apply(self, doc: AudioDocument) -> None:
        for edit in self.edits:
            edit.apply(doc)

    def revert(self, doc: AudioDocument) -> None:
        for edit in reversed(self.edits):
            edit.revert(doc)


AnyEdit = Edit | EditGroup


def _empty(old: np.ndarray) -> np.ndarray:
    return old[:0]


def delete(start: int, stop: int, label: str = "Delete") -> Edit:
    return Edit(label, start, stop, _empty)


def paste(start: int, stop: int, clip: np.ndarray) -> Edit:
    """Replace the selection ``[start, stop)`` (empty for an insert at ``start``) by ``clip``."""
    clip = np.array(clip, dtype=np.float32, copy=True)
    return Edit("Paste", start, stop, lambda old: clip)


def trim(start: int, stop: int, length: int) -> EditGroup:
    """Keep only ``[start, stop)``: delete the tail first so the head's indices stay valid."""
    return EditGroup("Trim", [Edit("Trim end", stop, length, _empty), Edit("Trim start", 0, start, _empty)])


def silence(start: int, stop: int) -> Edit:
    return Edit("Silence", start, stop, np.zeros_like)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def gain(start: int, stop: int, db: float) -> Edit:
    factor = np.float32(db_to_gain(db))
    return Edit(f"Gain {db:+.1f} dB", start, stop, lambda old: old * factor)


def normalize(start: int, stop: int, peak_db: float = -1.0) -> Edit:
    """Scale so the loudest sample of the region (any channel) reaches ``peak_db`` dBFS."""
    target = db_to_gain(peak_db)

    def make(old: np.ndarray) -> np.ndarray:
        peak = float(np.max(np.abs(old))) if old.size else 0.0
        return old.copy() if peak == 0.0 else old * np.float32(target / peak)

    return Edit(f"Normalize to {peak_db:.1f} dB", start, stop, make)


def fade_in(start: int, stop: int) -> Edit:
    return Edit("Fade in", start, stop, lambda old: old * _ramp(len(old))[:, None])


def fade_out(start: int, stop: int) -> Edit:
    return Edit("Fade out", start, stop, lambda old: old * _ramp(len(old))[::-1, None])


def _ramp(n: int) -> np.ndarray:
    """Linear gain 0 -> 1 over n samples (the first sample silent, the last at full level)."""
    return np.linspace(0.0, 1.0, n, dtype=np.float32) if n > 1 else np.ones(n, np.float32)


def reverse(start: int, stop: int) -> Edit:
    return Edit("Reverse", start, stop, lambda old: old[::-1].copy())


def conform(clip: Audio, rate: int, channels: int) -> np.ndarray:
    """A clip at the document's rate and channel count (resampled, mono-mixed or duplicated)."""
    samples = clip.samples if clip.samples.ndim == 2 else clip.samples[:, None]
    samples = resample(samples.astype(np.float32), clip.rate, rate)
    if samples.shape[1] != channels:
        mono = samples.mean(axis=1, keepdims=True)
        samples = np.repeat(mono, channels, axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def nearest_zero_crossing(samples: np.ndarray, index: int, radius: int) -> int:
    """The sample boundary nearest ``index`` (within ``radius``) where the mono mix changes sign.

    Returns the index of the quieter of the two samples around the crossing, so a cut there
    joins near-silent samples; ``index`` itself when there is no crossing nearby.
    """
    n = len(samples)
    lo, hi = max(0, index - radius), min(n, index + radius + 1)
    if hi - lo < 2:
        return int(np.clip(index, 0, n))
    window = samples[lo:hi]
    mix = window.mean(axis=1) if window.ndim == 2 else window
    sign = np.signbit(mix)
    crossings = np.flatnonzero(sign[1:] != sign[:-1]) + 1
    quieter = np.where(np.abs(mix[crossings - 1]) < np.abs(mix[crossings]), crossings - 1, crossings)
    candidates = np.concatenate([quieter, np.flatnonzero(mix == 0.0)]) + lo
    if not len(candidates):
        return index
    return int(candidates[np.argmin(np.abs(candidates - index))])
