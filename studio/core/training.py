"""The one training loop. A family supplies its model, loss, sampling and saving; the loop owns
the rest: batching, AdamW, seeds, device, bf16 autocast, gradient clipping, EMA of weights,
atomic checkpoints, resume, progress and cancel. The GUI, the CLI, the tests and
``accelerate launch -m studio.train`` all drive this same generator.

A family's ``train`` action is a few lines::

    class MyFamily:                                     # satisfies training.Family
        def build(self) -> nn.Module: ...
        def loss(self, model, batch, generator):        # -> (scalar loss, {"kl": tensor, ...})
        def sample(self, model, n, generator):          # -> list of uint8 (H, W, C) images or list of Audio
        def save(self, model, out_dir, info):           # -> Checkpoint (use training.save_trained)

    def train(ctx: ActionContext):
        data = load_image_folder(ctx.inputs["data"], prepare)          # skips bad files
        config = TrainConfig.from_params(ctx.params, seed=ctx.seed)
        result = yield from training.train(MyFamily(...), images_to_tensor(data.images), config,
                                           out_dir, ctx.device, resume=ctx.params["resume"],
                                           data_info=data.info(), params=ctx.params)
        return result.to_result()

Contract details:

- ``data`` is a tensor (N, ...), a tuple of tensors sharing N (e.g. images and labels), or a
  ``torch.utils.data.Dataset``. Tensors move to the device once; ``loss`` receives the batch in
  the same shape (a tensor, or a tuple of tensors), already on the device.
- Batch k holds positions [k*B, (k+1)*B) of an endless stream made of one permutation per
  epoch, each drawn from (seed, epoch); so a resumed run recomputes exactly the same batches.
- ``generator`` (given to ``loss`` and ``sample``) is a ``torch.Generator`` on the training
  device, re-seeded from (seed, step) every step; draw noise with
  ``torch.randn(shape, generator=generator, device=generator.device)``. The global torch RNG
  (dropout) is re-seeded the same way, so no RNG state needs saving.
- ``loss`` metrics may be tensors: the loop averages them over ``log_every`` steps on the
  device and reads them back only when it reports, so it adds no sync per step.
- Every step yields a ``Progress`` (cancel therefore stops within one step: the engine closes
  the generator at a yield and the last checkpoint stays as it is). Steps that end a logging
  window (every ``log_every`` steps, at each checkpoint and at the end) carry ``metrics``
  (means of ``loss``, the family's terms and ``grad_norm`` over the window, and ``lr``); every
  ``sample_every`` steps the Progress carries a preview: an image grid or an ``Audio``.
- Every ``checkpoint_every`` steps the full state (model, EMA, optimizer, step, history, config)
  goes into ONE file, ``out_dir/training_state.safetensors``, with the JSON part in the
  safetensors metadata, written atomically: a kill -9 mid-write leaves the previous one.
  ``resume=True`` continues from it; on the CPU the result is bit-identical to a run that
  was never interrupted. Once the finished model is saved the state file is removed (unless
  ``keep_state``), so a finished run folder is a plain model folder.
- At the end the loop calls ``family.save(model, out_dir, info)`` with the EMA weights when EMA
  is on; ``info`` holds the recipe, data, steps, final losses, device and duration, which
  ``save_trained`` turns into config.json and MODEL_CARD.md.
- Under Accelerate (``studio/train.py`` sets it with ``distributed(accelerator)``, so family
  actions need no change) the family's loss becomes the forward of a small module that
  Accelerate prepares with the optimizer (DDP: ``loss`` still gets the plain model and may call
  any of its methods), every process takes its share (rank::world) of the same global batch,
  and only the main process writes checkpoints, previews and the final model.

Train actions declare these parameters (by these names) in plugin.toml so the training panel
and the CLI can fill them: ``data`` (path, required), ``out`` (str: run folder, default the
user's models folder), ``name``, ``steps``, ``batch_size``, ``lr``, ``ema``, ``resume`` (bool),
``checkpoint_every``, ``sample_every``; any TrainConfig field is picked up by ``from_params``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from studio.core import media
from studio.core.checkpoints import Checkpoint, CheckpointError, atomic_write_bytes, save_checkpoint
from studio.core.plugin import Audio, Progress, Result

if TYPE_CHECKING:  # torch is imported when training starts, not when the GUI imports this module
    import torch
    from torch import Tensor, nn

STATE_FILE = "training_state.safetensors"
_STATE_KEY = "studio_training"
_STATE_VERSION = 1
PRECISIONS = ("auto", "fp32", "bf16")
_accelerator: Any = None  # set by ``distributed`` for the whole process
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0
    ema: float | None = None  # decay, e.g. 0.999; sampling and saving then use the EMA weights
    seed: int = 0
    precision: str = "auto"  # auto = bf16 autocast on CUDA that supports it, else fp32
    warmup: int = 0  # linear learning-rate warm-up steps
    schedule: str = "constant"  # or "cosine" decay to lr/10 after the warm-up
    checkpoint_every: int = 200  # 0: only at the end
    sample_every: int = 200  # 0: no previews while training
    log_every: int = 10
    preview_count: int = 16
    keep_state: bool = False  # keep training_state.safetensors after the model is saved (to train on later)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> TrainConfig:
        """The fields found in an action's parameter values (unknown keys ignored), then overrides."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in names and v is not None}
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data


