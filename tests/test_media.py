import time

import numpy as np
import pytest
import soundfile as sf

from studio.core import media
from studio.core.plugin import Audio


def test_every_bad_image_is_a_clear_one_line_error_within_seconds(testdata):
    files = sorted((testdata / "images-bad").iterdir())
    assert len(files) >= 10
    for path in files:
        started = time.monotonic()
        with pytest.raises(media.MediaError) as info:
            media.load_image(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message, message
        assert time.monotonic() - started < 5


def test_images_with_broken_metadata_still_load(testdata):
    for path in sorted((testdata / "images-badmeta").iterdir()):
        image = media.load_image(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4)
        assert image.std() > 1, path.name  # real pixels, not a blank


def test_odd_images_load_correctly(testdata):
    odd = testdata / "images-odd"
    reference = media.load_image(odd / "hopper.png")
    for name in ("hopper.bmp", "hopper.tif", "hopper.webp", "hopper.jpg", "hopper.gif"):
        image = media.load_image(odd / name)
        assert image.shape == reference.shape
        assert np.abs(image.astype(int) - reference.astype(int)).mean() < 12, name
    assert media.load_image(odd / "16bit.cropped.tif").shape == (64, 64, 3)
    assert media.load_image(odd / "p_trns_single.png").shape[2] == 4  # palette transparency kept as alpha
    assert media.load_image(odd / "l_trns.png").shape[2] == 4
    assert media.load_image(odd / "imagedraw_polygon_1px_high.png").ndim == 3
    gif = media.load_image(odd / "iss634.gif")  # animated: the first frame
    assert gif.shape[:2] == (245, 245)
    assert media.load_image(odd / "multipage.tiff").shape[:2] == (10, 10)


def test_exif_rotation_is_applied(testdata):
    odd = testdata / "images-odd"
    upright = media.load_image(odd / "hopper.jpg").astype(int)
    rotated_180 = media.load_image(odd / "hopper_orientation_3.jpg").astype(int)
    rotated_90 = media.load_image(odd / "hopper_orientation_6.jpg").astype(int)
    assert np.abs(rotated_180 - upright).mean() < 15
    assert np.abs(rotated_90 - upright).mean() < 15


def test_png_metadata_round_trip_with_a1111_parameters(tmp_path):
    meta = {"plugin": "studio.ppca", "action": "generate", "model_id": "m", "model_sha256": "ab" * 32,
            "params": {"prompt": "a red fox", "steps": 20, "temperature": 0.7}, "seed": 123, "width": 8, "height": 8}
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = media.save_image(tmp_path / "out.png", image, meta)
    assert media.read_metadata(path) == meta
    assert np.array_equal(media.load_image(path), image)
    from PIL import Image

    text = Image.open(path).info["parameters"]
    assert text.startswith("a red fox\n") and "Steps: 20" in text and "Seed: 123" in text
    assert "Model hash: abababab" in text and "Temperature: 0.7" in text
    assert media.read_metadata(media.save_image(tmp_path / "plain.png", image)) is None


@pytest.mark.parametrize(("suffix", "subtype", "expected"), [
    (".wav", "16", "PCM_16"), (".wav", "24", "PCM_24"), (".wav", "float", "FLOAT"),
    (".flac", "16", "PCM_16"), (".flac", "24", "PCM_24"),
])
def test_audio_export_round_trip(tmp_path, suffix, subtype, expected):
    t = np.arange(16000) / 16000
    audio = Audio((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None], 16000)
    path = media.save_audio(tmp_path / f"a{suffix}", audio, subtype=subtype, rate=48000, meta={"seed": 4})
    info = sf.info(str(path))
    assert (info.subtype, info.samplerate, info.channels) == (expected, 48000, 1)
    loaded = media.load_audio(path)
    assert loaded.rate == 48000 and abs(len(loaded.samples) - 48000) <= 1
    assert media.read_metadata(path) == {"seed": 4}


def test_bad_audio_is_a_clear_error(tmp_path, testdata):
    with pytest.raises(media.MediaError, match="not a readable audio file"):
        media.load_audio(testdata / "images-odd" / "hopper.png")
    truncated = tmp_path / "cut.wav"
    media.save_audio(tmp_path / "whole.wav", Audio(np.zeros((1000, 1), np.float32), 16000))
    truncated.write_bytes((tmp_path / "whole.wav").read_bytes()[:30])
    with pytest.raises(media.MediaError):
        media.load_audio(truncated)
    with pytest.raises(media.MediaError, match="FLAC stores"):
        media.save_audio(tmp_path / "x.flac", Audio(np.zeros((10, 1), np.float32), 16000), subtype="float")
