"""WaveNet actions: generate, continue, infill, resynthesize, morph and train, as generators.

Every generating action streams: it yields a Progress about every 0.1 s of audio with the
audio written so far (the first take) as the preview. All audio is at the model's rate; inputs
at other rates are resampled and stereo is mixed to mono.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from plugins.wavenet.model import (
    GenerationPlan,
    WaveNet,
    WaveNetConfig,
    log_mel,
    mu_law_decode,
    mu_law_encode,
)
from studio.core import media, training
from studio.core.checkpoints import atomic_write_bytes
from studio.core.datasets import DatasetError, load_audio_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Audio, Progress, Result

PLUGIN_ID = "studio.wavenet"
PREVIEW_SECONDS = 0.1


# helpers -------------------------------------------------------------------------------------
def _instrument(model: WaveNet, params: dict, name_key: str = "instrument", index_key: str = "instrument_index") -> int:
    index = params.get(index_key)
    if index is not None and index >= 0:
        if index >= len(model.config.instruments):
            raise ParamError(f"{index_key} must be below {len(model.config.instruments)} for this model, not {index}")
        return int(index)
    try:
        return model.instrument_index(params[name_key])
    except ValueError as exc:
        raise ParamError(str(exc)) from None


def _samples(model: WaveNet, seconds: float) -> int:
    return max(1, int(round(seconds * model.config.rate)))


def _mono(audio: Audio, rate: int) -> np.ndarray:
    """Any Audio -> (n,) float32 mono at ``rate``."""
    mono = media.to_mono(np.asarray(audio.samples, dtype=np.float32))
    return np.ascontiguousarray(media.resample(mono, audio.rate, rate)[:, 0], dtype=np.float32)


def _to_audio(samples: np.ndarray, rate: int) -> Audio:
    return Audio(np.ascontiguousarray(samples, dtype=np.float32).reshape(-1, 1), rate)


def _stream(model: WaveNet, plan: GenerationPlan, skip: int = 0,
            before: np.ndarray | None = None) -> Iterator[Progress]:
    """Run ``plan`` on the fast path in ~0.1 s chunks.

    Returns (decoded takes (B, n - skip), samples per second over all takes).

    ``skip``: leading plan samples that are only context (primed, not output). ``before``: audio
    shown in front of the new samples in the preview.
    """
    rate = model.config.rate
    generator = model.fast_generator(plan)
    total = plan.length - skip
    chunk = max(1, int(rate * PREVIEW_SECONDS))
    generator.run(skip)
    started = time.monotonic()
    while generator.position < plan.length:
        generator.run(chunk)
        done = generator.position - skip
        preview = mu_law_decode(generator.codes[0, skip : generator.position], model.config.classes)
        if before is not None:
            preview = np.concatenate([before, preview])
        yield Progress(done, total, preview=_to_audio(preview, rate),
                       message=f"{done / rate:.1f} s of {total / rate:.1f} s")
    speed = plan.takes * total / max(time.monotonic() - started, 1e-9)
    return mu_law_decode(generator.codes[:, skip:], model.config.classes), speed


def _result(takes: np.ndarray, speed: float, rate: int, **metrics) -> Result:
    audio = [_to_audio(take, rate) for take in takes]
    return Result(audio=audio, metrics={"samples_per_second": round(speed), **metrics})


def _context_plan(model: WaveNet, ctx: ActionContext, context: np.ndarray, new: int,
                  instrument: int) -> tuple[GenerationPlan, int]:
    """A plan whose first samples are the last receptive field of ``context`` (forced codes).

    Only the last receptive field can influence what follows, so priming with it gives the very
    queues a prime over the whole context would.
    """
    window = context[-(model.config.receptive_field + 1):]
    prefix = mu_law_encode(window, model.config.classes)
    p = ctx.params
    plan = model.plan(p["takes"], len(prefix) + new, instrument, p["pitch"], seed=ctx.seed,
                      temperature=p["temperature"], prefix=prefix, time_offset=len(context) - len(window))
    return plan, len(prefix)


# generate --------------------------------------------------------------------------------------
def generate(ctx: ActionContext) -> Iterator[Progress]:
    model: WaveNet = ctx.model
    p = ctx.params
    n = _samples(model, p["duration"])
    plan = model.plan(p["takes"], n, _instrument(model, p), p["pitch"], seed=ctx.seed, temperature=p["temperature"])
    takes, speed = yield from _stream(model, plan)
    return _result(takes, speed, model.config.rate)


def continue_(ctx: ActionContext) -> Iterator[Progress]:
    """Keep the audio before the cursor bit-identical, condition on it, generate after it."""
    model: WaveNet = ctx.model
    p = ctx.params
    rate = model.config.rate
    source = _mono(ctx.inputs["audio"], rate)
    cursor = min(len(source), _samples(model, p["cursor"])) if p["cursor"] is not None else len(source)
    if cursor < 1:
        raise ParamError("the cursor must be after the start of the audio, so there is something to continue")
    before = source[:cursor]
    plan, skip = _context_plan(model, ctx, before, _samples(model, p["duration"]), _instrument(model, p))
    takes, speed = yield from _stream(model, plan, skip, before)
    joined = np.stack([np.concatenate([before, take]) for take in takes])
    return _result(joined, speed, rate, cursor_samples=cursor)


def infill(ctx: ActionContext) -> Iterator[Progress]:
    """Re-generate [start, end): condition on what comes before, crossfade into what follows.

    Everything outside the selection stays bit-identical; the crossfade lies inside its last
    ``crossfade`` seconds.
    """
    model: WaveNet = ctx.model
    p = ctx.params
    rate = model.config.rate
    source = _mono(ctx.inputs["audio"], rate)
    start = _samples(model, p["start"])
    end = min(len(source), _samples(model, p["end"]))
    if not 0 < start < end:
        raise ParamError(f"the selection must lie inside the audio ({len(source) / rate:.2f} s) with start < end, "
                         f"not {p['start']:g} s to {p['end']:g} s")
    plan, skip = _context_plan(model, ctx, source[:start], end - start, _instrument(model, p))
    takes, speed = yield from _stream(model, plan, skip, source[:start])
    fade = min(end - start, _samples(model, p["crossfade"]))
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade, dtype=np.float32))) if fade else np.zeros(0, np.float32)
    out = []
    for take in takes:
        middle = take.copy()
        if fade:
            middle[-fade:] = middle[-fade:] * (1.0 - ramp) + source[end - fade : end] * ramp
        out.append(np.concatenate([source[:start], middle, source[end:]]))
    return _result(np.stack(out), speed, rate, start_samples=start, end_samples=end)


def resynthesize(ctx: ActionContext) -> Iterator[Progress]:
    """Generate new audio from the input's mel spectrogram (local conditioning)."""
    model: WaveNet = ctx.model
    p = ctx.params
    if not model.config.mels:
        raise ParamError("this model was trained without local (mel) conditioning, so it cannot resynthesize")
    rate = model.config.rate
    source = _mono(ctx.inputs["audio"], rate)
    mel = log_mel(source, model.config).numpy()  # (mels, F)
    plan = model.plan(p["takes"], len(source), _instrument(model, p), p["pitch"], seed=ctx.seed,
                      temperature=p["temperature"], mel=mel)
    takes, speed = yield from _stream(model, plan)
    return _result(takes, speed, rate)