class Family(Protocol):
    """What a model family gives the loop."""

    def build(self) -> nn.Module: ...

    def loss(self, model: nn.Module, batch: Any, generator: torch.Generator) -> tuple[Tensor, dict[str, Any]]: ...

    def sample(self, model: nn.Module, n: int, generator: torch.Generator) -> list[np.ndarray] | list[Audio]: ...

    def save(self, model: nn.Module, out_dir: Path, info: dict[str, Any]) -> Checkpoint: ...


@dataclass
class TrainResult:
    step: int
    metrics: dict[str, float]
    history: list[tuple[int, dict[str, float]]]
    seconds: float
    device: str
    checkpoint: Checkpoint | None = None  # None on non-main Accelerate processes
    samples: list = field(default_factory=list)

    def to_result(self) -> Result:
        images = [s for s in self.samples if isinstance(s, np.ndarray)]
        audio = [s for s in self.samples if isinstance(s, Audio)]
        path = self.checkpoint.path if self.checkpoint else None
        text = f"trained {self.step} steps in {self.seconds:.0f} s on {self.device}"
        return Result(images=images, audio=audio, metrics=dict(self.metrics), model_dir=path,
                      text=text + (f"; saved to {path}" if path else ""))


@dataclass
class SavedState:
    step: int
    config: dict[str, Any]
    history: list[tuple[int, dict[str, float]]]
    seconds: float
    data_info: dict[str, Any]
    tensors: dict[str, Tensor]
    optimizer_groups: list[dict[str, Any]]
    optimizer_extra: dict[str, Any]


