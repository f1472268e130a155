"""Pixel-space denoising diffusion (Ho et al., 2020) on a diffusers ``UNet2DModel``.

A clean image ``x0`` is noised as ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` with a cosine schedule
``abar`` over 1000 steps. The network predicts ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0`` (Salimans &
Ho, 2022), which stays well conditioned at the highest noise levels where an eps-predicting pixel model's
x0 estimate (divided by sqrt(abar_t) ~ 5e-5) is useless; ``predict_noise`` turns it into eps for the
diffusers schedulers, so every sampler sees a plain eps model.
Images live as float tensors (N, C, H, W) in [-1, 1]. Every sampling loop here is a generator
that yields ``(step, total, x0_prediction)`` once per network call and returns the final image,
so callers can stream previews and stop within one step.

A checkpoint is a diffusers pipeline folder (``model_index.json``, ``unet/``, ``scheduler/``) with
the studio's own ``config.json`` beside it, so ``DDPMPipeline.from_pretrained(folder, local_files_only=True)``
and ``UNet2DModel.from_pretrained(folder, subfolder="unet", local_files_only=True)`` load it as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # before diffusers reads its settings: never touch the network

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    RePaintScheduler,
    UNet2DModel,
    UniPCMultistepScheduler,
)

SAMPLERS = ("ddpm", "ddim", "dpm++", "unipc")
# The fastest setting that keeps the quality of the deterministic samplers: UniPC with 10 steps scores as well
# as DPM-Solver++ or UniPC with 20 at half the cost; 5 steps lose quality (bench/diffusion.py, bench/RESULTS.md).
DEFAULT_SAMPLER = "unipc"
DEFAULT_STEPS = 10
UNET_FOLDER = "unet"
SCHEDULER_FOLDER = "scheduler"
UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"

Steps = Generator[tuple[int, int, torch.Tensor], None, torch.Tensor]


@dataclass
class DiffusionConfig:
    size: int = 32  # images are size x size
    channels: int = 3
    block_out_channels: tuple[int, ...] = (16, 32, 64)  # one UNet level per entry, halving resolution
    layers_per_block: int = 1
    attention: bool = True  # self-attention at the lowest resolution
    num_classes: int = 0  # 0: unconditional; else labels 0..num_classes-1 plus "any class" = num_classes
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction: str = "v_prediction"  # what the network outputs: "v_prediction" or "epsilon"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)

    @property
    def latent_dim(self) -> int:
        return self.channels * self.size * self.size

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["block_out_channels"] = list(self.block_out_channels)
        return out

    def build_unet(self) -> UNet2DModel:
        levels = len(self.block_out_channels)
        down = ["DownBlock2D"] * levels
        if self.attention:
            down[-1] = "AttnDownBlock2D"
        up = [name.replace("Down", "Up") for name in reversed(down)]
        return UNet2DModel(
            sample_size=self.size,
            in_channels=self.channels,
            out_channels=self.channels,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            norm_num_groups=math.gcd(8, *self.block_out_channels),
            attention_head_dim=min(32, self.block_out_channels[-1]),
            num_class_embeds=self.num_classes + 1 if self.num_classes else None,
        )


def make_scheduler(sampler: str, config: DiffusionConfig, clip: bool = True):
    """A fresh diffusers scheduler for one sampling run. ``clip`` keeps each x0 prediction in [-1, 1]
    (better samples); DDIM inversion needs it off so that decoding exactly retraces encoding."""
    common = {"num_train_timesteps": config.train_timesteps, "beta_schedule": config.beta_schedule,
              "timestep_spacing": "trailing"}
    if sampler == "ddpm":
        return DDPMScheduler(**common, clip_sample=clip)
    if sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=clip, set_alpha_to_one=True)
    if sampler == "dpm++":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           thresholding=clip, sample_max_value=1.0)
    if sampler == "unipc":
        return UniPCMultistepScheduler(**common, predict_x0=True, thresholding=clip, sample_max_value=1.0)
    raise ValueError(f"unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal noise drawn where the generator lives (a CPU seed means the same on every device)."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def denoising_loss(unet: UNet2DModel, x0: torch.Tensor, alphas_cumprod: torch.Tensor,
                   labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
                   prediction: str = "v_prediction") -> torch.Tensor:
    """The simple DDPM objective (Ho et al., eq. 14): mean squared error of the predicted v (or eps)."""
    n, steps = x0.shape[0], len(alphas_cumprod)
    t = torch.randint(0, steps, (n,), generator=generator, device=generator.device if generator else x0.device)
    t = t.to(x0.device)
    eps = randn(tuple(x0.shape), generator, x0.device)
    abar = alphas_cumprod.to(x0.device)[t].view(n, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    target = eps if prediction == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * x0
    return torch.nn.functional.mse_loss(unet(x_t, t, class_labels=labels).sample.float(), target)


def drive(steps: Steps) -> torch.Tensor:
    """Run a sampling generator to its end and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


