"""Flow layers and whole flows: exact inverses, log-determinants against brute-force Jacobians."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plugins.flow.model import (
    ActNorm,
    AffineCoupling,
    Flow,
    FlowConfig,
    InvConv1x1,
    Preprocess,
    Squeeze,
    load,
)
from studio.core.checkpoints import save_checkpoint
from studio.core.latent import LatentModel


def randomize(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Move every parameter off its identity-like initialization, so the tests see real maps."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return module


def layer_cases() -> list[tuple[str, torch.nn.Module, tuple[int, ...]]]:
    """Every layer type (and every mask/scale/parity variant) with a tiny input shape."""
    cases = [
        ("squeeze", Squeeze(), (1, 4, 4)),
        ("actnorm", ActNorm(2), (2, 2, 2)),
        ("invconv", InvConv1x1(3, torch.Generator().manual_seed(1)), (3, 2, 2)),
        ("shift", Preprocess("shift", 0.05), (1, 4, 4)),
        ("logit", Preprocess("logit", 0.05), (1, 4, 4)),
    ]
    for scale in ("tanh", "sigmoid"):
        for parity in (0, 1):
            cases.append((f"checkerboard-{scale}-{parity}", AffineCoupling(1, 4, 4, 8, "checkerboard", parity, scale),
                          (1, 4, 4)))
            cases.append((f"channel-{scale}-{parity}", AffineCoupling(3, 2, 2, 8, "channel", parity, scale), (3, 2, 2)))
    return cases


def inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> torch.Tensor:
    """Values in (0, 1), valid for every layer including the logit preprocessing."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=generator, dtype=torch.float64) * 0.9 + 0.05


def brute_force_logdet(fn, x: torch.Tensor) -> float:
    """log |det J| of fn at one input x (1, ...), from the full autograd Jacobian."""
    flat = x.reshape(-1)
    jacobian = torch.autograd.functional.jacobian(lambda v: fn(v.reshape(x.shape)).reshape(-1), flat)
    return float(torch.linalg.slogdet(jacobian)[1])


@pytest.mark.parametrize("name,layer,shape", layer_cases(), ids=[c[0] for c in layer_cases()])
def test_layer_inverse_undoes_forward(name, layer, shape):
    layer = randomize(layer.double())
    x = inputs(shape, 5)
    layer(x)  # ActNorm initializes from its first batch
    y, logdet = layer(x)
    assert y.shape[0] == 5 and logdet.shape == (5,)
    assert torch.allclose(layer.inverse(y), x, atol=1e-4, rtol=0)
    if name != "squeeze":
        assert not torch.allclose(y, x)  # a real map, not the identity


@pytest.mark.parametrize("name,layer,shape", layer_cases(), ids=[c[0] for c in layer_cases()])
def test_layer_logdet_matches_brute_force_jacobian(name, layer, shape):
    layer = randomize(layer.double(), seed=3)
    layer(inputs(shape, 4, seed=9))
    for seed in range(2):
        x = inputs(shape, 1, seed=seed)
        with torch.no_grad():
            _, logdet = layer(x)
        assert float(logdet[0]) == pytest.approx(brute_force_logdet(lambda v: layer(v)[0], x), abs=1e-6)


TINY = {
    "glow": FlowConfig(arch="glow", size=4, channels=1, levels=2, depth=2, hidden=8),
    "realnvp": FlowConfig(arch="realnvp", size=4, channels=1, levels=2, depth=2, hidden=8, preprocess="logit"),
    "glow-rgb": FlowConfig(arch="glow", size=4, channels=3, levels=2, depth=1, hidden=8),
}


def tiny_flow(kind: str, seed: int = 0) -> Flow:
    model = Flow(TINY[kind], seed=seed).double()
    model.initialize(torch.randint(0, 256, (8, TINY[kind].channels, 4, 4), generator=torch.Generator().manual_seed(4)))
    return randomize(model, seed=seed, scale=0.1).eval()


@pytest.mark.parametrize("kind", list(TINY))
def test_whole_flow_inverts_and_its_logdet_matches_the_jacobian(kind):
    model = tiny_flow(kind)
    x = inputs((TINY[kind].channels, 4, 4), 6)
    z = model.encode(x)
    assert z.shape == (6, model.latent_dim) == (6, TINY[kind].dim)
    assert torch.allclose(model.decode(z), x, atol=1e-4, rtol=0)
    for i in range(2):
        one = x[i : i + 1]
        with torch.no_grad():
            _, logdet = model(one)
        assert float(logdet[0]) == pytest.approx(brute_force_logdet(model.encode, one), abs=1e-6)


def test_float32_flow_round_trips_within_1e4_and_keeps_pixels():
    model = tiny_flow("glow").float()
    pixels = torch.randint(0, 256, (16, 1, 4, 4), generator=torch.Generator().manual_seed(2)).float()
    x = (pixels + 0.5) / 256.0
    with torch.no_grad():
        assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4
    images = [p.permute(1, 2, 0).numpy().astype(np.uint8) for p in pixels]
    restored = model.decode_latents(model.encode_images(images))
    assert all(np.array_equal(a, b) for a, b in zip(images, restored))


