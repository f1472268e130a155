"""Shared by the training tests: a tiny autoencoder plugin written to a temporary package, and a
data folder with good, odd, corrupt and non-image files. (No tests here.)"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from studio.core import media

PLUGIN_TOML = """id = "test.tinyae"
name = "Tiny autoencoder"
family = "tinyae"
modality = "image"
version = "0.1"
loader = "PACKAGE.actions:load"

[[actions]]
id = "generate"
verb = "generate"
entry = "PACKAGE.actions:generate"
params = [{ name = "count", type = "int", default = 4, min = 1, max = 64 }]

[[actions]]
id = "train"
verb = "train"
entry = "PACKAGE.actions:train"
needs_model = false
params = [
  { name = "data", type = "path", required = true },
  { name = "out", type = "str", default = "" },
  { name = "steps", type = "int", default = 40, min = 1, max = 100000 },
  { name = "batch_size", type = "int", default = 8, min = 1, max = 1024 },
  { name = "lr", type = "float", default = 0.01, min = 0.0, max = 1.0 },
  { name = "ema", type = "float", min = 0.0, max = 1.0 },
  { name = "checkpoint_every", type = "int", default = 10, min = 1, max = 100000 },
  { name = "sample_every", type = "int", default = 10, min = 1, max = 100000 },
  { name = "log_every", type = "int", default = 5, min = 1, max = 100000 },
  { name = "resume", type = "bool", default = false },
  { name = "padding_mb", type = "int", default = 0, min = 0, max = 512 },
  { name = "size", type = "int", default = 8, min = 8, max = 8 },
  { name = "color", type = "choice", default = "gray", choices = ["gray"] },
]
"""

PLUGIN_CODE = '''from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.core import media, training
from studio.core.checkpoints import load_tensors
from studio.core.datasets import load_image_folder
from studio.core.plugin import Progress, Result

SIZE, LATENT = 8, 4


class AutoEncoder(nn.Module):
    def __init__(self, padding_mb: int = 0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 16), nn.Tanh(), nn.Linear(16, LATENT))
        self.decoder = nn.Sequential(nn.Linear(LATENT, 16), nn.Tanh(), nn.Linear(16, SIZE * SIZE))
        # a large buffer makes checkpoint writes slow enough to be interrupted in tests
        self.register_buffer("padding", torch.zeros(padding_mb * 262144))

    def forward(self, x):  # (B, 1, 8, 8) -> (B, 1, 8, 8)
        return self.decoder(self.encoder(x)).view(-1, 1, SIZE, SIZE)


class TinyFamily:
    def __init__(self, padding_mb: int = 0) -> None:
        self.padding_mb = padding_mb

    def build(self):
        return AutoEncoder(self.padding_mb)

    def loss(self, model, batch, generator):  # calls submodules, not forward(), as real families do
        reconstruction = model.decoder(model.encoder(batch)).view(batch.shape)
        mse = ((reconstruction - batch) ** 2).mean()
        return mse, {"mse": mse.detach()}

    def sample(self, model, n, generator):
        z = torch.randn(n, LATENT, generator=generator, device=generator.device)
        return training.tensor_to_images(model.decoder(z).view(n, 1, SIZE, SIZE))

    def save(self, model, out_dir, info):
        tensors = {k: v for k, v in model.state_dict().items() if k != "padding"}
        config = {"id": Path(out_dir).name, "plugin": "test.tinyae", "family": "tinyae"}
        samples = self.sample(model, 4, torch.Generator().manual_seed(0))
        return training.save_trained(out_dir, tensors, config, info, samples)


def prepare(image):
    return media.fit_square(media.to_gray(image), SIZE)


def train(ctx):
    p = ctx.params
    folder = load_image_folder(ctx.inputs["data"], prepare)
    yield Progress(0, p["steps"], message=folder.summary())
    config = training.TrainConfig.from_params(p, seed=ctx.seed)
    result = yield from training.train(
        TinyFamily(p["padding_mb"]), training.images_to_tensor(folder.images), config, Path(p["out"]),
        ctx.device, resume=p["resume"], data_info=folder.info(), params=p,
    )
    return result.to_result()


def load(path, device):
    model = AutoEncoder()
    state = load_tensors(path, "torch")
    model.load_state_dict({**state, "padding": model.padding})
    return model.to(device).eval()


def generate(ctx):
    n = ctx.params["count"]
    z = torch.randn(n, LATENT, generator=ctx.torch_generator())
    with torch.no_grad():
        images = training.tensor_to_images(ctx.model.decoder(z).view(n, 1, SIZE, SIZE))
    yield Progress(1, 1)
    return Result(images=images)
'''

ODD = ("hopper.gif", "l_trns.png", "16bit.cropped.tif", "imagedraw_polygon_1px_high.png", "hopper_orientation_6.jpg")
CORRUPT = ("broken.png", "truncated_image.png")


def write_tiny_plugin(root: Path, name: str) -> str:
    """A plugin package under ``root`` (put ``root`` on sys.path / PYTHONPATH); returns its name."""
    package = "tinyae_" + "".join(c if c.isalnum() else "_" for c in name)
    folder = Path(root) / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "plugin.toml").write_text(PLUGIN_TOML.replace("PACKAGE", package))
    (folder / "actions.py").write_text(PLUGIN_CODE)
    return package


def forget(package: str) -> None:
    for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[module]


def make_image_folder(root: Path, testdata: Path, good: int = 24) -> Path:
    """Bars of varying width (good), Pillow's odd images, two corrupt files and a text file."""
    root = Path(root)
    (root / "bars").mkdir(parents=True)
    for i in range(good):
        image = np.zeros((12, 12, 3), np.uint8)
        image[:, : 1 + i % 11] = 255
        media.save_image(root / "bars" / f"{i:02d}.png", image)
    for name in ODD:
        shutil.copy(testdata / "images-odd" / name, root / name)
    for name in CORRUPT:
        shutil.copy(testdata / "images-bad" / name, root / name)
    (root / "notes.txt").write_text("not an image")
    return root
