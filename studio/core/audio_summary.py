"""Min/max/RMS summaries of long audio, computed once, so any view draws at screen resolution.

As in Audacity, audio is kept as a list of chunks (about 5 s each) and every chunk is
summarised in blocks of 256 samples, and those again in blocks of 16 (4,096 samples) and 16
more (65,536 samples). Drawing ``columns`` pixels reads the coarsest level whose block is no
wider than one pixel, so the work per redraw is bounded by about ``columns * 16`` summary
entries whatever the zoom; an edit recomputes the summaries of the chunks it touches only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

BASE_BLOCK = 256
LEVEL_FACTOR = 16
LEVELS = 3  # block sizes 256, 4096, 65536


@numba.njit(cache=True, nogil=True)
def _block_stats(samples: np.ndarray, block: int, out_min: np.ndarray, out_max: np.ndarray, out_sq: np.ndarray):
    # samples (n, ch) float32; outputs (ceil(n / block), ch); the last block may be partial
    n, channels = samples.shape
    for b in range(out_min.shape[0]):
        lo = b * block
        hi = min(lo + block, n)
        for c in range(channels):
            mn = np.float32(np.inf)
            mx = np.float32(-np.inf)
            sq = 0.0
            for i in range(lo, hi):
                v = samples[i, c]
                mn = min(mn, v)
                mx = max(mx, v)
                sq += v * v
            out_min[b, c] = mn
            out_max[b, c] = mx
            out_sq[b, c] = sq


def block_stats(samples: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-block (min, max, sum of squares), each (ceil(n / block), channels)."""
    blocks = -(-len(samples) // block)
    channels = samples.shape[1]
    mins = np.empty((blocks, channels), np.float32)
    maxs = np.empty((blocks, channels), np.float32)
    sums = np.empty((blocks, channels), np.float64)
    if blocks:
        _block_stats(np.ascontiguousarray(samples, dtype=np.float32), block, mins, maxs, sums)
    return mins, maxs, sums


def _merge(mins: np.ndarray, maxs: np.ndarray, sums: np.ndarray, factor: int):
    """Group every ``factor`` consecutive blocks into one."""
    blocks, channels = mins.shape
    full = blocks // factor
    out_min = np.empty((-(-blocks // factor), channels), np.float32)
    out_max = np.empty_like(out_min)
    out_sum = np.empty(out_min.shape, np.float64)
    if full:
        out_min[:full] = mins[: full * factor].reshape(full, factor, channels).min(axis=1)
        out_max[:full] = maxs[: full * factor].reshape(full, factor, channels).max(axis=1)
        out_sum[:full] = sums[: full * factor].reshape(full, factor, channels).sum(axis=1)
    if blocks % factor:
        out_min[full] = mins[full * factor :].min(axis=0)
        out_max[full] = maxs[full * factor :].max(axis=0)
        out_sum[full] = sums[full * factor :].sum(axis=0)
    return out_min, out_max, out_sum


@dataclass
class Envelope:
    """What to draw for one view: per column (or per sample when ``is_samples``) and channel.

    ``position`` is the first sample of each column, ``stop`` the sample after the last one;
    ``low``/``high`` are (columns, channels) peaks and ``rms`` the root mean square over each
    column. Zoomed in below two samples per column, ``is_samples`` is True and ``low == high``
    hold the samples themselves.
    """

    position: np.ndarray
    low: np.ndarray
    high: np.ndarray
    rms: np.ndarray
    is_samples: bool
    level: int  # block size read (1 = raw samples)
    stop: int = 0


class PeakSummary:
    """The min/max/sum-of-squares pyramid of one chunk, (n, channels) float32."""

    blocks = tuple(BASE_BLOCK * LEVEL_FACTOR**k for k in range(LEVELS))

    def __init__(self, samples: np.ndarray) -> None:
        self.length = len(samples)
        mins, maxs, sums = block_stats(samples, BASE_BLOCK)
        self.mins, self.maxs, self.sums = [mins], [maxs], [sums]
        for _ in range(1, LEVELS):
            mins, maxs, sums = _merge(mins, maxs, sums, LEVEL_FACTOR)
            self.mins.append(mins)
            self.maxs.append(maxs)
            self.sums.append(sums)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for level in (self.mins, self.maxs, self.sums) for a in level)


@dataclass(frozen=True)
class LevelIndex:
    """One summary level over the whole document: every block of every chunk, in order."""

    position: np.ndarray  # (blocks,) int64, first sample of each block
    counts: np.ndarray  # (blocks,) float64, samples in each block (chunk ends hold short blocks)
    mins: np.ndarray  # (blocks, channels) float32
    maxs: np.ndarray
    sums: np.ndarray  # (blocks, channels) float64, sums of squares

    @classmethod
    def build(cls, offsets: np.ndarray, summaries: list[PeakSummary], level: int) -> LevelIndex:
        block = PeakSummary.blocks[level]
        starts = [np.arange(len(s.mins[level]), dtype=np.int64) * block for s in summaries]
        return cls(
            np.concatenate([offset + first for offset, first in zip(offsets, starts)]),
            np.concatenate([np.minimum(block, s.length - first) for s, first in zip(summaries, starts)]).astype(np.float64),
            np.concatenate([s.mins[level] for s in summaries]),
            np.concatenate([s.maxs[level] for s in summaries]),
            np.concatenate([s.sums[level] for s in summaries]),
        )


    def splice(self, start: int, stop: int, middle: LevelIndex, shift: int) -> LevelIndex:
        """Blocks ``[start, stop)`` replaced by ``middle``; the blocks after move by ``shift`` samples."""

        def join(name: str, moved: int = 0) -> np.ndarray:
            mine = getattr(self, name)
            return np.concatenate([mine[:start], getattr(middle, name), mine[stop:] + moved])

        return LevelIndex(join("position", shift), join("counts"), join("mins"), join("maxs"), join("sums"))


def envelope(
    read: Callable[[int, int], np.ndarray],
    level_index: Callable[[int], LevelIndex],
    total: int,
    start: float,
    stop: float,
    columns: int,
) -> Envelope:
    """Peaks of frames ``[start, stop)`` of ``total`` at ``columns`` columns.

    ``read(lo, hi)`` gives samples, ``level_index(k)`` the document's summary level k. Every
    summary block (or sample, zoomed in) goes to the column where it starts, so a column's
    peaks are exact over the blocks it holds; a block is never wider than a column.
    """
    columns = max(1, int(columns))
    start, stop = max(0.0, float(start)), min(float(total), float(stop))
    if stop <= start:
        empty = read(0, 0)
        return Envelope(np.zeros(0), empty, empty, empty, True, 1, int(start))
    per_column = (stop - start) / columns
    lo, hi = int(np.floor(start)), min(total, int(np.ceil(stop)))
    if per_column < 2.0:
        hi = min(total, hi + 1)
        values = read(lo, hi)
        return Envelope(np.arange(lo, hi, dtype=np.float64), values, values, np.abs(values), True, 1, hi)
    level = max((k for k, block in enumerate(PeakSummary.blocks) if block <= per_column), default=-1)
    if level < 0:
        return _raw_envelope(read(lo, hi), start, per_column, columns, lo)
    index = level_index(level)
    first = max(0, int(np.searchsorted(index.position, lo, side="right")) - 1)  # the block holding lo
    last = int(np.searchsorted(index.position, hi, side="left"))
    position, counts = index.position[first:last], index.counts[first:last]
    column_of = np.clip((position - start) // per_column, 0, columns - 1).astype(np.int64)
    firsts = np.flatnonzero(np.diff(column_of, prepend=-1))
    low = np.minimum.reduceat(index.mins[first:last], firsts, axis=0)
    high = np.maximum.reduceat(index.maxs[first:last], firsts, axis=0)
    squares = np.add.reduceat(index.sums[first:last], firsts, axis=0)
    rms = np.sqrt(squares / np.add.reduceat(counts, firsts)[:, None]).astype(np.float32)
    end = int(position[-1] + counts[-1])
    return Envelope(position[firsts].astype(np.float64), low, high, rms, False, PeakSummary.blocks[level], end)


def _raw_envelope(values: np.ndarray, start: float, per_column: float, columns: int, lo: int) -> Envelope:
    """Peaks straight from the samples, when a column is narrower than the finest summary block."""
    firsts = np.unique(np.floor(start + per_column * np.arange(columns)).astype(np.int64) - lo)
    firsts = firsts[(firsts >= 0) & (firsts < len(values))]
    low = np.minimum.reduceat(values, firsts, axis=0)
    high = np.maximum.reduceat(values, firsts, axis=0)
    squares = np.add.reduceat(np.square(values), firsts, axis=0, dtype=np.float64)
    counts = np.diff(np.append(firsts, len(values)))[:, None]
    rms = np.sqrt(squares / counts).astype(np.float32)
    return Envelope((firsts + lo).astype(np.float64), low, high, rms, False, 1, lo + len(values))


def spectrogram(
    read: Callable[[int, int], np.ndarray], length: int, start: int, stop: int, columns: int, nfft: int = 1024
) -> np.ndarray:
    """Magnitudes in dBFS, (columns, nfft // 2 + 1), of Hann frames centred across ``[start, stop)``.

    ``read(lo, hi)`` gives frames ``lo..hi`` of audio ``length`` frames long. Frames are taken
    only where columns are (at most one per ``nfft // 8`` samples), so the cost follows the
    view's width, not the length of the audio. A full-scale sine reads 0 dB.
    """
    start, stop = max(0, int(start)), min(length, int(stop))
    columns = int(max(1, min(columns, (stop - start) // max(1, nfft // 8))))
    spacing = (stop - start) / columns
    centres = (start + spacing * (np.arange(columns) + 0.5)).astype(np.int64)
    lo = max(0, int(centres[0]) - nfft // 2)
    hi = min(length, int(centres[-1]) + nfft // 2 + 1)
    mix = read(lo, hi).mean(axis=1, dtype=np.float32)
    padded = np.zeros(len(mix) + nfft, np.float32)
    padded[nfft // 2 : nfft // 2 + len(mix)] = mix
    index = (centres - lo)[:, None] + np.arange(nfft)[None, :]
    window = np.hanning(nfft).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(padded[index] * window, axis=1))
    return (20.0 * np.log10(spectrum * (2.0 / window.sum()) + 1e-10)).astype(np.float32)
