"""Bring your own pipeline: any local diffusers pipeline folder, loaded offline from safetensors.

Importing a folder writes a small checkpoint folder (config.json with ``kind = "pipeline"`` and the
folder's absolute path, plus a model card) into the user's models, so the registry lists it like
any other model; nothing is copied. The loader returns an ``ImportedPipeline`` whose methods are the
actions for such models: text to image, image to image and, where the pipeline supports it,
inpainting. A diffusers pipeline call blocks, so it runs in a worker thread whose step callback
streams progress back to the action generator; closing the generator stops it at the next step.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import latent, media
from studio.core.checkpoints import CARD, CONFIG, Checkpoint, CheckpointError, atomic_write_bytes, open_checkpoint
from studio.core.params import ParamError
from studio.core.plugin import ActionContext, Progress, Result

os.environ["HF_HUB_OFFLINE"] = "1"  # before diffusers or transformers read their settings

PLUGIN_ID = "studio.diffusion"
TASKS = ("text_to_image", "image_to_image", "inpaint")
# Linear map from Stable Diffusion's 4 latent channels to RGB: a free preview without the VAE.
SD_LATENT_RGB = np.array([[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264],
                          [-0.184, -0.271, -0.473]], dtype=np.float32)


class _Stopped(Exception):
    """Raised inside the pipeline's step callback to abandon a cancelled run."""


def _auto_classes() -> dict[str, Any]:
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    return {"text_to_image": AutoPipelineForText2Image, "image_to_image": AutoPipelineForImage2Image,
            "inpaint": AutoPipelineForInpainting}


def _schedulers() -> dict[str, tuple[Any, dict[str, Any]]]:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

    return {"ddpm": (DDPMScheduler, {}), "ddim": (DDIMScheduler, {}),
            "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
            "unipc": (UniPCMultistepScheduler, {})}