# --------------------------------------------------------------------------------------------
def train(
    family: Family,
    data: Tensor | tuple[Tensor, ...] | torch.utils.data.Dataset,
    config: TrainConfig,
    out_dir: Path,
    device: str = "cpu",
    *,
    resume: bool = False,
    data_info: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    accelerator: Any = None,
) -> Generator[Progress, None, TrainResult]:
    """Train ``family`` on ``data``; yields Progress every step, returns a TrainResult.

    ``data_info`` (folder, count, classes, skipped, command) and ``params`` (the train action's
    parameter values) are recorded in checkpoints and the model card; the training panel reads
    ``params`` back to resume an interrupted run with the same settings."""
    import torch

    accelerator = accelerator if accelerator is not None else _accelerator
    out_dir = Path(out_dir)
    started = time.monotonic()
    main = accelerator is None or accelerator.is_main_process
    rank, world = (0, 1) if accelerator is None else (accelerator.process_index, accelerator.num_processes)
    if accelerator is not None:
        device = str(accelerator.device)
    torch_device = torch.device(device)
    source = _BatchSource(data, config.seed, config.batch_size, torch_device, rank, world)

    torch.manual_seed(config.seed)
    model = family.build().to(torch_device)
    ema_model = _make_ema(model) if config.ema else None
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
        **({"fused": True} if torch_device.type == "cuda" else {}),
    )
    step, history, seconds_before = 0, [], 0.0
    state = load_state(out_dir) if resume else None
    if resume and state is None:
        raise CheckpointError(f"{out_dir}: there is no training checkpoint to resume from")
    if state is not None:
        _restore(state, model, ema_model, optimizer)
        step, history, seconds_before = state.step, state.history, state.seconds
    if accelerator is None:
        trained = model
    else:  # DDP syncs gradients only through forward(): the family's loss becomes the forward
        trained, optimizer = accelerator.prepare(_loss_module(family, model), optimizer)
    autocast = _autocast(config.precision, torch_device, accelerator)
    generator = torch.Generator(device=torch_device)
    meter = _Meter()

    def elapsed() -> float:
        return seconds_before + time.monotonic() - started

    def checkpoint() -> None:
        if main:
            save_state(out_dir, step, config, history, elapsed(), data_info or {}, model, ema_model, optimizer,
                       params)
        if accelerator is not None:
            accelerator.wait_for_everyone()

    message = f"resumed at step {step}" if state is not None else f"training on {device}"
    yield Progress(step, config.steps, message=message)
    trained.train()
    while step < config.steps:
        _set_lr(optimizer, config, step)
        _reseed(generator, config.seed, step, rank)
        batch = source.batch(step)
        if accelerator is None:
            with autocast:
                loss, terms = family.loss(model, batch, generator)
            loss.backward()
        else:
            loss, terms = trained(batch, generator)
            accelerator.backward(loss)
        grad_norm = _clip(trained, optimizer, config.grad_clip, accelerator)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema_model is not None:
            _update_ema(ema_model, model, config.ema, step)
        step += 1
        meter.add(loss=loss, **terms, **({"grad_norm": grad_norm} if grad_norm is not None else {}))

        metrics, preview, message = {}, None, ""
        saving = bool(config.checkpoint_every) and step % config.checkpoint_every == 0 and step < config.steps
        if step % config.log_every == 0 or step == config.steps or saving:  # a checkpoint closes the window
            metrics = meter.read(accelerator)
            metrics["lr"] = optimizer.param_groups[0]["lr"]
            history.append((step, metrics))
        if saving:
            checkpoint()
            message = f"checkpoint at step {step}"
        if main and config.sample_every and step % config.sample_every == 0 and step < config.steps:
            preview = as_preview(_sample(family, ema_model or model, config))
        yield Progress(step, config.steps, preview=preview, message=message, metrics=metrics)

    checkpoint()
    final = history[-1][1] if history else {}
    if not main:
        return TrainResult(step, final, history, elapsed(), device)
    samples = _sample(family, ema_model or model, config)
    yield Progress(step, config.steps, preview=as_preview(samples), message="saving the model")
    info = {
        "recipe": config.to_dict(), "params": params or {}, "data": data_info or {}, "steps": step, "metrics": final,
        "device": device, "processes": world, "seconds": round(elapsed(), 1),
    }
    ckpt = family.save(ema_model or model, out_dir, info)
    if not config.keep_state:
        (out_dir / STATE_FILE).unlink(missing_ok=True)
    return TrainResult(step, final, history, elapsed(), device, ckpt, samples)


def _loss_module(family: Family, model: nn.Module) -> nn.Module:
    """A module whose forward is ``family.loss(model, ...)``, for Accelerate to wrap in DDP; the
    family's loss still gets the plain model, so it may call any of its methods."""
    from torch import nn

    class FamilyLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch: Any, generator: torch.Generator):
            return family.loss(self.model, batch, generator)

    return FamilyLoss()


@contextlib.contextmanager
def distributed(accelerator: Any):
    """Every ``train`` inside this block runs under ``accelerator`` (an accelerate.Accelerator)."""
    global _accelerator
    previous, _accelerator = _accelerator, accelerator
    try:
        yield accelerator
    finally:
        _accelerator = previous