def morph(ctx: ActionContext) -> Iterator[Progress]:
    """Interpolate between two instruments' embeddings: a static mix, a sweep, or a grid of mixes."""
    model: WaveNet = ctx.model
    p = ctx.params
    n = _samples(model, p["duration"])
    a = _instrument(model, p, "instrument_a", "index_a")
    b = _instrument(model, p, "instrument_b", "index_b")
    mode = p["mode"]
    if mode == "grid":
        mixes = np.linspace(0.0, 1.0, p["steps"])
        mix = np.repeat(mixes[:, None], n, axis=1)
    elif mode == "sweep":
        mixes = np.array([0.0])
        mix = np.linspace(0.0, 1.0, n)[None, :]
    else:
        mixes = np.array([p["mix"]])
        mix = np.full((1, n), p["mix"])
    plan = model.plan(len(mix), n, a, p["pitch"], seed=ctx.seed, temperature=p["temperature"], morph_to=b, mix=mix)
    plan.uniforms[:] = plan.uniforms[0]  # the same draws for every take: only the timbre differs
    takes, speed = yield from _stream(model, plan)
    return _result(takes, speed, model.config.rate, mixes=[round(float(m), 4) for m in mixes])


# training ------------------------------------------------------------------------------------------
PITCH_IN_NAME = re.compile(r"(?:^|[^a-z0-9])p(\d{1,3})(?:[^0-9]|$)", re.IGNORECASE)


def pitch_from_name(path: Path, default: int = 60) -> int:
    """The MIDI pitch in a file name like ``p060_v075.wav``; ``default`` when there is none."""
    match = PITCH_IN_NAME.search(path.stem)
    return min(int(match.group(1)), 127) if match else default


