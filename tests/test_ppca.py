import numpy as np
import pytest
from scipy.stats import multivariate_normal

from plugins.ppca.model import PPCA, PPCAConfig, load
from studio.core.engine import Engine, Job
from studio.core.registry import Registry


def fitted(seed=0, n=400, size=3, components=2):
    rng = np.random.default_rng(seed)
    dim = size * size
    basis = rng.standard_normal((dim, components))
    data = rng.standard_normal((n, components)) @ basis.T * 0.1 + 0.5 + rng.standard_normal((n, dim)) * 0.01
    return PPCA.fit(data, PPCAConfig(size=size, channels=1, components=components)), data, basis


def test_likelihood_equals_the_dense_gaussian():
    model, data, _ = fitted()
    covariance = model.weight @ model.weight.T + model.noise_var * np.eye(model.dim)
    dense = multivariate_normal(model.mean, covariance).logpdf(data[:10])
    assert np.allclose(model.log_likelihood(data[:10]), dense, rtol=1e-8)


def test_fit_recovers_the_subspace_and_noise():
    model, _, basis = fitted(n=4000)
    q, _ = np.linalg.qr(basis)
    learned, _ = np.linalg.qr(model.weight)
    assert np.allclose(np.linalg.svd(q.T @ learned)[1], 1.0, atol=1e-3)
    assert model.noise_var == pytest.approx(1e-4, rel=0.1)


def test_encode_decode_round_trip_on_the_subspace():
    model, _, _ = fitted()
    z = np.random.default_rng(1).standard_normal((5, 2))
    assert np.allclose(model.encode(model.decode(z)), z @ (model.weight.T @ model.weight) @ model._m_inv.T)
    assert model.encode(model.decode(z)).shape == (5, 2)


def test_shipped_model_actions_through_the_engine(testdata):
    engine = Engine(Registry())
    gen = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 2, "temperature": 0.0}, seed=1))
    mean_image = gen.result.images[0]
    assert mean_image.shape == (28, 28, 1) and np.array_equal(mean_image, gen.result.images[1])
    source = str(testdata / "images-odd" / "hopper.png")
    plain = engine.execute(Job("studio.ppca", "edit", "ppca-mnist", {"image": source, "amount": 0.0}))
    moved = engine.execute(Job("studio.ppca", "edit", "ppca-mnist", {"image": source, "amount": 4.0}))
    assert np.abs(plain.result.images[0].astype(int) - moved.result.images[0].astype(int)).sum() > 100
    bad = engine.execute(Job("studio.ppca", "edit", "ppca-mnist", {"image": source, "component": 200}))
    assert bad.error == "component must be below 32 for this model, not 200"
    path = engine.execute(Job("studio.ppca", "interpolate", "ppca-mnist", {"seed_a": 1, "seed_b": 2, "steps": 5}))
    z = path.result.latents
    assert len(path.result.images) == 5 and np.allclose(np.linalg.norm(z[2]), np.linalg.norm(z[0]), rtol=0.2)
    digit = engine.execute(Job("studio.ppca", "likelihood", "ppca-mnist", {"image": str(
        Registry().checkpoint("ppca-mnist").path / "samples.png")}))
    photo = engine.execute(Job("studio.ppca", "likelihood", "ppca-mnist", {"image": source}))
    assert digit.result.metrics["bits_per_dim"] < photo.result.metrics["bits_per_dim"]


def test_latent_protocol():
    from studio.core.latent import LatentModel

    model = load(Registry().checkpoint("ppca-mnist").path)
    assert isinstance(model, LatentModel)
    images = model.decode_latents(np.zeros((2, model.latent_dim), np.float32))
    assert np.allclose(model.encode_images(images), 0, atol=0.05)
