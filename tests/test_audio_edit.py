"""Editing operations, their undo, zero crossings and the peak summary, on small real arrays."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core import audio_edit as ed
from studio.core.audio_summary import BASE_BLOCK
from studio.core.plugin import Audio

RATE = 8000


def sine(seconds: float = 1.0, freq: float = 220.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    left = 0.5 * np.sin(2 * np.pi * freq * t)
    right = 0.25 * np.sin(2 * np.pi * freq * 1.5 * t + 0.3)
    return np.stack([left, right][:channels], axis=1).astype(np.float32)


@pytest.fixture(params=[ed.CHUNK, 1000], ids=["one-chunk", "many-chunks"])
def doc(request) -> ed.AudioDocument:
    return ed.AudioDocument(Audio(sine(), RATE), chunk=request.param)


def assert_summary_matches(doc: ed.AudioDocument) -> None:
    """Every drawing resolution agrees with min/max/RMS computed from the samples directly."""
    x = doc.samples
    assert doc.length == len(x) == sum(len(c) for c in doc.snapshot())
    for columns in (7, 40, 300):
        check_envelope(doc, x, 0, doc.length, columns)
    check_envelope(doc, x, doc.length / 3, doc.length / 2, 50)


def check_envelope(doc: ed.AudioDocument, x: np.ndarray, start: float, stop: float, columns: int):
    env = doc.envelope(start, stop, columns)
    if env.is_samples:
        np.testing.assert_array_equal(env.high, x[env.position.astype(int)])
        return env
    assert len(env.position) <= columns
    bounds = np.append(env.position.astype(int), env.stop)
    for i, (p, q) in enumerate(zip(bounds[:-1], bounds[1:])):
        np.testing.assert_array_equal(env.low[i], x[p:q].min(axis=0))
        np.testing.assert_array_equal(env.high[i], x[p:q].max(axis=0))
        np.testing.assert_allclose(env.rms[i], np.sqrt(np.mean(x[p:q].astype(np.float64) ** 2, axis=0)), rtol=1e-4)
    assert bounds[0] <= start < bounds[1] and bounds[-2] < stop <= bounds[-1]
    return env


def expected_after(name: str, x: np.ndarray, a: int, b: int) -> np.ndarray:
    part = x[a:b]
    ramp = np.linspace(0, 1, b - a, dtype=np.float32)[:, None]
    peak = np.abs(part).max()
    return {
        "delete": np.concatenate([x[:a], x[b:]]),
        "trim": part,
        "silence": np.concatenate([x[:a], np.zeros_like(part), x[b:]]),
        "gain": np.concatenate([x[:a], part * np.float32(10 ** (-6 / 20)), x[b:]]),
        "normalize": np.concatenate([x[:a], part * np.float32(10 ** (-1 / 20) / peak), x[b:]]),
        "fade_in": np.concatenate([x[:a], part * ramp, x[b:]]),
        "fade_out": np.concatenate([x[:a], part * ramp[::-1], x[b:]]),
        "reverse": np.concatenate([x[:a], part[::-1], x[b:]]),
    }[name]


def make_edit(name: str, a: int, b: int, length: int) -> ed.AnyEdit:
    return {
        "delete": lambda: ed.delete(a, b),
        "trim": lambda: ed.trim(a, b, length),
        "silence": lambda: ed.silence(a, b),
        "gain": lambda: ed.gain(a, b, -6.0),
        "normalize": lambda: ed.normalize(a, b, -1.0),
        "fade_in": lambda: ed.fade_in(a, b),
        "fade_out": lambda: ed.fade_out(a, b),
        "reverse": lambda: ed.reverse(a, b),
    }[name]()


@pytest.mark.parametrize(
    "name", ["delete", "trim", "silence", "gain", "normalize", "fade_in", "fade_out", "reverse"]
)
def test_edit_apply_undo_redo(doc: ed.AudioDocument, name: str) -> None:
    original = doc.samples.copy()
    a, b = 1000, 3100
    edit = make_edit(name, a, b, doc.length)
    edit.apply(doc)
    np.testing.assert_allclose(doc.samples, expected_after(name, original, a, b), atol=1e-6)
    assert_summary_matches(doc)
    edit.revert(doc)
    np.testing.assert_array_equal(doc.samples, original)
    assert_summary_matches(doc)
    edit.apply(doc)  # redo recomputes from the restored region
    np.testing.assert_allclose(doc.samples, expected_after(name, original, a, b), atol=1e-6)


def test_cut_then_paste_elsewhere_round_trips(doc: ed.AudioDocument) -> None:
    original = doc.samples.copy()
    clip = doc.region(2000, 2500).copy()
    cut = ed.delete(2000, 2500)
    cut.apply(doc)
    paste = ed.paste(100, 100, clip)
    paste.apply(doc)
    assert doc.length == len(original)
    np.testing.assert_array_equal(doc.samples[100:600], original[2000:2500])
    np.testing.assert_array_equal(doc.samples[600:2100], original[100:1600])
    assert_summary_matches(doc)
    paste.revert(doc)
    cut.revert(doc)
    np.testing.assert_array_equal(doc.samples, original)


def test_paste_replaces_a_selection_of_another_length(doc: ed.AudioDocument) -> None:
    original = doc.samples.copy()
    clip = np.full((10, 2), 0.125, np.float32)
    edit = ed.paste(500, 900, clip)
    edit.apply(doc)
    assert doc.length == len(original) - 390
    np.testing.assert_array_equal(doc.samples[500:510], clip)
    np.testing.assert_array_equal(doc.samples[510:], original[900:])
    edit.revert(doc)
    np.testing.assert_array_equal(doc.samples, original)


def test_undo_keeps_only_the_affected_region(doc: ed.AudioDocument) -> None:
    edit = ed.gain(10, 20, 3.0)
    edit.apply(doc)
    assert edit._old is not None and edit._old.shape == (10, 2)


def test_normalize_reaches_the_target_peak_and_leaves_silence_alone(doc: ed.AudioDocument) -> None:
    ed.normalize(0, doc.length, -3.0).apply(doc)
    assert np.abs(doc.samples).max() == pytest.approx(10 ** (-3 / 20), rel=1e-5)
    ed.silence(0, 100).apply(doc)
    before = doc.samples.copy()
    ed.normalize(0, 100, 0.0).apply(doc)
    np.testing.assert_array_equal(doc.samples, before)


def test_fades_start_and_end_silent(doc: ed.AudioDocument) -> None:
    ed.fade_in(0, 400).apply(doc)
    ed.fade_out(doc.length - 400, doc.length).apply(doc)
    assert np.all(doc.samples[0] == 0) and np.all(doc.samples[-1] == 0)


def test_replace_outside_the_audio_is_refused(doc: ed.AudioDocument) -> None:
    with pytest.raises(ValueError, match="outside the audio"):
        ed.delete(100, doc.length + 1).apply(doc)


def test_nearest_zero_crossing_lands_on_a_sign_change() -> None:
    x = sine(0.1, freq=100.0, channels=1)  # period 80 samples: crossings every 40
    for index in (5, 33, 47, 301):
        k = ed.nearest_zero_crossing(x, index, radius=60)
        assert abs(k - index) <= 20
        assert abs(x[k, 0]) < 0.5 * np.sin(2 * np.pi * 100 / RATE) + 1e-6
    assert ed.nearest_zero_crossing(np.ones((100, 1), np.float32), 50, 10) == 50


def test_conform_resamples_and_matches_channels() -> None:
    mono = Audio(sine(0.5, channels=1), RATE)
    out = ed.conform(mono, RATE * 2, 2)
    assert out.shape == (RATE, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_envelope_matches_brute_force_at_every_level() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300_001, 2)).astype(np.float32)
    for chunk in (ed.CHUNK, 70_001):
        doc = ed.AudioDocument(Audio(x, RATE), chunk=chunk)
        for start, stop, columns, level in [(0, 300_001, 40, 4096), (1234.5, 200_000, 300, 256), (50, 9000, 300, 1)]:
            env = check_envelope(doc, x, start, stop, columns)
            assert env.level == level and not env.is_samples
        zoomed = doc.envelope(100, 140, 200)
        assert zoomed.is_samples
        np.testing.assert_array_equal(zoomed.high, x[100 : len(zoomed.high) + 100])


def test_summaries_stay_right_after_edits_near_block_and_chunk_edges() -> None:
    doc = ed.AudioDocument(Audio(sine(2.0), RATE), chunk=3000)
    for edit in (
        ed.gain(BASE_BLOCK - 1, 5 * BASE_BLOCK + 3, 4.0),
        ed.delete(7, 3 * BASE_BLOCK),
        ed.reverse(0, doc.length // 2),
        ed.paste(2999, 2999, sine(0.3)),
        ed.delete(doc.length - 10, doc.length),
    ):
        edit.apply(doc)
        assert_summary_matches(doc)


def test_an_edit_rebuilds_only_the_chunks_it_touches() -> None:
    x = sine(10.0)
    doc = ed.AudioDocument(Audio(x, RATE), chunk=4000)
    before = doc.snapshot()
    assert len(before) == 20
    cut = ed.delete(41_000, 41_500)
    cut.apply(doc)
    after = doc.snapshot()
    untouched = sum(any(a is b for b in before) for a in after)
    assert untouched >= len(before) - 2
    np.testing.assert_array_equal(doc.samples, np.concatenate([x[:41_000], x[41_500:]]))
    cut.revert(doc)
    np.testing.assert_array_equal(doc.samples, x)


def test_chunks_do_not_fragment_under_many_small_edits() -> None:
    doc = ed.AudioDocument(Audio(sine(4.0), RATE), chunk=2000)
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = int(rng.integers(0, doc.length - 50))
        ed.delete(a, a + int(rng.integers(1, 40))).apply(doc)
        ed.paste(a, a, np.zeros((int(rng.integers(1, 40)), 2), np.float32)).apply(doc)
    sizes = [len(c) for c in doc.snapshot()]
    assert max(sizes) <= 2000 and len(sizes) <= 2 * doc.length // 500 + 1
    assert_summary_matches(doc)


def test_the_document_never_shares_writable_memory() -> None:
    x = sine()
    doc = ed.AudioDocument(Audio(x, RATE))
    x[:] = 0  # the caller's array is copied
    assert doc.samples.any()
    with pytest.raises(ValueError):
        doc.samples[0, 0] = 1.0
    with pytest.raises(ValueError):
        doc.read(0, 10)[0, 0] = 1.0


def test_random_edits_and_undos_match_plain_numpy() -> None:
    rng = np.random.default_rng(7)
    reference = sine(3.0)
    doc = ed.AudioDocument(Audio(reference, RATE), chunk=1500)
    done: list[tuple[ed.AnyEdit, np.ndarray]] = []
    for step in range(120):
        n = len(reference)
        a = int(rng.integers(0, max(1, n)))
        b = int(min(n, a + rng.integers(0, 4000)))
        kind = step % 5
        if kind == 0:
            edit, after = ed.delete(a, b), np.concatenate([reference[:a], reference[b:]])
        elif kind == 1:
            clip = rng.standard_normal((int(rng.integers(0, 3000)), 2)).astype(np.float32)
            edit, after = ed.paste(a, b, clip), np.concatenate([reference[:a], clip, reference[b:]])
        elif kind == 2:
            edit, after = ed.reverse(a, b), np.concatenate([reference[:a], reference[a:b][::-1], reference[b:]])
        elif kind == 3 and b > a:
            edit, after = ed.trim(a, b, n), reference[a:b]
        else:
            edit, after = ed.silence(a, b), np.concatenate([reference[:a], 0 * reference[a:b], reference[b:]])
        edit.apply(doc)
        done.append((edit, reference))
        reference = after
        np.testing.assert_array_equal(doc.samples, reference)
        if step % 10 == 0:
            assert_summary_matches(doc)
    for edit, before in reversed(done[-30:]):
        edit.revert(doc)
        np.testing.assert_array_equal(doc.samples, before)
    assert_summary_matches(doc)