class WaveNetFamily:
    """What training.train needs. A batch is (codes (B, L), audio (B, L), instrument (B,), pitch (B,))."""

    def __init__(self, config: WaveNetConfig, crop: int, heldout: tuple[torch.Tensor, ...] | None = None,
                 name: str = "wavenet", description: str = "") -> None:
        self.config = config
        self.crop = crop
        self.heldout = heldout
        self.name = name
        self.description = description

    def build(self) -> WaveNet:
        return WaveNet(self.config)

    def loss(self, model: WaveNet, batch, generator: torch.Generator):
        codes, audio, instrument, pitch = batch
        batch_size, length = codes.shape
        crop = min(self.crop, length)
        device = generator.device
        starts = torch.randint(0, length - crop + 1, (batch_size,), generator=generator, device=device)
        onset = torch.rand(batch_size, generator=generator, device=device) < 0.25  # learn the attack from silence
        starts = torch.where(onset, torch.zeros_like(starts), starts)
        index = starts[:, None] + torch.arange(crop, device=device)[None, :]  # (B, crop)
        crop_codes = torch.gather(codes, 1, index)
        mel = mel_mask = None
        if self.config.mels:
            mel = log_mel(torch.gather(audio, 1, index), self.config)  # (B, mels, F)
            mel_mask = (torch.rand(batch_size, generator=generator, device=device) < 0.5).float()
        nll = model.loss(crop_codes, instrument, pitch, mel, mel_mask, starts)
        return nll, {"bits_per_sample": nll.detach() / math.log(2.0)}

    def sample(self, model: WaveNet, n: int, generator: torch.Generator) -> list[Audio]:
        count = min(n, 3)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        instruments = list(range(count)) if len(self.config.instruments) >= count else 0
        plan = model.plan(count, self.config.rate // 2, instruments, 60, seed=seed)
        codes = np.concatenate(list(self.cpu_copy(model).sample(plan)), axis=1)
        return [_to_audio(mu_law_decode(take, self.config.classes), self.config.rate) for take in codes]

    def cpu_copy(self, model: WaveNet) -> WaveNet:
        copy = WaveNet(self.config).eval()
        copy.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        return copy

    def save(self, model: WaveNet, out_dir: Path, info: dict):
        metrics = dict(info.get("metrics", {}))
        if self.heldout is not None:
            nll = heldout_nll(model, *self.heldout)
            metrics.update(heldout_nll_nats=round(nll, 4), heldout_bits_per_sample=round(nll / math.log(2.0), 4))
        info = {**info, "metrics": metrics}
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "wavenet",
                  "model": self.config.to_dict()}
        samples = self.sample(model, 3, torch.Generator().manual_seed(0))
        ckpt = training.save_trained(out_dir, model.state_dict(), config, info, samples, self.description)
        section = write_examples(self.cpu_copy(model), Path(out_dir), self.heldout)
        card = Path(out_dir) / "MODEL_CARD.md"
        atomic_write_bytes(card, (card.read_text(encoding="utf-8") + section).encode("utf-8"))
        return ckpt


def write_examples(model: WaveNet, out_dir: Path, heldout: tuple[torch.Tensor, ...] | None) -> str:
    """A few short example WAVs next to the weights, and the model card section that lists them."""
    cfg = model.config
    wanted = [("piano", 60), ("flute", 72), ("bass", 40)]
    picks = [(cfg.instruments.index(n), p) for n, p in wanted if n in cfg.instruments]
    picks = picks or [(i, 60) for i in range(min(3, len(cfg.instruments)))]
    n = int(0.75 * cfg.rate)
    plan = model.plan(len(picks), n, [i for i, _ in picks], [p for _, p in picks], seed=0)
    started = time.monotonic()
    codes = np.concatenate(list(model.sample(plan)), axis=1)
    speed = len(picks) * n / (time.monotonic() - started)
    files = []
    for (instrument, pitch), take in zip(picks, codes):
        name = f"example-{cfg.instruments[instrument]}-{pitch}.wav"
        media.save_audio(out_dir / name, _to_audio(mu_law_decode(take, cfg.classes), cfg.rate))
        files.append(f"- [{name}]({name}): {cfg.instruments[instrument]}, MIDI pitch {pitch}, 0.75 s, seed 0")
    if cfg.mels and heldout is not None:
        codes_h, audio_h, instrument_h, pitch_h = (t[:1] for t in heldout)
        clip = audio_h[0, :n].numpy()
        mel = log_mel(clip, cfg).numpy()
        plan = model.plan(1, len(clip), int(instrument_h[0]), int(pitch_h[0]), seed=0, mel=mel)
        resynth = mu_law_decode(np.concatenate(list(model.sample(plan)), axis=1)[0], cfg.classes)
        for prefix, audio in (("heldout", clip), ("resynth", resynth)):
            name = f"{prefix}-{cfg.instruments[int(instrument_h[0])]}-{int(pitch_h[0])}.wav"
            media.save_audio(out_dir / name, _to_audio(audio, cfg.rate))
            files.append(f"- [{name}]({name}): " + ("a held-out note" if prefix == "heldout"
                                                   else "resynthesized from that note's mel spectrogram"))
    lines = [
        "", "## WaveNet", "",
        f"- layout: {cfg.layers} layers in {cfg.stacks} stacks, residual {cfg.residual}, gate {cfg.gate}, "
        f"skip {cfg.skip}, kernel {cfg.kernel}; receptive field {cfg.receptive_field} samples "
        f"({1000 * cfg.receptive_field / cfg.rate:.0f} ms) at {cfg.rate} Hz",
        f"- output: {cfg.classes}-way softmax over 8-bit mu-law; conditioning: instrument + pitch embeddings "
        f"({cfg.embed})"
        + (f", a pitch source (sin/cos of harmonics 1..{cfg.harmonics} at the note's pitch)" if cfg.harmonics else "")
        + (f", {cfg.mels}-band log-mel (hop {cfg.mel_hop}) for resynthesis" if cfg.mels else ""),
        f"- instruments: {', '.join(cfg.instruments)}",
        "- held-out NLL per sample is over whole held-out clips, instrument and pitch conditioning only "
        "(uniform over 256 levels would be 5.545 nats = 8 bits)",
        f"- fast generation while writing these examples: {speed:,.0f} samples/s for {len(picks)} takes "
        f"(wall clock, shared CPU)",
        "", "Examples (16-bit WAV):", "", *files, "",
    ]
    return "\n".join(lines)