# batching -----------------------------------------------------------------------------------
class _BatchSource:
    """Batch k = positions [k*B, (k+1)*B) of the per-epoch permutation stream; this rank's share."""

    def __init__(self, data, seed: int, batch_size: int, device: torch.device, rank: int, world: int) -> None:
        from torch import Tensor

        if isinstance(data, Tensor):
            self.tensors: tuple[Tensor, ...] | None = (data.to(device),)
            self.single = True
        elif isinstance(data, (tuple, list)) and all(isinstance(t, Tensor) for t in data):
            self.tensors = tuple(t.to(device) for t in data)
            self.single = False
            if len({len(t) for t in self.tensors}) != 1:
                raise ValueError("all data tensors must have the same length")
        else:
            self.tensors, self.dataset = None, data
        self.size = len(self.tensors[0]) if self.tensors is not None else len(data)
        if self.size == 0:
            raise ValueError("no training examples")
        if batch_size < world:
            raise ValueError(f"batch size {batch_size} is smaller than the {world} processes")
        self.seed, self.batch_size, self.device, self.rank, self.world = seed, batch_size, device, rank, world
        self._perms: dict[int, Tensor] = {}

    def _perm(self, epoch: int) -> Tensor:
        import torch

        if epoch not in self._perms:
            generator = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5EED))
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = torch.randperm(self.size, generator=generator)
        return self._perms[epoch]

    def indices(self, step: int) -> Tensor:
        import torch

        start, remaining, parts = step * self.batch_size, self.batch_size, []
        while remaining:
            epoch, offset = divmod(start, self.size)
            take = min(remaining, self.size - offset)
            parts.append(self._perm(epoch)[offset : offset + take])
            start, remaining = start + take, remaining - take
        chosen = parts[0] if len(parts) == 1 else torch.cat(parts)
        return chosen[self.rank :: self.world]

    def batch(self, step: int) -> Any:
        index = self.indices(step)
        if self.tensors is None:
            import torch

            items = torch.utils.data.default_collate([self.dataset[int(i)] for i in index])
            return _to_device(items, self.device)
        index = index.to(self.device)
        parts = tuple(t[index] for t in self.tensors)
        return parts[0] if self.single else parts


def _to_device(value: Any, device: torch.device) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _mix(*values: int) -> int:
    """A 63-bit seed from a few integers (SplitMix64 steps), stable across runs and machines."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return state >> 1


def _reseed(generator: torch.Generator, seed: int, step: int, rank: int) -> None:
    """The loss's generator and the global RNG of the device (dropout) from (seed, step, rank).
    (Not torch.manual_seed: it formats a stack trace per backend on every call, ~1 ms.)"""
    import torch

    step_seed = _mix(seed, step, rank)
    generator.manual_seed(step_seed)
    torch.random.default_generator.manual_seed(step_seed)
    if generator.device.type == "cuda":
        index = generator.device.index
        torch.cuda.default_generators[torch.cuda.current_device() if index is None else index].manual_seed(step_seed)
    elif generator.device.type == "mps":
        torch.mps.manual_seed(step_seed)


# optimisation -------------------------------------------------------------------------------
def _set_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    lr = config.lr
    if config.warmup and step < config.warmup:
        lr = config.lr * (step + 1) / config.warmup
    elif config.schedule == "cosine":
        span = max(config.steps - config.warmup, 1)
        progress = min((step - config.warmup) / span, 1.0)
        lr = config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))
    for group in optimizer.param_groups:
        group["lr"] = lr


def _clip(model: nn.Module, optimizer, max_norm: float | None, accelerator: Any) -> Tensor | None:
    if not max_norm:
        return None
    if accelerator is not None:
        return accelerator.clip_grad_norm_(model.parameters(), max_norm)
    import torch

    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def _autocast(precision: str, device: torch.device, accelerator: Any):
    import torch

    if accelerator is not None:  # Accelerate applies its own --mixed_precision inside prepare()
        return contextlib.nullcontext()
    auto_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if not (auto_bf16 if precision == "auto" else precision == "bf16"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    ema.eval()
    return ema


def _update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    import torch

    decay = min(decay, (1 + step) / (10 + step))  # a short warm-up, as in diffusers' EMAModel
    with torch.no_grad():
        ema_params = [p for p in ema.parameters() if p.dtype.is_floating_point]
        params = [p.detach() for p in model.parameters() if p.dtype.is_floating_point]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)


class _Meter:
    """Sums of metrics over a logging window, kept on the device until read."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor | float] = {}
        self.count = 0

    def add(self, **values: Any) -> None:
        for name, value in values.items():
            value = value.detach().float() if hasattr(value, "detach") else float(value)
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def read(self, accelerator: Any = None) -> dict[str, float]:
        import torch

        names = list(self.sums)
        if not names:
            return {}
        values = torch.stack([torch.as_tensor(self.sums[n], dtype=torch.float32).reshape(()).cpu() for n in names])
        if accelerator is not None:
            values = accelerator.reduce(values.to(accelerator.device), reduction="mean").cpu()
        means = (values / max(self.count, 1)).tolist()
        self.sums, self.count = {}, 0
        return {name: round(float(v), 6) for name, v in zip(names, means)}