def test_bits_per_dim_is_the_discrete_density_of_the_dequantized_pixels():
    model = tiny_flow("realnvp")
    pixels = torch.randint(0, 256, (3, 1, 4, 4), generator=torch.Generator().manual_seed(5)).double()
    bpd = model.bits_per_dim(pixels, "midpoint")
    log_density = model.log_prob((pixels + 0.5) / 256.0)  # density on [0, 1]^D
    expected = -(log_density - 16 * math.log(256.0)) / (16 * math.log(2.0))
    assert torch.allclose(bpd, expected)
    uniform = model.bits_per_dim(pixels, "uniform", torch.Generator().manual_seed(0))
    assert uniform.shape == (3,) and not torch.allclose(uniform, bpd)


def test_a_fresh_flow_scores_noise_near_eight_bits_and_training_lowers_it():
    torch.manual_seed(0)
    model = Flow(FlowConfig(arch="glow", size=4, channels=1, levels=1, depth=2, hidden=16))
    data = torch.cat([torch.full((32, 1, 4, 2), 20.0), torch.full((32, 1, 4, 2), 230.0)], dim=3)
    model.initialize(data)
    with torch.no_grad():
        before = float(model.loss(data, torch.Generator().manual_seed(0)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        optimizer.zero_grad()
        loss = model.loss(data, torch.Generator().manual_seed(step))
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert float(model.loss(data, torch.Generator().manual_seed(0))) < before - 1.0


def test_sample_shapes_ranges_and_determinism_by_seed():
    model = tiny_flow("glow-rgb").float()
    a, za = model.sample(5, 0.7, torch.Generator().manual_seed(11))
    b, zb = model.sample(5, 0.7, torch.Generator().manual_seed(11))
    c, _ = model.sample(5, 0.7, torch.Generator().manual_seed(12))
    assert a.shape == (5, 3, 4, 4) and za.shape == (5, 48)
    assert torch.equal(a, b) and torch.equal(za, zb) and not torch.equal(a, c)
    images = model.to_images(a)
    assert len(images) == 5 and images[0].shape == (4, 4, 3) and images[0].dtype == np.uint8
    cold, _ = model.sample(2, 0.0, torch.Generator().manual_seed(1))
    assert torch.allclose(cold[0], cold[1])  # temperature 0 is the prior's mode


def test_float64_latents_use_a_double_precision_copy():
    model = tiny_flow("glow").float()
    images = [np.random.default_rng(i).integers(0, 256, (4, 4, 1), dtype=np.uint8) for i in range(4)]
    exact = model.encode_images(images, np.float64)
    assert exact.dtype == np.float64 and model.double_precision() is model.double_precision()
    assert model.double_precision().dtype == torch.float64 and model.dtype == torch.float32
    assert "_double_twin" not in "".join(model.state_dict())
    assert np.allclose(exact, model.encode_images(images), atol=1e-4)
    assert all(np.array_equal(a, b) for a, b in zip(images, model.decode_latents(exact)))


def test_flow_satisfies_the_latent_model_protocol():
    model = tiny_flow("glow").float()
    assert isinstance(model, LatentModel)
    images = [np.full((9, 7, 3), v, np.uint8) for v in (10, 200)]  # any size and mode is prepared
    latents = model.encode_images(images)
    assert latents.shape == (2, 16) and latents.dtype == np.float32
    decoded = model.decode_latents(latents)
    assert decoded[0].shape == (4, 4, 1)
    bpd = model.bits_per_dim_images(images)
    assert bpd.shape == (2,) and np.all(np.isfinite(bpd))


def test_checkpoint_round_trip_gives_the_same_model(tmp_path):
    model = tiny_flow("realnvp").float()
    config = {"id": "t", "plugin": "studio.flow", "family": "flow", "model": model.config_dict()}
    save_checkpoint(tmp_path / "t", model.state_dict(), config)
    loaded = load(tmp_path / "t")
    x = inputs((1, 4, 4), 3).float()
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))


def test_bad_configs_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="cannot be squeezed"):
        FlowConfig(arch="glow", size=28, levels=3)
    with pytest.raises(ValueError, match="arch must be"):
        FlowConfig(arch="nice")


def test_invconv_inverse_stays_exact_after_its_weights_change():
    layer = InvConv1x1(3, torch.Generator().manual_seed(0)).eval()
    y = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = layer.inverse(y)  # cached while the parameters stay the same
        layer.log_s.add_(0.5)
        layer.lower.add_(0.1)
        after = layer.inverse(y)
        assert not torch.allclose(before, after)
        assert torch.allclose(layer(after)[0], y, atol=1e-5)