@torch.no_grad()
def heldout_nll(model: WaveNet, codes: torch.Tensor, audio: torch.Tensor, instrument: torch.Tensor,
                pitch: torch.Tensor, batch: int = 8) -> float:
    """Mean NLL in nats per sample over whole held-out clips (global conditioning only)."""
    was_training = model.training
    model.eval()
    device = model.first.weight.device
    total = 0.0
    for i in range(0, len(codes), batch):
        part = slice(i, i + batch)
        nll = model.loss(codes[part].to(device), instrument[part].to(device), pitch[part].to(device))
        total += float(nll) * len(codes[part])
    model.train(was_training)
    return total / len(codes)


def load_notes(folder: Path, config_rate: int, trim_db: float | None, seconds: float,
               instruments: list[str] | None = None) -> tuple[tuple[torch.Tensor, ...], dict, list[str]]:
    """An audio folder as training tensors; instruments from subfolders, pitch from file names."""
    data = load_audio_folder(folder, config_rate, trim_db=trim_db)
    names = data.classes or ["default"]
    labels = np.maximum(data.labels, 0)
    if instruments is not None:  # held-out data: map its folders onto the training instruments
        keep = [i for i, label in enumerate(labels) if names[label] in instruments]
        labels = np.array([instruments.index(names[labels[i]]) for i in keep], dtype=np.int64)
        clips = [data.clips[i] for i in keep]
        files = [data.files[i] for i in keep]
        names = instruments
    else:
        clips, files = data.clips, data.files
    length = min(max(len(c) for c in clips), int(seconds * config_rate))
    audio = np.zeros((len(clips), length), np.float32)
    for i, clip in enumerate(clips):
        audio[i, : min(length, len(clip))] = clip[:length]
    pitches = np.array([pitch_from_name(f) for f in files], dtype=np.int64)
    tensors = (torch.from_numpy(mu_law_encode(audio)), torch.from_numpy(audio),
               torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(pitches))
    return tensors, data.info(), names


def train(ctx: ActionContext) -> Iterator[Progress]:
    p = ctx.params
    folder = Path(ctx.inputs["data"]).expanduser()
    yield Progress(0, p["steps"], message=f"reading audio from {folder}")
    try:
        tensors, info, instruments = load_notes(folder, 16000, p["trim_db"], p["clip_seconds"])
        heldout = None
        if ctx.inputs.get("test_data") is not None:
            heldout, _, _ = load_notes(ctx.inputs["test_data"], 16000, p["trim_db"], p["clip_seconds"], instruments)
    except DatasetError as exc:
        raise ParamError(str(exc)) from None
    config = WaveNetConfig(layers=p["layers"], stacks=p["stacks"], residual=p["residual"], gate=2 * p["residual"],
                           skip=p["skip"], instruments=instruments, mels=p["mels"], harmonics=p["harmonics"])
    name = p["name"] or f"wavenet-{folder.name}"
    out = Path(p["out"]).expanduser() if p["out"] else user_models_dir() / name
    description = ("WaveNet (8-bit mu-law, 256-way softmax) conditioned on instrument and pitch"
                   + (f", a pitch source of {config.harmonics} harmonics" if config.harmonics else "")
                   + (f" and a {config.mels}-band log-mel spectrogram" if config.mels else "") + ".")
    family = WaveNetFamily(config, p["crop"], heldout, name, description)
    train_config = training.TrainConfig.from_params(p, seed=ctx.seed)
    result = yield from training.train(family, tensors, train_config, out, ctx.device, resume=p["resume"],
                                       data_info=info)
    return result.to_result()