def _sample(family: Family, model: nn.Module, config: TrainConfig) -> list:
    import torch

    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    generator = torch.Generator(device=device).manual_seed(_mix(config.seed, 0x5A3))
    try:
        with torch.no_grad():
            return list(family.sample(model, config.preview_count, generator))
    finally:
        model.train(was_training)


def as_preview(samples: Iterable) -> np.ndarray | Audio | None:
    """An image grid for images, one Audio (clips joined by short silences) for audio."""
    samples = list(samples)
    if not samples:
        return None
    if isinstance(samples[0], Audio):
        rate = samples[0].rate
        gap = np.zeros((rate // 10, 1), np.float32)
        parts = []
        for clip in samples:
            parts += [media.to_mono(clip.samples).astype(np.float32), gap]
        return Audio(np.concatenate(parts[:-1]), rate)
    return media.grid([np.asarray(s) for s in samples])


# checkpoints --------------------------------------------------------------------------------
def save_state(
    out_dir: Path, step: int, config: TrainConfig, history: list, seconds: float, data_info: dict,
    model: nn.Module, ema: nn.Module | None, optimizer: torch.optim.Optimizer, params: dict | None = None,
) -> Path:
    """Write the whole training state to ONE safetensors file, atomically."""
    from safetensors.torch import save
    from torch import Tensor

    tensors: dict[str, Tensor] = {}
    for name, value in model.state_dict().items():
        tensors[f"model.{name}"] = value
    if ema is not None:
        for name, value in ema.state_dict().items():
            tensors[f"ema.{name}"] = value
    optim = optimizer.state_dict()
    extra: dict[str, Any] = {}
    for index, slots in optim["state"].items():
        for key, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                extra[f"{index}.{key}"] = value
    meta = {
        "version": _STATE_VERSION, "step": step, "config": config.to_dict(), "history": history,
        "seconds": seconds, "data": data_info, "optimizer_groups": optim["param_groups"],
        "optimizer_extra": extra, "params": params or {},
    }
    blob = save(
        {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()},
        metadata={_STATE_KEY: json.dumps(meta, default=_json_default)},
    )
    path = Path(out_dir) / STATE_FILE
    atomic_write_bytes(path, blob)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a training checkpoint")


def state_info(out_dir: Path) -> dict[str, Any] | None:
    """The JSON part of a run folder's training state (step, config, history...), or None."""
    from safetensors import safe_open

    path = Path(out_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return json.loads((fh.metadata() or {})[_STATE_KEY])
    except Exception as exc:  # safetensors raises its own types for damaged files
        raise CheckpointError(f"{path}: not a readable training checkpoint ({exc})") from None


def load_state(out_dir: Path) -> SavedState | None:
    from safetensors.torch import load_file

    meta = state_info(out_dir)
    if meta is None:
        return None
    if meta.get("version") != _STATE_VERSION:
        raise CheckpointError(f"{out_dir}: training checkpoint version {meta.get('version')} is not supported")
    path = Path(out_dir) / STATE_FILE
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable training checkpoint ({exc})") from None
    return SavedState(
        step=int(meta["step"]), config=meta["config"], history=[(int(s), m) for s, m in meta["history"]],
        seconds=float(meta["seconds"]), data_info=meta.get("data", {}), tensors=tensors,
        optimizer_groups=meta["optimizer_groups"], optimizer_extra=meta.get("optimizer_extra", {}),
    )


def _restore(state: SavedState, model: nn.Module, ema: nn.Module | None, optimizer) -> None:
    def part(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix):]: v for k, v in state.tensors.items() if k.startswith(prefix)}

    try:
        model.load_state_dict(part("model."))
        if ema is not None:
            ema_state = part("ema.")
            ema.load_state_dict(ema_state if ema_state else model.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(f"the training checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
    slots: dict[int, dict[str, Any]] = {}
    for key, value in part("optim.").items():
        index, _, name = key.partition(".")
        slots.setdefault(int(index), {})[name] = value
    for key, value in state.optimizer_extra.items():
        index, _, name = key.partition(".")
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": state.optimizer_groups})  # moves slots to the device


# helpers for families -------------------------------------------------------------------------
def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(x: Tensor) -> list[np.ndarray]:
    """float (N, C, H, W) in [-1, 1] -> list of uint8 (H, W, C)."""
    import torch

    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return list(x.permute(0, 2, 3, 1).cpu().numpy())


def save_trained(
    out_dir: Path,
    tensors: dict[str, Tensor],
    config: dict[str, Any],
    info: dict[str, Any],
    samples: list | None = None,
    description: str = "",
) -> Checkpoint:
    """Write a trained model the studio can load: weights, config.json (with ``training`` =
    ``info``), samples.png or samples.wav, and an auto-written MODEL_CARD.md with the sha256."""
    out_dir = Path(out_dir)
    config = {**config, "training": info, "metrics": info.get("metrics", {})}
    extra: dict[str, bytes] = {}
    preview = as_preview(samples or [])
    if isinstance(preview, np.ndarray):
        extra["samples.png"] = media.encode_png(preview)
    ckpt = save_checkpoint(out_dir, tensors, config, card=None, extra_files=extra)
    if isinstance(preview, Audio):
        media.save_audio(out_dir / "samples.wav", preview)
    samples_file = "samples.png" if isinstance(preview, np.ndarray) else "samples.wav" if preview is not None else None
    card = model_card(ckpt.config, description, samples_file)
    atomic_write_bytes(out_dir / "MODEL_CARD.md", card.encode("utf-8"))
    return ckpt


def model_card(config: dict[str, Any], description: str = "", samples_file: str | None = None) -> str:
    name = config.get("name", config.get("id", "model"))
    info = config.get("training", {})
    data = info.get("data", {})
    recipe = info.get("recipe", {})
    lines = [f"# {name}", ""]
    if description:
        lines += [description, ""]
    lines += [
        "| | |", "|---|---|",
        f"| family | {config.get('family', '')} (`{config.get('plugin', '')}`) |",
        f"| data | `{data.get('folder', '')}` ({data.get('count', '?')} examples, {len(data.get('skipped', []))} skipped) |",
        f"| steps | {info.get('steps', '?')} (batch {recipe.get('batch_size', '?')}, lr {recipe.get('lr', '?')}, "
        f"EMA {recipe.get('ema') or 'off'}, seed {recipe.get('seed', '?')}) |",
        f"| final metrics | {', '.join(f'{k} {v:.4g}' for k, v in info.get('metrics', {}).items()) or '-'} |",
        f"| device | {info.get('device', '?')} x {info.get('processes', 1)}, {info.get('seconds', '?')} s |",
        f"| weights sha256 | `{config.get('sha256', '')}` |",
    ]
    if recipe:
        lines += ["", "Recipe (`TrainConfig`):", "", "```json", json.dumps(recipe, indent=2, sort_keys=True), "```"]
    if data.get("command"):
        lines += ["", "Command:", "", "```", data["command"], "```"]
    if samples_file:
        lines += ["", f"![samples]({samples_file})" if samples_file.endswith(".png") else f"Samples: [{samples_file}]({samples_file})"]
    skipped = data.get("skipped", [])
    if skipped:
        lines += ["", "Skipped files:", *[f"- `{p}`: {why}" for p, why in skipped[:50]]]
    return "\n".join(lines) + "\n"