class DiffusionModel:
    def __init__(self, config: DiffusionConfig, unet: UNet2DModel, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.unet = unet.to(self.device).eval()
        self.alphas_cumprod = make_scheduler("ddpm", config).alphas_cumprod  # (T,)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.config.channels, self.config.size, self.config.size

    # the network ---------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal (n, C, H, W)."""
        return randn((n, *self.shape), generator, self.device)

    def labels(self, n: int, label: int | None) -> torch.Tensor | None:
        """(n,) class labels; None or a negative label means "any class" for a conditional model."""
        if not self.config.num_classes:
            return None
        if label is not None and not 0 <= label < self.config.num_classes:
            raise ValueError(f"label must be below {self.config.num_classes} for this model, not {label}")
        value = self.config.num_classes if label is None or label < 0 else label
        return torch.full((n,), value, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def predict_noise(self, x: torch.Tensor, t: torch.Tensor | int, labels: torch.Tensor | None = None,
                      guidance: float = 1.0) -> torch.Tensor:
        """eps(x_t, t) (N, C, H, W); classifier-free guidance when a class is given and guidance != 1."""
        t = torch.as_tensor(t, device=self.device).reshape(-1).expand(x.shape[0])
        if labels is None:
            labels = self.labels(x.shape[0], None)
        null = self.config.num_classes
        guided = labels is not None and guidance != 1.0 and bool((labels != null).any())
        if not guided:
            out = self.unet(x, t, class_labels=labels).sample
        else:
            both = self.unet(torch.cat([x, x]), torch.cat([t, t]),
                             class_labels=torch.cat([labels, torch.full_like(labels, null)])).sample
            conditional, unconditional = both.chunk(2)
            out = unconditional + guidance * (conditional - unconditional)
        if self.config.prediction == "epsilon":
            return out
        abar = self.alphas_cumprod.to(x.device)[t.long()].view(-1, 1, 1, 1)
        return (1 - abar).sqrt() * x + abar.sqrt() * out  # eps from v

    def predict_x0(self, x: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod[int(t)].to(x.device)
        return ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)

    # sampling ------------------------------------------------------------------------------
    def sample_steps(self, x: torch.Tensor, sampler: str = DEFAULT_SAMPLER, steps: int = DEFAULT_STEPS,
                     labels: torch.Tensor | None = None, guidance: float = 1.0,
                     generator: torch.Generator | None = None, strength: float = 1.0, eta: float = 0.0,
                     clip: bool = True) -> Steps:
        """Denoise ``x`` (N, C, H, W) with one of SAMPLERS. With ``strength`` < 1 (SDEdit), ``x`` is a
        clean image that is first noised to the level where the last ``strength`` of the steps begin."""
        scheduler = make_scheduler(sampler, self.config, clip)
        scheduler.set_timesteps(steps)
        timesteps = scheduler.timesteps
        if strength < 1.0:
            kept = min(max(round(steps * strength), 1), steps)
            begin = (steps - kept) * scheduler.order
            timesteps = timesteps[begin:]
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(begin)
            noise = randn(tuple(x.shape), generator, self.device)
            x = scheduler.add_noise(x, noise, timesteps[:1].repeat(x.shape[0]))
        extra = {"eta": eta} if sampler == "ddim" else {}
        if sampler in ("ddpm", "ddim"):
            extra["generator"] = generator
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            eps = self.predict_noise(x, t, labels, guidance)
            preview = self.predict_x0(x, t, eps)
            x = scheduler.step(eps, t, x, **extra).prev_sample
            yield i + 1, total, preview
        return x.clamp(-1, 1) if clip else x

    def sample(self, n: int, generator: torch.Generator | None = None, sampler: str = DEFAULT_SAMPLER,
               steps: int = DEFAULT_STEPS, label: int | None = None, guidance: float = 1.0) -> torch.Tensor:
        """n new images (n, C, H, W) in [-1, 1]."""
        return drive(self.sample_steps(self.noise(n, generator), sampler, steps, self.labels(n, label),
                                       guidance, generator))

    def decode(self, z: torch.Tensor, steps: int = DEFAULT_STEPS, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noise latents (N, C, H, W) -> images by deterministic DDIM (eta 0): the inverse of ``encode``."""
        return drive(self.sample_steps(z.to(self.device), "ddim", steps, labels, clip=False)).clamp(-1, 1)

    def encode_steps(self, x0: torch.Tensor, steps: int = DEFAULT_STEPS, labels: torch.Tensor | None = None) -> Steps:
        """DDIM inversion: run the eta-0 DDIM update backwards from a clean image to its noise latent,
        through the very timesteps ``decode`` walks down."""
        scheduler = make_scheduler("ddim", self.config)
        scheduler.set_timesteps(steps)
        ascending = scheduler.timesteps.flip(0).tolist()
        x = x0.to(self.device)
        abar_from = scheduler.final_alpha_cumprod
        for i, t in enumerate(ascending):
            eps = self.predict_noise(x, t, labels)
            clean = (x - (1 - abar_from).sqrt() * eps) / abar_from.sqrt()
            abar_to = scheduler.alphas_cumprod[t]
            x = abar_to.sqrt() * clean + (1 - abar_to).sqrt() * eps
            abar_from = abar_to
            yield i + 1, len(ascending), clean.clamp(-1, 1)
        return x

    def encode(self, x0: torch.Tensor, steps: int = DEFAULT_STEPS, labels: torch.Tensor | None = None) -> torch.Tensor:
        return drive(self.encode_steps(x0, steps, labels))

    def inpaint_steps(self, x0: torch.Tensor, keep: torch.Tensor, steps: int = 50, jump_length: int = 5,
                      resamples: int = 5, labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> Steps:
        """RePaint (Lugmayr et al., 2022): at every step the known region (``keep`` = 1, shape (N, 1, H, W))
        is the input noised to that step; every ``jump_length`` steps the chain jumps back up in noise and
        repeats ``resamples`` times so the generated region harmonises with the known one."""
        scheduler = RePaintScheduler(num_train_timesteps=self.config.train_timesteps,
                                     beta_schedule=self.config.beta_schedule, eta=1.0, clip_sample=True)
        steps = min(steps, self.config.train_timesteps)
        scheduler.set_timesteps(steps, jump_length=min(jump_length, max(steps - 1, 1)), jump_n_sample=resamples)
        timesteps = scheduler.timesteps.tolist()
        keep = keep.to(self.device)
        x = self.noise(x0.shape[0], generator)
        x0 = x0.to(self.device)
        t_last = timesteps[0] + 1
        for i, t in enumerate(timesteps):
            if t < t_last:
                eps = self.predict_noise(x, t, labels)
                preview = keep * x0 + (1 - keep) * self.predict_x0(x, t, eps)
                x = scheduler.step(eps, t, x, x0, keep, generator).prev_sample
                yield i + 1, len(timesteps), preview
            else:
                x = scheduler.undo_step(x, t_last, generator)
            t_last = t
        return keep * x0 + (1 - keep) * x.clamp(-1, 1)

    # pixels <-> tensors ----------------------------------------------------------------------
    def to_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """uint8 images of any size and mode -> (N, C, size, size) in [-1, 1]."""
        batch = np.stack([prepare(im, self.config) for im in images]).astype(np.float32)
        return torch.from_numpy(batch).permute(0, 3, 1, 2).div(127.5).sub(1.0).to(self.device)

    def to_images(self, x: torch.Tensor) -> list[np.ndarray]:
        pixels = ((x.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
        return list(pixels.cpu().numpy())

    def mask_tensor(self, mask: np.ndarray) -> torch.Tensor:
        """A painted mask (white = repaint) -> (1, 1, size, size) with 1 where the input is kept."""
        from studio.core import media

        gray = media.fit_square(media.to_gray(mask, background=0), self.config.size)
        repaint = torch.from_numpy(gray[..., 0] >= 128).float()
        return (1.0 - repaint)[None, None].to(self.device)

    # the latent-explorer protocol (studio.core.latent.LatentModel) -----------------------------
    def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
        z = self.encode(self.to_tensor(images), labels=self.labels(len(images), None))
        return z.reshape(len(images), -1).cpu().numpy().astype(np.float32)

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]:
        z = torch.from_numpy(np.asarray(latents, dtype=np.float32)).reshape(-1, *self.shape)
        return self.to_images(self.decode(z, labels=self.labels(len(z), None)))


def prepare(image: np.ndarray, config: DiffusionConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


# checkpoints -------------------------------------------------------------------------------------
def save(model: DiffusionModel, path: Path, config: dict[str, Any], card: str | None = None,
         extra_files: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Write the diffusers folder layout atomically, the studio's config.json last (with the weights'
    sha256), and return that config."""
    import diffusers
    from safetensors.torch import save as save_tensors

    from studio.core.checkpoints import CARD, CONFIG, atomic_write_bytes

    path = Path(path)
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.unet.state_dict().items()}
    weights = save_tensors(state, metadata={"format": "pt"})
    scheduler = DDPMScheduler.from_config(make_scheduler("ddpm", model.config).config,
                                          prediction_type=model.config.prediction)
    index = {"_class_name": "DDPMPipeline", "_diffusers_version": diffusers.__version__,
             "scheduler": ["diffusers", type(scheduler).__name__], "unet": ["diffusers", "UNet2DModel"]}
    files = {
        f"{UNET_FOLDER}/{UNET_WEIGHTS}": weights,
        f"{UNET_FOLDER}/config.json": model.unet.to_json_string().encode(),
        f"{SCHEDULER_FOLDER}/scheduler_config.json": scheduler.to_json_string().encode(),
        "model_index.json": (json.dumps(index, indent=2) + "\n").encode(),
        **(extra_files or {}),
    }
    if card is not None:
        files[CARD] = card.encode("utf-8")
    for name, blob in files.items():
        atomic_write_bytes(path / name, blob)
    config = {**config, "kind": "unet", "model": model.config.to_dict(), "sha256": hashlib.sha256(weights).hexdigest()}
    atomic_write_bytes(path / CONFIG, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return config


def load(path: Path, device: str = "cpu") -> Any:
    """Loader named in plugin.toml: a trained UNet checkpoint or an imported pipeline."""
    from studio.core.checkpoints import CheckpointError, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    if ckpt.config.get("kind") == "pipeline":
        from plugins.diffusion.pipeline import load_pipeline

        return load_pipeline(ckpt, device)
    weights = ckpt.path / UNET_FOLDER / UNET_WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{ckpt.path}: the weights file {UNET_FOLDER}/{UNET_WEIGHTS} is missing")
    try:
        unet = UNet2DModel.from_pretrained(ckpt.path, subfolder=UNET_FOLDER, local_files_only=True,
                                           use_safetensors=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{ckpt.path}: the UNet cannot be loaded ({str(exc).splitlines()[0]})") from None
    return DiffusionModel(DiffusionConfig.from_dict(ckpt.config["model"]), unet, device)
