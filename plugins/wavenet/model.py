"""WaveNet (van den Oord et al., 2016) for single notes, with fast cached generation.

Dilated causal convolutions, gated tanh * sigmoid units, residual and skip connections, 8-bit
mu-law audio predicted by a 256-way softmax. Global conditioning: an instrument embedding plus
a pitch embedding, projected into every layer's gate. Optional pitch source (as in neural
source-filter models): sines and cosines of the note's first harmonics, sample by sample,
projected into every gate, so the network has a clock at the note's period. Optional local
conditioning: a log-mel spectrogram, passed through a small frame-level conv, linearly
upsampled to the sample rate and projected into every gate (used by "resynthesize").

The layer layout follows r9y9's ``wavenet_vocoder`` (non-legacy skips) so its implementation
can run on the same weights in ``bench/wavenet.py``.

Three ways to generate, all drawing sample t from the same pre-drawn uniform ``u[t]`` by
inverse-CDF sampling, so they produce the same samples:

- ``sample_naive``: a full forward pass over everything so far, per sample (slow; reference).
- ``sample_cached_torch``: per-layer queues of past activations, one step per sample, in torch.
- ``FastGenerator`` (plugins/wavenet/fastgen.py): the same queues in a numba-compiled loop over
  fused float32 weights, several takes in parallel; what the actions use.

Timing convention: step t reads the code of sample t - 1 (the silence code at t = 0, with
zero-padded layer history) and predicts sample t.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SQRT_HALF = math.sqrt(0.5)


@dataclass
class WaveNetConfig:
    layers: int = 20  # total dilated layers
    stacks: int = 2  # dilation cycles: dilation of layer i = 2 ** (i % (layers // stacks))
    residual: int = 32  # residual channels R
    gate: int = 64  # dilated conv output G, split into tanh and sigmoid halves of G / 2
    skip: int = 64  # skip channels S
    kernel: int = 2
    classes: int = 256  # mu-law levels
    rate: int = 16000
    instruments: list[str] = field(default_factory=lambda: ["default"])
    pitches: int = 128  # MIDI pitches 0..127
    embed: int = 16  # global conditioning size E (instrument + pitch embeddings)
    mels: int = 0  # mel bands for local conditioning; 0 = no local conditioning
    mel_hop: int = 256
    mel_fft: int = 1024
    mel_features: int = 16  # local conditioning size after the frame conv
    harmonics: int = 0  # pitch source: sin and cos of harmonics 1..H of the note; 0 = none

    @property
    def dilations(self) -> list[int]:
        per_stack = self.layers // self.stacks
        return [2 ** (i % per_stack) for i in range(self.layers)]

    @property
    def receptive_field(self) -> int:
        return (self.kernel - 1) * sum(self.dilations) + 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WaveNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# mu-law --------------------------------------------------------------------------------------
def mu_law_encode(audio: np.ndarray, classes: int = 256) -> np.ndarray:
    """float audio in [-1, 1] (any shape) -> int64 codes in [0, classes)."""
    mu = classes - 1
    x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.floor((y + 1.0) / 2.0 * mu + 0.5), 0, mu).astype(np.int64)


def mu_law_decode(codes: np.ndarray, classes: int = 256) -> np.ndarray:
    """int codes -> float32 audio in [-1, 1]."""
    mu = classes - 1
    y = 2.0 * np.asarray(codes, dtype=np.float64) / mu - 1.0
    return (np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu).astype(np.float32)


def silence_code(classes: int = 256) -> int:
    return int(mu_law_encode(np.zeros(1), classes)[0])


# sampling ------------------------------------------------------------------------------------
def sample_from_logits(logits: np.ndarray, uniform: float, temperature: float) -> int:
    """Inverse-CDF draw from softmax(logits / temperature); argmax when temperature <= 0.

    fastgen._draw is the same algorithm, step for step.
    """
    if temperature <= 0.0:
        return int(np.argmax(logits))
    weights = np.exp((logits - logits.max()) / temperature)  # (C,)
    cdf = np.cumsum(weights)
    index = int(np.searchsorted(cdf, uniform * cdf[-1], side="right"))
    return min(index, len(logits) - 1)


# mel features --------------------------------------------------------------------------------
def mel_filterbank(rate: int, n_fft: int, mels: int) -> np.ndarray:
    """Triangular filters on the HTK mel scale: (mels, n_fft // 2 + 1)."""

    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    bins = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(30.0), hz_to_mel(rate / 2.0), mels + 2))
    bank = np.zeros((mels, len(bins)))
    for m in range(mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        bank[m] = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return bank.astype(np.float32)


def log_mel(audio: np.ndarray | torch.Tensor, config: WaveNetConfig) -> torch.Tensor:
    """Mono audio (n,) or (B, n) -> log-mel frames (mels, F) or (B, mels, F), F = n // hop + 1.

    Frame f is centred on sample f * hop.
    """
    signal = torch.as_tensor(audio, dtype=torch.float32)
    spec = torch.stft(
        signal, config.mel_fft, config.mel_hop, window=torch.hann_window(config.mel_fft, device=signal.device),
        center=True, pad_mode="constant", return_complex=True,
    ).abs()  # (..., n_fft // 2 + 1, F)
    bank = torch.from_numpy(mel_filterbank(config.rate, config.mel_fft, config.mels)).to(signal.device)
    return torch.log(bank @ spec + 1e-4) / 4.0  # (..., mels, F), roughly in [-2.5, 1]


def pitch_omega(pitch: np.ndarray | torch.Tensor | int, rate: int):
    """MIDI pitch -> angular frequency in radians per sample."""
    return 2.0 * math.pi * 440.0 * 2.0 ** ((pitch - 69.0) / 12.0) / rate


def source_signal(omega: torch.Tensor, times: torch.Tensor, harmonics: int) -> torch.Tensor:
    """omega (B,) rad/sample, times (B, T) sample indices -> (B, 2H, T): sin k*omega*t, cos k*omega*t.

    Harmonics at or above the Nyquist frequency are zero. fastgen._source is the same formula.
    """
    omega = omega.double()[:, None, None]  # (B, 1, 1)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)[None, :, None]  # (1, H, 1)
    arg = (k * omega) * times.double()[:, None, :]  # (B, H, T)
    audible = (k * omega < math.pi).double()
    return torch.cat([torch.sin(arg) * audible, torch.cos(arg) * audible], dim=1)


def upsample_weights(n: int, frames: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (frame index, weight toward the next frame) for linear upsampling."""
    t = np.arange(n)
    index = np.minimum(t // hop, frames - 1)
    weight = np.where(t // hop >= frames - 1, 0.0, (t % hop) / hop)
    return index.astype(np.int64), weight


# the network ---------------------------------------------------------------------------------
class ResidualLayer(nn.Module):
    def __init__(self, config: WaveNetConfig, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.pad = (config.kernel - 1) * dilation
        self.conv = nn.Conv1d(config.residual, config.gate, config.kernel, dilation=dilation)
        self.cond_global = nn.Conv1d(config.embed, config.gate, 1, bias=False)
        self.cond_local = nn.Conv1d(config.mel_features, config.gate, 1, bias=False) if config.mels else None
        self.cond_source = nn.Conv1d(2 * config.harmonics, config.gate, 1, bias=False) if config.harmonics else None
        self.res = nn.Conv1d(config.gate // 2, config.residual, 1)
        self.skip = nn.Conv1d(config.gate // 2, config.skip, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor, c: torch.Tensor | None,
                s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, R, T); g (B, E, T) or (B, E, 1); c (B, mel_features, T) or None; s (B, 2H, T) or None
        a = self.conv(F.pad(x, (self.pad, 0))) + self.cond_global(g)  # (B, G, T)
        if c is not None:
            a = a + self.cond_local(c)
        if s is not None:
            a = a + self.cond_source(s)
        tanh_half, sigmoid_half = a.chunk(2, dim=1)
        z = torch.tanh(tanh_half) * torch.sigmoid(sigmoid_half)  # (B, G/2, T)
        return (self.res(z) + x) * SQRT_HALF, self.skip(z)


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        self.first = nn.Conv1d(config.classes, config.residual, 1)  # on one-hot codes
        self.layers = nn.ModuleList(ResidualLayer(config, d) for d in config.dilations)
        self.post1 = nn.Conv1d(config.skip, config.skip, 1)
        self.post2 = nn.Conv1d(config.skip, config.classes, 1)
        self.instrument_embed = nn.Embedding(len(config.instruments), config.embed)
        self.pitch_embed = nn.Embedding(config.pitches, config.embed)
        nn.init.normal_(self.instrument_embed.weight, std=0.5)
        nn.init.normal_(self.pitch_embed.weight, std=0.5)
        self.mel_conv = nn.Conv1d(config.mels, config.mel_features, 3, padding=1) if config.mels else None

    # conditioning ----------------------------------------------------------------------------
    def global_vector(self, instrument: int | torch.Tensor, pitch: int | torch.Tensor) -> torch.Tensor:
        """Instrument and pitch ids (B,) -> (B, E) conditioning vectors."""
        device = self.pitch_embed.weight.device
        instrument = torch.as_tensor(instrument, device=device).reshape(-1)
        pitch = torch.as_tensor(pitch, device=device).reshape(-1)
        return self.instrument_embed(instrument) + self.pitch_embed(pitch)

    def instrument_index(self, name: str) -> int:
        try:
            return self.config.instruments.index(name)
        except ValueError:
            known = ", ".join(self.config.instruments)
            raise ValueError(f"this model knows no instrument {name!r} (it knows: {known})") from None

    def frame_features(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, mels, F) -> local conditioning frames (B, mel_features, F)."""
        return torch.tanh(self.mel_conv(mel))

    def upsample(self, frames: torch.Tensor, n: int) -> torch.Tensor:
        """(B, D, F) frames -> (B, D, n) per-sample features by linear interpolation."""
        index, weight = upsample_weights(n, frames.shape[-1], self.config.mel_hop)
        index = torch.from_numpy(index).to(frames.device)
        nxt = torch.clamp(index + 1, max=frames.shape[-1] - 1)
        weight = torch.from_numpy(weight).to(frames)
        here = frames[:, :, index]
        return here + weight * (frames[:, :, nxt] - here)

    # training forward ---------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor, g: torch.Tensor, c: torch.Tensor | None = None,
                s: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, T) codes of samples t - 1; g (B, E, T|1); c (B, mel_features, T); s (B, 2H, T)
        -> logits (B, C, T)."""
        weight = self.first.weight[:, :, 0]  # (R, C)
        x = (F.embedding(inputs, weight.t()) + self.first.bias).transpose(1, 2)  # (B, R, T)
        skips = 0
        for layer in self.layers:
            x, skip = layer(x, g, c, s)
            skips = skips + skip  # (B, S, T)
        return self.post2(F.relu(self.post1(F.relu(skips))))

    def source(self, pitch: torch.Tensor, times: torch.Tensor) -> torch.Tensor | None:
        """The pitch source (B, 2H, T) for pitches (B,) at sample indices times (B, T); None if unused."""
        if not self.config.harmonics:
            return None
        omega = pitch_omega(torch.as_tensor(pitch, dtype=torch.float64), self.config.rate)
        return source_signal(omega, times, self.config.harmonics).to(self.pitch_embed.weight)

    def loss(self, audio_codes: torch.Tensor, instrument: torch.Tensor, pitch: torch.Tensor,
             mel: torch.Tensor | None = None, mel_mask: torch.Tensor | None = None,
             start: torch.Tensor | None = None) -> torch.Tensor:
        """Mean NLL in nats per sample of ``audio_codes`` (B, T).

        mel (B, mels, F) covers the crop, frame f centred on its sample f * hop; mel_mask (B,)
        of 0/1 drops it per example (the model then learns to work without it, too). start (B,):
        where each crop begins in its clip (the pitch source's clock starts at the clip's start).
        """
        silence = torch.full_like(audio_codes[:, :1], silence_code(self.config.classes))
        inputs = torch.cat([silence, audio_codes[:, :-1]], dim=1)  # (B, T)
        g = self.global_vector(instrument, pitch)[:, :, None]  # (B, E, 1)
        c = None
        if mel is not None and self.mel_conv is not None:
            c = self.upsample(self.frame_features(mel), audio_codes.shape[1])  # (B, D, T)
            if mel_mask is not None:
                c = c * mel_mask.to(c)[:, None, None]
        offset = torch.zeros_like(pitch) if start is None else start
        s = self.source(pitch, offset[:, None] + torch.arange(audio_codes.shape[1], device=offset.device)[None])
        logits = self(inputs, g, c, s)  # (B, C, T)
        return F.cross_entropy(logits, audio_codes)

    # generation: the reference paths -------------------------------------------------------------
    def _per_sample_conditioning(self, plan: GenerationPlan, n: int) -> tuple:
        weight = self.pitch_embed.weight
        v = torch.as_tensor(plan.vectors, dtype=weight.dtype)  # (B, 2, E)
        mix = torch.as_tensor(plan.mix[:, :n], dtype=weight.dtype)[:, None, :]  # (B, 1, n)
        g = v[:, 0, :, None] + mix * (v[:, 1, :, None] - v[:, 0, :, None])  # (B, E, n)
        c = None
        if plan.frames is not None:
            c = self.upsample(torch.as_tensor(plan.frames, dtype=weight.dtype), n)  # (B, D, n)
        s = None
        if self.config.harmonics:
            times = (plan.time_offset + torch.arange(n, dtype=torch.float64))[None].expand(plan.takes, n)
            s = source_signal(torch.from_numpy(plan.omega), times, self.config.harmonics).to(weight)  # (B, 2H, n)
        return g, c, s

    @torch.no_grad()
    def sample_naive(self, plan: GenerationPlan) -> np.ndarray:
        """(B, n) codes: one full forward pass over all samples so far, per new sample."""
        takes, n = plan.uniforms.shape
        g, c, s = self._per_sample_conditioning(plan, n)
        codes = np.zeros((takes, n), dtype=np.int64)
        inputs = torch.full((takes, n), silence_code(self.config.classes), dtype=torch.long)
        for t in range(n):
            logits = self(inputs[:, : t + 1], g[:, :, : t + 1], None if c is None else c[:, :, : t + 1],
                          None if s is None else s[:, :, : t + 1])
            last = logits[:, :, t].double().numpy()  # (B, C)
            for b in range(takes):
                forced = plan.forced[b, t] if plan.forced is not None else -1
                codes[b, t] = forced if forced >= 0 else sample_from_logits(last[b], plan.uniforms[b, t], plan.temperature)
            if t + 1 < n:
                inputs[:, t + 1] = torch.from_numpy(codes[:, t])
        return codes

    @torch.no_grad()
    def sample_cached_torch(self, plan: GenerationPlan) -> np.ndarray:
        """(B, n) codes with per-layer queues: one step through the stack per sample, in torch."""
        cfg = self.config
        takes, n = plan.uniforms.shape
        g, c, s = self._per_sample_conditioning(plan, n)
        k = cfg.kernel
        first = self.first.weight[:, :, 0].t()  # (C, R)
        convs = [layer.conv.weight.permute(0, 2, 1).reshape(cfg.gate, -1) for layer in self.layers]  # (G, k*R)
        queues = [torch.zeros(takes, (k - 1) * layer.dilation + 1, cfg.residual, dtype=first.dtype)
                  for layer in self.layers]  # (B, span + 1, R) ring buffers; slot = time % (span + 1)
        codes = np.zeros((takes, n), dtype=np.int64)
        previous = torch.full((takes,), silence_code(cfg.classes), dtype=torch.long)
        for t in range(n):
            x = first[previous] + self.first.bias  # (B, R)
            skips = 0
            for layer, conv, queue in zip(self.layers, convs, queues):
                size = queue.shape[1]
                queue[:, t % size] = x
                slots = [(t - (k - 1 - j) * layer.dilation) % size for j in range(k)]  # oldest first
                taps = queue[:, slots].reshape(takes, -1)  # (B, k*R)
                a = F.linear(taps, conv, layer.conv.bias) + F.linear(g[:, :, t], layer.cond_global.weight[:, :, 0])
                if c is not None:
                    a = a + F.linear(c[:, :, t], layer.cond_local.weight[:, :, 0])
                if s is not None:
                    a = a + F.linear(s[:, :, t], layer.cond_source.weight[:, :, 0])
                tanh_half, sigmoid_half = a.chunk(2, dim=1)
                z = torch.tanh(tanh_half) * torch.sigmoid(sigmoid_half)  # (B, G/2)
                skips = skips + F.linear(z, layer.skip.weight[:, :, 0], layer.skip.bias)
                x = (F.linear(z, layer.res.weight[:, :, 0], layer.res.bias) + x) * SQRT_HALF
            h = F.relu(F.linear(F.relu(skips), self.post1.weight[:, :, 0], self.post1.bias))
            logits = F.linear(h, self.post2.weight[:, :, 0], self.post2.bias).double().numpy()  # (B, C)
            for b in range(takes):
                forced = plan.forced[b, t] if plan.forced is not None else -1
                codes[b, t] = forced if forced >= 0 else sample_from_logits(logits[b], plan.uniforms[b, t], plan.temperature)
            previous = torch.from_numpy(codes[:, t])
        return codes

    # generation: the fast path ----------------------------------------------------------------
    def fast_generator(self, plan: GenerationPlan, dtype=np.float32, threads: int | None = None):
        from plugins.wavenet.fastgen import FastGenerator

        return FastGenerator(self, plan, dtype=dtype, threads=threads)

    def sample(self, plan: GenerationPlan, chunk: int = 1600, dtype=np.float32,
               threads: int | None = None) -> Iterator[np.ndarray]:
        """Fast generation in chunks: yields (B, chunk) codes as they are written."""
        generator = self.fast_generator(plan, dtype=dtype, threads=threads)
        while generator.position < generator.length:
            yield generator.run(chunk)

    def gate_bias_table(self, vectors: np.ndarray) -> np.ndarray:
        """Global vectors (..., E) -> per-layer gate bias (..., L, G): conv bias + W_g v."""
        with torch.no_grad():
            v = torch.as_tensor(vectors, dtype=self.pitch_embed.weight.dtype)
            rows = [layer.conv.bias + F.linear(v, layer.cond_global.weight[:, :, 0]) for layer in self.layers]
            return torch.stack(rows, dim=-2).numpy()

    def local_bias_table(self, frames: np.ndarray) -> np.ndarray:
        """Frame features (B, D, F) -> per-layer local gate bias (B, F, L, G)."""
        with torch.no_grad():
            c = torch.as_tensor(frames, dtype=self.pitch_embed.weight.dtype).transpose(1, 2)  # (B, F, D)
            rows = [F.linear(c, layer.cond_local.weight[:, :, 0]) for layer in self.layers]
            return torch.stack(rows, dim=-2).numpy()

    # building a plan ----------------------------------------------------------------------------
    def plan(self, takes: int, n: int, instrument: list[int] | int, pitch: list[int] | int, *,
             seed: int = 0, temperature: float = 1.0, morph_to: list[int] | int | None = None,
             mix: np.ndarray | float | None = None, mel: np.ndarray | None = None,
             prefix: np.ndarray | None = None, time_offset: int = 0) -> GenerationPlan:
        """Everything to generate ``takes`` x ``n`` codes.

        instrument / pitch / morph_to: one per take or one for all. ``mix`` (n,) or (B, n) or a
        number: the weight toward ``morph_to`` per sample. ``mel`` (mels, F): local conditioning.
        ``prefix`` (p,) codes: the first p samples are given (forced), not drawn. ``time_offset``:
        the sample index of the plan's first sample in the note (the pitch source's clock).
        """
        def per_take(value) -> np.ndarray:
            return np.broadcast_to(np.asarray(value, dtype=np.int64).reshape(-1), (takes,))

        inst, pitches = per_take(instrument), per_take(pitch)
        target = per_take(morph_to) if morph_to is not None else inst
        with torch.no_grad():
            v0 = self.global_vector(torch.from_numpy(inst.copy()), torch.from_numpy(pitches.copy()))
            v1 = self.global_vector(torch.from_numpy(target.copy()), torch.from_numpy(pitches.copy()))
            vectors = torch.stack([v0, v1], dim=1).double().numpy()  # (B, 2, E)
        mix_array = np.zeros((takes, n)) if mix is None else np.broadcast_to(np.asarray(mix, np.float64), (takes, n))
        frames = None
        if mel is not None:
            if self.mel_conv is None:
                raise ValueError("this model has no local conditioning, so it cannot resynthesize")
            with torch.no_grad():
                f = self.frame_features(torch.as_tensor(mel, dtype=self.pitch_embed.weight.dtype)[None])
            frames = np.repeat(f.double().numpy(), takes, axis=0)  # (B, D, F)
        forced = None
        if prefix is not None and len(prefix):
            forced = np.full((takes, n), -1, dtype=np.int64)
            forced[:, : len(prefix)] = np.asarray(prefix)[None, :n]
        uniforms = np.random.default_rng(seed).random((takes, n))
        omega = pitch_omega(pitches.astype(np.float64), self.config.rate)  # (B,)
        return GenerationPlan(vectors, np.ascontiguousarray(mix_array), uniforms, float(temperature), frames, forced,
                              omega, int(time_offset))


@dataclass
class GenerationPlan:
    """The inputs of one generation, shared by the naive, torch-cached and fast paths."""

    vectors: np.ndarray  # (B, 2, E) global conditioning; g_t = v0 + mix_t * (v1 - v0)
    mix: np.ndarray  # (B, n) float
    uniforms: np.ndarray  # (B, n) in [0, 1): the draw for each sample
    temperature: float
    frames: np.ndarray | None = None  # (B, D, F) local conditioning frames, or None
    forced: np.ndarray | None = None  # (B, n) int: given codes (>= 0) or -1 to sample
    omega: np.ndarray | None = None  # (B,) pitch source frequency, radians per sample
    time_offset: int = 0  # sample index of step 0 in the note, for the pitch source

    @property
    def takes(self) -> int:
        return self.uniforms.shape[0]

    @property
    def length(self) -> int:
        return self.uniforms.shape[1]


# checkpoints ---------------------------------------------------------------------------------
def load(path: Path, device: str = "cpu") -> WaveNet:
    """A WaveNet from a checkpoint folder (config.json + model.safetensors)."""
    import json

    from studio.core.checkpoints import CheckpointError, load_tensors

    path = Path(path)
    try:
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
        model = WaveNet(WaveNetConfig.from_dict(raw["model"]))
    except (OSError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise CheckpointError(f"{path}: not a WaveNet checkpoint ({exc})") from None
    try:
        model.load_state_dict(load_tensors(path, framework="torch"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the config ({str(exc)[:200]})") from None
    return model.eval()
