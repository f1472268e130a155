"""The job engine: runs action generators off the caller's thread, one at a time, in order.

Cancel becomes a stop at the action's next yield. Failures become a readable message with
the traceback kept as details. The GUI, the CLI and the tests all go through ``execute``.
"""

from __future__ import annotations

import itertools
import queue
import random
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from studio.core import media
from studio.core.checkpoints import Checkpoint, CheckpointError
from studio.core.datasets import DatasetError
from studio.core.params import ParamError
from studio.core.plugin import ActionContext, Progress, Result
from studio.core.registry import PluginImportError, Registry

MAX_SEED = 2**32 - 1


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class JobError(RuntimeError):
    """A job that failed; ``kind`` is input, model, plugin, oom or internal."""

    def __init__(self, message: str, kind: str = "plugin", details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


_ids = itertools.count(1)


@dataclass
class Job:
    plugin_id: str
    action_id: str
    model_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    device: str = "auto"
    parents: list[int] = field(default_factory=list)
    batch: int = 1
    id: int = field(default_factory=lambda: next(_ids))
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    message: str = ""
    preview: Any = None
    started: float | None = None
    finished: float | None = None
    result: Result | None = None
    record_ids: list[int] = field(default_factory=list)
    error: str = ""
    error_kind: str = ""
    details: str = ""
    resolved_device: str = ""
    model_sha256: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _running: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(MAX_SEED)
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        """Hold the job between two steps until ``resume`` (or ``cancel``)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far; None until there is a pace."""
        if self.state != JobState.RUNNING or self.step <= 0 or self.total <= 0:
            return None
        return self.elapsed / self.step * max(self.total - self.step, 0)

    @property
    def title(self) -> str:
        return f"{self.action_id} · {self.model_id or self.plugin_id}"


Listener = Callable[[str, Job], None]


def available_devices() -> list[str]:
    """Devices this machine can run on; imports torch only if a plugin already did."""
    devices = ["cpu"]
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return devices
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.insert(-1, "mps")
    return devices


def resolve_device(preference: str, supported: tuple[str, ...] = ("cuda", "mps", "cpu")) -> str:
    """CUDA, then MPS, then CPU, among what the plugin supports; an unavailable choice is an error."""
    preference = (preference or "auto").lower()
    if preference not in ("auto", "cpu", "cuda", "mps"):
        raise JobError(f"unknown device {preference!r}: use auto, cpu, cuda or mps", "input")
    if preference == "cpu" or supported == ("cpu",):
        if preference not in ("auto", "cpu"):
            raise JobError(f"this model runs only on cpu, not {preference}", "input")
        return "cpu"
    devices = [d for d in available_devices() if d in supported]
    if preference == "auto":
        return devices[0] if devices else "cpu"
    if preference not in devices:
        raise JobError(f"device {preference!r} is not available on this machine (have: {', '.join(devices)})", "input")
    return preference


def _is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return "out of memory" in str(exc).lower() and type(exc).__name__ in ("RuntimeError", "OutOfMemoryError")


class ModelCache:
    """Loaded models by (checkpoint folder, sha256, device); the least recently used go first."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, registry: Registry, ckpt: Checkpoint, device: str) -> Any:
        key = (str(ckpt.path), ckpt.sha256, device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = registry.loader(ckpt.plugin)(ckpt.path, device)
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


class Engine:
    def __init__(self, registry: Registry, project=None, device: str = "auto") -> None:
        self.registry = registry
        self.project = project
        self.device = device
        self.models = ModelCache()
        self.jobs: list[Job] = []
        self._listeners: list[Listener] = []
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # events ---------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str, job: Job) -> None:
        for listener in list(self._listeners):
            listener(event, job)

    # queue ------------------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self._lock:
            self.jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="studio-engine", daemon=True)
                self._thread.start()
        self._emit("queued", job)
        self._queue.put(job)
        return job

    def cancel(self, job: Job) -> None:
        job.cancel()
        if job.state == JobState.QUEUED:
            self._finish(job, JobState.CANCELLED)

    def pending(self) -> list[Job]:
        return [j for j in self.jobs if not j.state.finished]

    def shutdown(self, cancel: bool = True, timeout: float = 10.0) -> None:
        if cancel:
            for job in self.pending():
                self.cancel(job)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.state == JobState.QUEUED:
                self.execute(job)

    # running -----------------------------------------------------------------------------------
    def execute(self, job: Job) -> Job:
        """Run one job to its end in this thread, recording its result in the project."""
        job.state = JobState.RUNNING
        job.started = time.monotonic()
        self._emit("started", job)
        try:
            result = self._run(job)
        except JobError as exc:
            job.error, job.error_kind, job.details = str(exc), exc.kind, exc.details or job.details
            self._finish(job, JobState.FAILED)
            return job
        if result is None:
            self._finish(job, JobState.CANCELLED)
            return job
        job.result = result
        if self.project is not None and (result.images or result.audio):
            try:
                job.record_ids = self.project.add_job(job, result)
            except OSError as exc:
                job.error, job.error_kind = f"could not save the result: {exc}", "internal"
                self._finish(job, JobState.FAILED)
                return job
        self._finish(job, JobState.DONE)
        return job

    def _finish(self, job: Job, state: JobState) -> None:
        if job.state.finished:
            return
        job.state = state
        job.finished = time.monotonic()
        if job.started is None:
            job.started = job.finished
        self._emit(state.value, job)

    def context(self, job: Job) -> tuple[Any, ActionContext]:
        """Resolve a job's action, parameters, device, model and inputs."""
        try:
            manifest = self.registry.manifest(job.plugin_id)
            action = manifest.action(job.action_id)
        except KeyError as exc:
            raise JobError(exc.args[0], "input") from None
        try:
            values = action.params.validate(job.params)
        except ParamError as exc:
            raise JobError(str(exc), "input") from None
        job.params = values
        device = resolve_device(job.device if job.device != "auto" else self.device, manifest.devices)
        job.resolved_device = device
        ckpt = model = None
        try:
            fn = self.registry.action_fn(job.plugin_id, action)
            if action.needs_model:
                if not job.model_id:
                    raise JobError(f"{action.title} needs a model: pick a checkpoint", "input")
                ckpt = self.registry.checkpoint(job.model_id)
                if ckpt.source == "folder":
                    job.model_id = str(ckpt.path.resolve())
                if ckpt.plugin != manifest.id:
                    raise JobError(f"model {ckpt.id!r} belongs to {ckpt.plugin!r}, not {manifest.id!r}", "input")
                job.model_sha256 = ckpt.sha256
                model = self.models.get(self.registry, ckpt, device)
        except PluginImportError as exc:
            raise JobError(str(exc), "plugin", traceback.format_exc()) from None
        except CheckpointError as exc:
            raise JobError(str(exc), "model") from None
        inputs = {}
        for spec in action.params:
            value = values.get(spec.name)
            if not spec.is_input or value is None:
                continue
            try:
                inputs[spec.name] = _load_input(spec.type, value)
            except media.MediaError as exc:
                raise JobError(str(exc), "input") from None
        return fn, ActionContext(
            params=values, seed=int(job.seed), device=device, model=model, checkpoint=ckpt, inputs=inputs
        )

    def _run(self, job: Job) -> Result | None:
        fn, ctx = self.context(job)
        _seed_everything(ctx.seed)
        try:
            generator = fn(ctx)
            while True:
                if job.paused:
                    self._emit("paused", job)
                    job._running.wait()
                    self._emit("resumed", job)
                if job.cancel_requested:
                    generator.close()
                    return None
                try:
                    progress = next(generator)
                except StopIteration as stop:
                    result = stop.value
                    break
                if isinstance(progress, Progress):
                    job.step, job.total, job.message = progress.step, progress.total, progress.message
                    if progress.preview is not None:
                        job.preview = progress.preview
                    if progress.metrics:
                        job.metrics = dict(progress.metrics)
                        job.history.append((progress.step, job.metrics))
                    self._emit("progress", job)
        except JobError:
            raise
        except (ParamError, media.MediaError, DatasetError) as exc:
            raise JobError(str(exc), "input") from None
        except Exception as exc:
            details = traceback.format_exc()
            if _is_oom(exc):
                raise JobError(
                    f"the {ctx.device.upper()} ran out of memory; try fewer images, a smaller size, or the CPU",
                    "oom",
                    details,
                ) from None
            raise JobError(f"{type(exc).__name__}: {exc}", "plugin", details) from None
        if not isinstance(result, Result):
            raise JobError(f"action {job.action_id!r} returned {type(result).__name__}, not a Result", "plugin")
        return result


def _load_input(kind: str, value: Any) -> Any:
    if kind == "image":
        return value if not isinstance(value, (str, Path)) else media.load_image(Path(value))
    if kind == "audio":
        return value if not isinstance(value, (str, Path)) else media.load_audio(Path(value))
    path = Path(value).expanduser()
    if not path.exists():
        raise JobError(f"{path}: no such file or folder", "input")
    return path


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
