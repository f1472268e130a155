"""WaveNet model: the cached and compiled paths draw exactly the samples of the naive forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.wavenet.model import (
    WaveNet,
    WaveNetConfig,
    log_mel,
    mu_law_decode,
    mu_law_encode,
    sample_from_logits,
    silence_code,
)

torch.set_num_threads(1)


def tiny_model(mels: int = 8, dtype=torch.float64, seed: int = 0, harmonics: int = 3) -> WaveNet:
    torch.manual_seed(seed)
    config = WaveNetConfig(layers=6, stacks=2, residual=8, gate=16, skip=12, instruments=["piano", "organ", "flute"],
                           embed=6, mels=mels, mel_hop=64, mel_fft=256, mel_features=5, harmonics=harmonics)
    model = WaveNet(config).to(dtype).eval()
    with torch.no_grad():  # larger weights than the init, so the distribution is far from uniform
        for layer in model.layers:
            layer.conv.weight.mul_(3.0)
        model.post2.weight.mul_(4.0)
        model.first.weight.mul_(20.0)
    return model


def fast(model: WaveNet, plan, dtype=np.float64, chunk: int = 97) -> np.ndarray:
    return np.concatenate(list(model.sample(plan, chunk=chunk, dtype=dtype)), axis=1)


def test_fast_and_cached_equal_naive_with_morph_and_mel():
    model = tiny_model()
    n = 260
    mel = log_mel(np.random.default_rng(1).standard_normal(n).astype(np.float32) * 0.3, model.config).numpy()
    plan = model.plan(2, n, [0, 2], [60, 118], seed=7, temperature=0.9, morph_to=[1, 0],
                      mix=np.linspace(0.0, 1.0, n), mel=mel, time_offset=1234)  # 118: harmonics past Nyquist
    naive = model.sample_naive(plan)
    assert len(np.unique(naive)) > 20  # real sampling, not a constant
    np.testing.assert_array_equal(model.sample_cached_torch(plan), naive)
    np.testing.assert_array_equal(fast(model, plan), naive)


def test_fast_float32_equals_naive_float32():
    model = tiny_model(mels=0, dtype=torch.float32)
    plan = model.plan(1, 300, 1, 64, seed=3, temperature=1.0)
    np.testing.assert_array_equal(fast(model, plan, np.float32, chunk=300), model.sample_naive(plan))


def test_greedy_and_forced_prefix_match_naive():
    model = tiny_model(mels=0)
    prefix = mu_law_encode(0.3 * np.sin(np.arange(50) / 3.0))
    plan = model.plan(1, 150, 0, 72, seed=1, temperature=0.0, prefix=prefix)
    codes = fast(model, plan)
    np.testing.assert_array_equal(codes[0, :50], prefix)
    np.testing.assert_array_equal(codes, model.sample_naive(plan))


def test_priming_with_the_last_receptive_field_equals_priming_with_everything():
    model = tiny_model(mels=0)
    rf = model.config.receptive_field
    context = mu_law_encode(0.5 * np.sin(np.arange(200) / 5.0) * np.linspace(1, 0.2, 200))
    full = model.plan(1, 200 + 80, 0, 60, seed=2, prefix=context)
    window = context[-(rf + 1):]
    short = model.plan(1, len(window) + 80, 0, 60, seed=2, prefix=window, time_offset=200 - len(window))
    short.uniforms[:, -80:] = full.uniforms[:, -80:]
    primed = fast(model, short)[:, -80:]
    np.testing.assert_array_equal(primed, fast(model, full)[:, -80:])
    short.forced[:, : len(window)] = silence_code()
    assert (fast(model, short)[:, -80:] != primed).any()  # the context does matter


def test_takes_in_parallel_equal_takes_alone():
    model = tiny_model(mels=0)
    together = model.plan(3, 200, [0, 1, 2], [50, 60, 70], seed=4)
    parallel = np.concatenate(list(model.sample(together, chunk=64, dtype=np.float64, threads=2)), axis=1)
    for b in range(3):
        alone = model.plan(1, 200, b, 50 + 10 * b, seed=0)
        alone.uniforms[:] = together.uniforms[b]
        np.testing.assert_array_equal(fast(model, alone)[0], parallel[b])


@pytest.mark.parametrize("change", ["instrument", "pitch", "mel", "time_offset"])
def test_conditioning_changes_the_samples(change):
    model = tiny_model()
    n = 200
    mel = log_mel(0.5 * np.sin(np.arange(n) / 4.0).astype(np.float32), model.config).numpy()
    base = dict(instrument=0, pitch=60, seed=5, mel=mel)
    other = dict(base)
    if change == "instrument":
        other["instrument"] = 1
    elif change == "pitch":
        other["pitch"] = 61
    elif change == "time_offset":  # the pitch source's phase
        other["time_offset"] = 17
    else:
        other["mel"] = mel * 0.0 - 1.0
    a = fast(model, model.plan(1, n, **base))
    b = fast(model, model.plan(1, n, **other))
    assert (a != b).mean() > 0.3


def test_mu_law_round_trip_and_silence():
    x = np.linspace(-1, 1, 1001)
    codes = mu_law_encode(x)
    assert codes.min() == 0 and codes.max() == 255
    np.testing.assert_array_equal(mu_law_encode(mu_law_decode(codes)), codes)
    assert abs(mu_law_decode(np.array([silence_code()]))[0]) < 1e-3


def test_sample_from_logits_inverse_cdf():
    logits = np.log(np.array([0.25, 0.5, 0.25]))
    assert [sample_from_logits(logits, u, 1.0) for u in (0.0, 0.24, 0.26, 0.74, 0.76, 0.999)] == [0, 0, 1, 1, 2, 2]
    assert sample_from_logits(logits, 0.0, 0.0) == 1


def test_loss_is_log_256_for_a_uniform_model():
    model = tiny_model(mels=8, dtype=torch.float32)
    with torch.no_grad():
        model.post2.weight.zero_()
        model.post2.bias.zero_()
    codes = torch.randint(0, 256, (2, 300))
    mel = log_mel(torch.zeros(2, 300), model.config)
    loss = model.loss(codes, torch.tensor([0, 1]), torch.tensor([60, 62]), mel, torch.tensor([1.0, 0.0]),
                      torch.tensor([0, 500]))
    assert loss.item() == pytest.approx(np.log(256.0), abs=1e-5)