def open_pipeline(folder: Path, device: str = "cpu"):
    """``DiffusionPipeline.from_pretrained`` offline, safetensors only; errors become one sentence."""
    import torch
    from diffusers import DiffusionPipeline

    folder = Path(folder).expanduser()
    if not (folder / "model_index.json").exists():
        raise CheckpointError(f"{folder}: not a diffusers pipeline folder (it has no model_index.json)")
    dtype = torch.float16 if device == "cuda" else torch.float32
    try:
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                 torch_dtype=dtype)
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safetensors" in reason.lower():
            reason = "it has no .safetensors weights (Studio never loads pickled .bin/.ckpt files)"
        raise CheckpointError(f"{folder}: the pipeline cannot be loaded offline: {reason}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def supported_tasks(pipe) -> list[str]:
    tasks = []
    for task, auto in _auto_classes().items():
        try:
            auto.from_pipe(pipe)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        tasks.append(task)
    return tasks


def _fingerprint(folder: Path) -> Iterator[Progress]:
    """sha256 over every weight and config file (relative path + contents); yields per file."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json", ".txt"))
    digest = hashlib.sha256()
    for i, path in enumerate(files):
        digest.update(path.relative_to(folder).as_posix().encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        yield Progress(1, 3, message=f"fingerprinting file {i + 1} of {len(files)}")
    return digest.hexdigest()


def import_folder(folder: Path, out: Path, name: str) -> Iterator[Progress]:
    """Check that ``folder`` loads offline, then write the checkpoint entry that points at it."""
    folder = Path(folder).expanduser().resolve()
    yield Progress(0, 3, message=f"loading {folder.name} to check it")
    try:
        pipe = open_pipeline(folder)
    except CheckpointError as exc:
        raise ParamError(str(exc)) from None
    tasks = supported_tasks(pipe)
    if not tasks:
        raise ParamError(f"{folder}: {type(pipe).__name__} makes no images from text or images; "
                              "Studio can use text-to-image, image-to-image and inpainting pipelines")
    sha256 = yield from _fingerprint(folder)
    height, width = _native_size(pipe)
    config = {
        "id": name, "name": name, "plugin": PLUGIN_ID, "family": "diffusion", "kind": "pipeline",
        "pipeline": str(folder), "pipeline_class": type(pipe).__name__, "tasks": tasks,
        "size": [height, width], "sha256": sha256,
    }
    card = (f"# {name}\n\nA diffusers `{type(pipe).__name__}` imported from `{folder}` (not copied; keep the "
            f"folder where it is). Loaded offline from safetensors.\n\n| | |\n|---|---|\n"
            f"| can do | {', '.join(t.replace('_', ' ') for t in tasks)} |\n| native size | {width}x{height} |\n"
            f"| sha256 of its weights and configs | `{sha256}` |\n")
    atomic_write_bytes(out / CARD, card.encode("utf-8"))
    atomic_write_bytes(out / CONFIG, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    yield Progress(3, 3, message="imported")
    return open_checkpoint(out, "user")


def _native_size(pipe) -> tuple[int, int]:
    unet = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    sample = getattr(getattr(unet, "config", None), "sample_size", 64) or 64
    scale = getattr(pipe, "vae_scale_factor", 8)
    side = sample if isinstance(sample, int) else sample[0]
    return side * scale, side * scale


def load_pipeline(ckpt: Checkpoint, device: str = "cpu") -> ImportedPipeline:
    folder = Path(ckpt.config.get("pipeline", ""))
    if not folder.is_dir():
        raise CheckpointError(f"{ckpt.id}: the imported folder {folder} is gone; import it again")
    return ImportedPipeline(open_pipeline(folder, device), ckpt.config, device)


class ImportedPipeline:
    def __init__(self, pipe, config: dict[str, Any], device: str) -> None:
        self.pipe = pipe
        self.config = config
        self.device = device
        self.tasks = list(config.get("tasks", TASKS))
        self._variants: dict[str, Any] = {}
        self._scheduler_config = dict(pipe.scheduler.config)

    def variant(self, task: str):
        """The pipeline for ``task``, sharing this one's components (``from_pipe`` copies no weights)."""
        if task not in self.tasks:
            can = ", ".join(t.replace("_", " ") for t in self.tasks)
            raise ParamError(f"{self.config.get('name', 'this pipeline')} cannot do {task.replace('_', ' ')} (it can: {can})")
        if task not in self._variants:
            self._variants[task] = _auto_classes()[task].from_pipe(self.pipe)
            self._variants[task].set_progress_bar_config(disable=True)
        return self._variants[task]

    def _use_sampler(self, pipe, sampler: str) -> None:
        cls, extra = _schedulers()[sampler]
        pipe.scheduler = cls.from_config(self._scheduler_config, **extra)

    def _size(self, params: dict[str, Any]) -> tuple[int, int]:
        height, width = self.config.get("size", [512, 512])
        return params.get("height") or height, params.get("width") or width

    def _common(self, ctx: ActionContext, pipe, sampler: str, steps: int, count: int = 1) -> dict[str, Any]:
        params = ctx.params
        self._use_sampler(pipe, sampler)
        kwargs = {"prompt": [params["prompt"]] * count, "guidance_scale": params["guidance"],
                  "num_inference_steps": steps, "generator": ctx.torch_generator(), "output_type": "np"}
        if params.get("negative_prompt"):
            kwargs["negative_prompt"] = [params["negative_prompt"]] * count
        return kwargs

    # actions ---------------------------------------------------------------------------------
    def text_to_image(self, ctx: ActionContext) -> Iterator[Progress]:
        pipe = self.variant("text_to_image")
        count = ctx.params["count"]
        height, width = self._size(ctx.params)
        kwargs = {**self._common(ctx, pipe, ctx.params["sampler"], ctx.params["steps"], count), "height": height, "width": width}
        images = yield from self._run(pipe, kwargs, ctx.params["steps"])
        return Result(images=images)

    def image_to_image(self, ctx: ActionContext) -> Iterator[Progress]:
        from PIL import Image

        params = ctx.params
        original = media.to_rgb(ctx.inputs["image"])
        h, w = original.shape[:2]
        mask = ctx.inputs.get("mask")
        if mask is None and params["strength"] <= 0.0:
            yield Progress(1, 1)
            return Result(images=[original])
        if mask is None:
            pipe = self.variant("image_to_image")
            kwargs = {**self._common(ctx, pipe, params["sampler"], params["steps"]), "image": Image.fromarray(original), "strength": params["strength"]}
            images = yield from self._run(pipe, kwargs, max(int(params["steps"] * params["strength"]), 1))
            return Result(images=[_resize(images[0], w, h)])
        pipe = self.variant("inpaint")
        repaint = media.to_gray(mask, background=0)[..., 0]
        if repaint.shape != (h, w):
            repaint = np.asarray(Image.fromarray(repaint).resize((w, h), Image.Resampling.NEAREST))
        kwargs = {**self._common(ctx, pipe, params["sampler"], params["steps"]), "image": Image.fromarray(original), "mask_image": Image.fromarray(repaint),
                  "height": h - h % 8, "width": w - w % 8}
        if "strength" in _call_parameters(pipe):
            kwargs["strength"] = 1.0
        images = yield from self._run(pipe, kwargs, params["steps"])
        generated = _resize(images[0], w, h)
        kept = (repaint < 128)[..., None]
        return Result(images=[np.where(kept, original, generated)])  # outside the mask: the input's pixels

    def interpolate(self, ctx: ActionContext) -> Iterator[Progress]:
        import torch

        params = ctx.params
        if ctx.inputs.get("image_a") is not None or ctx.inputs.get("image_b") is not None:
            raise ParamError("imported pipelines interpolate between seeds only; leave the images empty")
        pipe = self.variant("text_to_image")
        height, width = self._size(params)
        scale = getattr(pipe, "vae_scale_factor", 8)
        channels = pipe.unet.config.in_channels
        ends = []
        for index, key in enumerate(("seed_a", "seed_b")):
            seed = params[key] if params[key] is not None else ctx.seed + index
            generator = torch.Generator().manual_seed(int(seed))
            ends.append(torch.randn((channels, height // scale, width // scale), generator=generator).numpy())
        path = np.stack(latent.path(ends, params["steps"], "slerp"))
        frames = len(path)
        kwargs = {**self._common(ctx, pipe, "ddim", params["sampler_steps"], frames), "height": height,
                  "width": width, "latents": torch.from_numpy(path).to(self.device, pipe.unet.dtype)}
        images = yield from self._run(pipe, kwargs, params["sampler_steps"])
        return Result(images=images, latents=[z.reshape(-1) for z in path])

    # running -----------------------------------------------------------------------------------
    def _run(self, pipe, kwargs: dict[str, Any], total: int) -> Iterator[Progress]:
        """Call the pipeline in a worker thread; yield Progress (with a latent preview) per step."""
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_step(_pipe, index: int, _t, tensors: dict[str, Any]) -> dict[str, Any]:
            if stop.is_set():
                raise _Stopped
            events.put(("step", index + 1, tensors.get("latents")))
            return {}

        def work() -> None:
            try:
                output = pipe(**kwargs, callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
                events.put(("done", output))
            except _Stopped:
                events.put(("stopped", None))
            except BaseException as exc:  # handed to the action's thread, which raises it
                events.put(("error", exc))

        thread = threading.Thread(target=work, name="diffusers-pipeline", daemon=True)
        thread.start()
        try:
            while True:
                kind, *payload = events.get()
                if kind == "step":
                    step, latents = payload
                    yield Progress(min(step, total), total, preview=latent_preview(latents))
                elif kind == "done":
                    return [_to_uint8(im) for im in payload[0].images]
                elif kind == "error":
                    raise payload[0]
                else:
                    return []
        finally:
            stop.set()
            thread.join()


def _call_parameters(pipe) -> set[str]:
    import inspect

    return set(inspect.signature(pipe.__call__).parameters)


def latent_preview(latents) -> np.ndarray | None:
    """A rough RGB image of the first latent in the batch, without running the VAE."""
    if latents is None or latents.ndim != 4:  # packed (sequence) latents have no cheap picture
        return None
    z = latents[0].detach().float().cpu().numpy()  # (C, h, w)
    if z.shape[0] == 4:
        rgb = np.einsum("chw,cr->hwr", z, SD_LATENT_RGB)
        rgb = (rgb + 1.0) * 127.5
    else:
        rgb = z[:3].transpose(1, 2, 0)
        rgb = (rgb - rgb.min()) / max(float(np.ptp(rgb)), 1e-6) * 255.0
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))

