"""WaveNet actions on a tiny random model: streaming previews, continue, infill, morph, resynthesize, train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from plugins.wavenet import actions
from plugins.wavenet.model import WaveNet, WaveNetConfig, load
from studio.core.checkpoints import CheckpointError
from studio.core.engine import Engine, Job
from studio.core.params import ParamError
from studio.core.plugin import ActionContext, Audio, Progress, Result
from studio.core.registry import Registry

torch.set_num_threads(1)
RATE = 16000


def tiny_model(mels: int = 0) -> WaveNet:
    torch.manual_seed(0)
    config = WaveNetConfig(layers=4, stacks=1, residual=8, gate=16, skip=8, embed=4, mels=mels, mel_features=4,
                           harmonics=2, instruments=["piano", "organ", "flute"])
    model = WaveNet(config).eval()
    with torch.no_grad():  # sharper than the init, so context and conditioning matter
        for layer in model.layers:
            layer.conv.weight.mul_(3.0)
        model.post2.weight.mul_(4.0)
        model.first.weight.mul_(20.0)
    return model


def params(action: str, **values) -> dict:
    spec = Registry().manifest("studio.wavenet").action(action).params
    return spec.validate(values)


def run(fn, ctx: ActionContext) -> tuple[list[Progress], Result]:
    progress = []
    gen = fn(ctx)
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


def sine(seconds: float, rate: int = RATE, channels: int = 1) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return Audio(np.repeat(wave[:, None], channels, axis=1), rate)


def test_generate_streams_previews_and_returns_takes():
    model = tiny_model()
    ctx = ActionContext(params("generate", instrument="organ", pitch=64, duration=0.35, takes=3), seed=1,
                        device="cpu", model=model)
    progress, result = run(actions.generate, ctx)
    assert len(result.audio) == 3 and all(len(a.samples) == 5600 and a.rate == RATE for a in result.audio)
    assert len(progress) == 4  # one preview per 0.1 s
    assert [len(p.preview.samples) for p in progress] == [1600, 3200, 4800, 5600]
    np.testing.assert_array_equal(progress[-1].preview.samples, result.audio[0].samples)
    assert not np.array_equal(result.audio[0].samples, result.audio[1].samples)  # takes vary
    again = run(actions.generate, ctx)[1]
    np.testing.assert_array_equal(again.audio[2].samples, result.audio[2].samples)  # same seed, same audio


def test_generate_rejects_an_instrument_the_model_does_not_know():
    ctx = ActionContext(params("generate", instrument="violin"), seed=0, device="cpu", model=tiny_model())
    with pytest.raises(ParamError, match="knows no instrument 'violin'"):
        run(actions.generate, ctx)


def test_continue_keeps_the_audio_before_the_cursor_bit_identical():
    model = tiny_model()
    source = sine(0.3, rate=44100, channels=2)  # resampled to 16 kHz and mixed to mono
    ctx = ActionContext(params("continue", audio=source, cursor=0.2, duration=0.1, takes=2), seed=3, device="cpu",
                        model=model, inputs={"audio": source})
    progress, result = run(actions.continue_, ctx)
    mono = actions._mono(source, RATE)
    for take in result.audio:
        assert len(take.samples) == 3200 + 1600
        np.testing.assert_array_equal(take.samples[:3200, 0], mono[:3200])
    assert progress[-1].preview.samples.shape == (4800, 1)
    # the continuation depends on what came before
    other = dict(ctx.params)
    ctx_silence = ActionContext(other, seed=3, device="cpu", model=model, inputs={"audio": Audio(np.zeros((3200, 1),
                                np.float32), RATE)})
    silent = run(actions.continue_, ctx_silence)[1]
    assert not np.array_equal(silent.audio[0].samples[3200:], result.audio[0].samples[3200:])


def test_infill_keeps_both_sides():
    model = tiny_model()
    source = sine(0.5)
    ctx = ActionContext(params("infill", audio=source, start=0.1, end=0.3, crossfade=0.01), seed=2, device="cpu",
                        model=model, inputs={"audio": source})
    _, result = run(actions.infill, ctx)
    out = result.audio[0].samples[:, 0]
    original = source.samples[:, 0]
    assert len(out) == len(original)
    np.testing.assert_array_equal(out[:1600], original[:1600])
    np.testing.assert_array_equal(out[4800:], original[4800:])
    assert not np.allclose(out[1600:4800], original[1600:4800], atol=1e-2)
    # the crossfade ends on the original sample
    assert abs(out[4799] - original[4799]) < 1e-6


def test_infill_outside_the_audio_is_a_clear_error():
    ctx = ActionContext(params("infill", audio=sine(0.5), start=0.4, end=0.2), seed=0, device="cpu", model=tiny_model(),
                        inputs={"audio": sine(0.5)})
    with pytest.raises(ParamError, match="start < end"):
        run(actions.infill, ctx)


def test_morph_grid_ends_are_the_pure_instruments():
    model = tiny_model()
    ctx = ActionContext(params("morph", instrument_a="piano", instrument_b="flute", mode="grid", steps=3,
                               duration=0.1), seed=4, device="cpu", model=model)
    _, result = run(actions.morph, ctx)
    assert len(result.audio) == 3 and result.metrics["mixes"] == [0.0, 0.5, 1.0]
    pure = []
    for name in ("piano", "flute"):
        p = params("generate", instrument=name, duration=0.1)
        plan = model.plan(1, 1600, model.instrument_index(name), p["pitch"], seed=4)
        plan.uniforms[:] = model.plan(3, 1600, 0, 60, seed=4).uniforms[0]
        pure.append(np.concatenate(list(model.sample(plan)), axis=1)[0])
    a, b = (actions.mu_law_encode(x.samples[:, 0]) for x in (result.audio[0], result.audio[2]))
    np.testing.assert_array_equal(a, pure[0])
    np.testing.assert_array_equal(b, pure[1])
    sweep = run(actions.morph, ActionContext(params("morph", mode="sweep", duration=0.1, instrument_a="piano",
                                                    instrument_b="flute"), seed=4, device="cpu", model=model))[1]
    assert len(sweep.audio) == 1 and not np.array_equal(sweep.audio[0].samples, result.audio[0].samples)


def test_resynthesize_needs_local_conditioning_and_follows_the_input_length():
    source = sine(0.2, rate=22050)
    ctx = ActionContext(params("resynthesize", audio=source), seed=0, device="cpu", model=tiny_model(), inputs={"audio": source})
    with pytest.raises(ParamError, match="without local"):
        run(actions.resynthesize, ctx)
    ctx.model = tiny_model(mels=16)
    _, result = run(actions.resynthesize, ctx)
    assert len(result.audio[0].samples) == 3200


def write_note(path, rate: int, pitch: int, channels: int = 1) -> None:
    t = np.arange(int(0.3 * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t) * np.exp(-3 * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.repeat(wave[:, None], channels, axis=1), rate)


def test_train_on_an_audio_folder_then_generate(tmp_path):
    data = tmp_path / "notes"
    write_note(data / "bell" / "p060.wav", 16000, 60)
    write_note(data / "bell" / "p067.wav", 44100, 67, channels=2)
    write_note(data / "buzz" / "p064_v100.wav", 22050, 64)
    (data / "buzz" / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "model"
    p = params("train", data=str(data), test_data=str(data), out=str(out), name="tiny", steps=3, batch_size=2,
               crop=512, layers=2, stacks=1, residual=4, skip=4, mels=4, harmonics=2, checkpoint_every=2,
               sample_every=0)
    ctx = ActionContext(p, seed=0, device="cpu", inputs={"data": data, "test_data": data})
    progress, result = run(actions.train, ctx)
    assert progress[-1].step == 3 and result.model_dir == out
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["instruments"] == ["bell", "buzz"] and config["plugin"] == "studio.wavenet"
    assert 0 < config["metrics"]["heldout_nll_nats"] < 6
    assert any("broken.wav" in str(path) for path, _ in config["training"]["data"]["skipped"])
    model = load(out)
    ctx = ActionContext(params("generate", instrument_index=1, duration=0.05), seed=0, device="cpu", model=model)
    assert len(run(actions.generate, ctx)[1].audio[0].samples) == 800
    # the engine loads the checkpoint folder and the audio file, as the GUI and the CLI do
    engine = Engine(Registry(), device="cpu")
    job = engine.execute(Job("studio.wavenet", "continue", str(out), {"audio": str(data / "bell" / "p067.wav"),
                             "cursor": 0.1, "duration": 0.05, "instrument_index": 0}, seed=0, device="cpu"))
    assert not job.error, job.error
    assert len(job.result.audio[0].samples) == 1600 + 800
    bad = engine.execute(Job("studio.wavenet", "continue", str(out), {"audio": str(data / "buzz" / "broken.wav")},
                             seed=0, device="cpu"))
    assert "broken.wav" in bad.error and "Traceback" not in bad.error


def test_pitch_from_file_names():
    from pathlib import Path

    assert actions.pitch_from_name(Path("p060_v075.wav")) == 60
    assert actions.pitch_from_name(Path("flute-p72.wav")) == 72
    assert actions.pitch_from_name(Path("loop.wav")) == 60


def test_load_rejects_a_folder_that_is_not_a_wavenet(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"plugin": "studio.wavenet", "model": {"layers": "x"}}))
    with pytest.raises(CheckpointError):
        load(tmp_path)
