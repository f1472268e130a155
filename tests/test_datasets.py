"""Training folders: summaries, the audio loader, and the builders of our offline data sets."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from studio.core import media
from studio.core.datasets import (
    DatasetError,
    load_audio_folder,
    load_image_folder,
    prepare_image,
    summarize_folder,
    trim_silence,
)
from studio.data import emoji, notes

RATE = 16000


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


@pytest.fixture
def audio_folder(tmp_path):
    root = tmp_path / "sounds"
    (root / "low").mkdir(parents=True)
    (root / "high").mkdir()
    silence = np.zeros((4410, 2), np.float32)
    sf.write(root / "low" / "a.wav", np.concatenate([silence, tone(0.5, 44100, 2, 220), silence]), 44100)
    sf.write(root / "low" / "b.flac", tone(0.25, 22050, 1, 220), 22050, subtype="PCM_16")
    sf.write(root / "high" / "c.ogg", tone(0.3, 48000, 1, 880), 48000, format="OGG", subtype="VORBIS")
    sf.write(root / "high" / "d.wav", tone(0.2, RATE, 6, 880), RATE)
    sf.write(root / "silent.wav", np.zeros((8000, 1), np.float32), 8000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "readme.txt").write_text("hello")
    return root


def test_audio_folder_becomes_mono_at_one_rate_with_silence_trimmed(audio_folder):
    folder = load_audio_folder(audio_folder, RATE)
    names = [p.name for p in folder.files]
    assert names == ["c.ogg", "d.wav", "a.wav", "b.flac"]
    assert folder.classes == ["high", "low"] and folder.labels.tolist() == [0, 0, 1, 1]
    assert all(c.ndim == 1 and c.dtype == np.float32 for c in folder.clips)
    a = folder.clips[names.index("a.wav")]
    assert 0 <= len(a) - 0.5 * RATE <= 512  # the 0.1 s silences on both sides are gone
    assert abs(len(folder.clips[names.index("b.flac")]) - 0.25 * RATE) <= 256
    assert folder.originals[names.index("d.wav")] == (RATE, 6, 0.2)
    spectrum = np.abs(np.fft.rfft(a))
    assert abs(np.argmax(spectrum) * RATE / len(a) - 220) < 5  # resampled, not sped up
    skipped = {p.name: why for p, why in folder.skipped}
    assert set(skipped) == {"silent.wav", "broken.wav", "readme.txt"}
    assert "silent" in skipped["silent.wav"] and "audio" in skipped["readme.txt"]
    stacked = folder.stacked(4000)
    assert stacked.shape == (4, 4000) and np.all(stacked[names.index("d.wav"), 3300:] == 0)
    info = folder.info()
    assert info["classes"] == {"high": 2, "low": 2} and info["rate"] == RATE and len(info["skipped"]) == 3


def test_trim_silence_keeps_quiet_notes_whole():
    quiet = tone(0.2, RATE)[:, 0] * 0.01
    padded = np.concatenate([np.zeros(1000, np.float32), quiet, np.zeros(1000, np.float32)])
    assert 0 <= len(trim_silence(padded)) - len(quiet) <= 2 * 256  # whole frames of 256 samples
    assert len(trim_silence(np.zeros(500, np.float32))) == 0


def test_summaries_say_what_was_found_and_what_will_be_done(audio_folder, tmp_path, testdata):
    summary = summarize_folder(audio_folder, rate=RATE)
    assert summary.kind == "audio" and summary.count == 5 and summary.files == 7
    assert summary.classes == {"high": 2, "low": 2}
    assert summary.formats["44100 Hz stereo"] == 1 and summary.formats["16000 Hz 6 channels"] == 1
    assert "resample 4 files to 16000 Hz" in summary.plan and "mix 2 multi-channel files down to mono" in summary.plan
    assert {p.name for p, _ in summary.skipped} == {"broken.wav", "readme.txt"}

    images = tmp_path / "images"
    images.mkdir()
    for name in ("hopper.png", "l_trns.png", "imagedraw_polygon_1px_high.png"):
        shutil.copy(testdata / "images-odd" / name, images / name)
    shutil.copy(testdata / "images-bad" / "truncated_image.png", images)
    summary = summarize_folder(images, size=32, channels=3)
    assert summary.kind == "image" and summary.count == 3
    assert [p.name for p, _ in summary.skipped] == ["truncated_image.png"]
    assert "resize 3 images to 32x32" in summary.plan
    assert any(step.startswith("convert") and "RGB" in step for step in summary.plan)
    text = summary.text()
    assert "3 images of 4 files" in text and "truncated_image.png" in text


def test_image_folders_load_at_the_model_resolution_and_mode(tmp_path, testdata):
    for name in ("hopper.png", "l_trns.png", "imagedraw_polygon_1px_high.png", "16bit.cropped.tif"):
        shutil.copy(testdata / "images-odd" / name, tmp_path / name)
    shutil.copy(testdata / "images-bad" / "broken.png", tmp_path)
    gray = load_image_folder(tmp_path, prepare_image(16, 1))
    rgb = load_image_folder(tmp_path, prepare_image(16, 3))
    assert gray.images.shape == (4, 16, 16, 1) and rgb.images.shape == (4, 16, 16, 3)
    assert [p.name for p, _ in gray.skipped] == ["broken.png"]
    assert gray.info()["count"] == 4 and gray.info()["skipped"][0][0].endswith("broken.png")


def test_empty_and_useless_folders_are_one_clear_error(tmp_path, testdata):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="the folder is empty"):
        summarize_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="the folder is empty"):
        load_audio_folder(tmp_path / "empty", RATE)
    with pytest.raises(DatasetError, match="no such folder"):
        summarize_folder(tmp_path / "missing")
    with pytest.raises(DatasetError, match="none of the 13 files is a readable image"):
        summarize_folder(testdata / "images-bad", kind="image")


def test_emoji_glyphs_render_centred_on_white():
    from PIL import ImageFont

    font = ImageFont.truetype(str(emoji.find_font()), emoji.FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
    grinning = emoji.render(font, "\U0001F600")
    family = emoji.render(font, "\U0001F468\u200d\U0001F469\u200d\U0001F467")
    assert grinning is not None and family is not None
    assert grinning.shape[0] == grinning.shape[1] and grinning[..., 3].max() == 255
    small = emoji.to_size(grinning, 32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    assert tuple(small[0, 0]) == (255, 255, 255) and small[16, 16].mean() < 250
    sequences = emoji.glyph_sequences(emoji.find_font())
    assert "\U0001F600" in sequences and "\U0001F468\u200d\U0001F469\u200d\U0001F467" in sequences
    assert all(ord(s[0]) >= 0x80 for s in sequences if len(s) == 1)
    assert emoji.is_test("\U0001F600") == emoji.is_test("\U0001F600")


def test_emoji_groups_come_from_emoji_test_whatever_the_ligature_order(tmp_path):
    listing = tmp_path / "emoji-test.txt"
    listing.write_text(
        "# group: Smileys & Emotion\n"
        "1F600                                  ; fully-qualified     # \U0001F600 E1.0 grinning face\n"
        "# group: People & Body\n"
        "1F6B4 200D 2640 FE0F                   ; fully-qualified     # woman biking\n"
        "1F6B4 200D 2640                        ; minimally-qualified # woman biking\n",
        encoding="utf-8")
    groups = emoji.emoji_groups(listing)
    assert groups[emoji.group_key("\U0001F600")] == "smileys-emotion"
    font_order = "\u2640\u200d\U0001F6B4"  # how the font's ligature lists woman biking
    assert groups[emoji.group_key(font_order)] == "people-body"
    assert emoji.group_key("\U0001F6B4\u200d\u2640\ufe0f") == emoji.group_key(font_order)
    with pytest.raises(FileNotFoundError, match="apt-get install unicode-data"):
        emoji.emoji_groups(tmp_path / "missing.txt")


def test_notes_builder_writes_labelled_one_second_clips(tmp_path, monkeypatch):
    monkeypatch.setattr(notes, "PROGRAMS", {0: "piano", 73: "flute"})
    monkeypatch.setattr(notes, "PITCHES", (48, 60, 72))
    monkeypatch.setattr(notes, "VELOCITIES", (100,))
    info = notes.build(tmp_path / "notes")
    assert sum(info["splits"].values()) == 6 and info["licence"].startswith("FluidR3_GM sound font: MIT")
    with open(tmp_path / "notes" / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["instrument"], r["pitch"]) for r in rows} == {(i, str(p)) for i in ("piano", "flute") for p in (48, 60, 72)}
    for row in rows:
        audio = media.load_audio(tmp_path / "notes" / row["file"])
        assert audio.rate == 16000 and audio.samples.shape == (16000, 1)
        assert abs(np.abs(audio.samples).max() - 0.9) < 1e-3
        quarter = len(audio.samples) // 4
        assert np.abs(audio.samples[:quarter]).max() > 0.3  # the note starts at once
        spectrum = np.abs(np.fft.rfft(audio.samples[:8000, 0]))
        pitch = 440 * 2 ** ((int(row["pitch"]) - 69) / 12)
        peak = np.argmax(spectrum) * 16000 / 8000
        assert min(abs(peak / pitch - k) for k in (1, 2, 3, 4)) < 0.08  # the fundamental or a harmonic
    assert json.loads((tmp_path / "notes" / "dataset.json").read_text())["name"] == "gm-notes-16k"
