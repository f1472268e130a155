"""Fast WaveNet generation: per-layer queues, fused weights, a numba-compiled loop.

Each new sample costs one step through the stack. Per layer and sample the kernel does one
matrix-vector product for the dilated conv (all taps at once, reading the layer's ring buffer
of past inputs; conv bias and global/local conditioning come from precomputed per-layer bias
tables), a small one for the pitch source, and one for the residual and skip 1x1 convs
together. Products are axpy loops over four weight rows at a time (output index innermost), so
LLVM vectorises them without reassociating any sum. Nothing is allocated per sample. Takes are
split into one group per thread (``prange``); within a group every weight row is loaded once
for all its takes. Sample t is drawn by inverse CDF from the pre-drawn uniform u[t], exactly
like the reference paths in model.py, so all paths give the same samples.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from plugins.wavenet.model import GenerationPlan, WaveNet, silence_code

SQRT_HALF = math.sqrt(0.5)


class FusedWeights:
    """The model's weights rearranged for the kernel, in one dtype (float32 or float64)."""

    def __init__(self, model: WaveNet, dtype=np.float32) -> None:
        import torch

        cfg = model.config
        self.config = cfg

        def arr(t) -> np.ndarray:
            return np.ascontiguousarray(t.detach().double().numpy(), dtype=dtype)

        with torch.no_grad():
            self.first = arr(model.first.weight[:, :, 0].t() + model.first.bias)  # (C, R): code -> input row
            self.conv = np.stack([arr(layer.conv.weight.permute(2, 1, 0).reshape(-1, cfg.gate))
                                  for layer in model.layers])  # (L, k*R, G), tap 0 = oldest
            self.res_skip = np.stack([arr(torch.cat([layer.res.weight[:, :, 0], layer.skip.weight[:, :, 0]]).t())
                                      for layer in model.layers])  # (L, G/2, R+S)
            self.res_skip_bias = np.stack([arr(torch.cat([layer.res.bias, layer.skip.bias]))
                                           for layer in model.layers])  # (L, R+S)
            self.post1 = arr(model.post1.weight[:, :, 0].t())  # (S, S) in x out
            self.post1_bias = arr(model.post1.bias)
            self.post2 = arr(model.post2.weight[:, :, 0].t())  # (S, C)
            self.post2_bias = arr(model.post2.bias)
            self.source = np.zeros((cfg.layers, 2 * cfg.harmonics, cfg.gate), dtype=dtype)  # (L, 2H, G)
            if cfg.harmonics:
                self.source = np.stack([arr(layer.cond_source.weight[:, :, 0].t()) for layer in model.layers])
        self.dilations = np.asarray(cfg.dilations, dtype=np.int64)  # (L,)
        self.spans = (cfg.kernel - 1) * self.dilations  # (L,) history slots per layer
        self.offsets = np.concatenate([[0], np.cumsum(self.spans)[:-1]]).astype(np.int64)  # (L,)
        self.history = int(self.spans.sum())
        self.dtype = dtype


class FastGenerator:
    """Generates a plan's takes chunk by chunk; the queues persist between chunks."""

    def __init__(self, model: WaveNet, plan: GenerationPlan, dtype=np.float32, threads: int | None = None) -> None:
        self.weights = w = FusedWeights(model, dtype)
        self.plan = plan
        takes, n = plan.takes, plan.length
        cfg = model.config
        self.gate_table = np.ascontiguousarray(model.gate_bias_table(plan.vectors), dtype=dtype)  # (B, 2, L, G)
        if plan.frames is not None:
            self.local_table = np.ascontiguousarray(model.local_bias_table(plan.frames), dtype=dtype)  # (B, F, L, G)
        else:
            self.local_table = np.zeros((takes, 0, cfg.layers, cfg.gate), dtype=dtype)
        self.mix = np.ascontiguousarray(plan.mix, dtype=dtype)
        self.omega = np.zeros(takes) if plan.omega is None else np.ascontiguousarray(plan.omega, dtype=np.float64)
        self.uniforms = np.ascontiguousarray(plan.uniforms, dtype=np.float64)
        self.forced = (np.full((takes, n), -1, np.int64) if plan.forced is None
                       else np.ascontiguousarray(plan.forced, np.int64))
        self.state = np.zeros((takes, w.history, cfg.residual), dtype=dtype)  # (B, slots, R)
        self.previous = np.full(takes, silence_code(cfg.classes), dtype=np.int64)
        self.codes = np.zeros((takes, n), dtype=np.int64)
        self.position = 0
        self.length = n
        self.threads = max(1, min(threads or numba.config.NUMBA_NUM_THREADS, takes, numba.config.NUMBA_NUM_THREADS))

    def run(self, count: int) -> np.ndarray:
        """Advance every take by up to ``count`` samples; returns their new codes (B, count')."""
        start, stop = self.position, min(self.position + count, self.length)
        w = self.weights
        numba.set_num_threads(self.threads)
        generate_steps(
            w.first, w.conv, w.res_skip, w.res_skip_bias, w.post1, w.post1_bias, w.post2, w.post2_bias,
            w.dilations, w.spans, w.offsets, self.gate_table, self.mix, self.local_table,
            self.weights.config.mel_hop, w.source, self.omega, self.plan.time_offset,
            self.uniforms, float(self.plan.temperature), self.forced,
            self.state, self.previous, self.codes, start, stop, self.threads,
        )
        self.position = stop
        return self.codes[:, start:stop]


@njit(cache=True, parallel=True)
def generate_steps(first, conv, res_skip, res_skip_bias, post1, post1_bias, post2, post2_bias,
                   dilations, spans, offsets, gate_table, mix, local_table, hop, source, omega, time_offset,
                   uniforms, temperature, forced, state, previous, codes, start, stop, groups):
    """Steps start..stop of every take. Takes are independent: ``groups`` contiguous groups run
    in parallel, and the takes of one group share each weight load (the sums stay per take)."""
    takes = state.shape[0]
    for g in prange(groups):
        _run_group(first, conv, res_skip, res_skip_bias, post1, post1_bias, post2, post2_bias,
                   dilations, spans, offsets, gate_table, mix, local_table, hop, source, omega, time_offset,
                   uniforms, temperature, forced, state, previous, codes, start, stop,
                   g * takes // groups, (g + 1) * takes // groups)


@njit(cache=True, fastmath=False, boundscheck=False)
def _run_group(first, conv, res_skip, res_skip_bias, post1, post1_bias, post2, post2_bias,
               dilations, spans, offsets, gate_table, mix, local_table, hop, source, omega, time_offset,
               uniforms, temperature, forced, history, previous, codes, start, stop, lo, hi):
    layers, taps_r, gate = conv.shape
    residual = first.shape[1]
    kernel = taps_r // residual
    half = gate // 2
    rs_width = res_skip.shape[2]
    skip = rs_width - residual
    classes = post2.shape[1]
    frames = local_table.shape[1]
    dtype = first.dtype
    nb = hi - lo
    x = np.empty((nb, residual), dtype)
    a = np.empty((nb, gate), dtype)
    z = np.empty((nb, half), dtype)
    rs = np.empty((nb, rs_width), dtype)
    skips = np.empty((nb, skip), dtype)
    hidden = np.empty((nb, skip), dtype)
    scores = np.empty((nb, classes), dtype)
    logits = np.empty(classes, np.float64)
    taps = np.empty((nb, taps_r), dtype)
    harmonics = source.shape[1] // 2
    src = np.empty((nb, 2 * harmonics), dtype)
    prev = previous[lo:hi].copy()
    for t in range(start, stop):
        need_output = False
        for b in range(nb):
            need_output = need_output or forced[lo + b, t] < 0
        frame = min(t // hop, frames - 1) if frames > 0 else 0
        frame_w = 0.0
        if frames > 0 and t // hop < frames - 1:
            frame_w = (t % hop) / hop
        for b in range(nb):
            for i in range(residual):
                x[b, i] = first[prev[b], i]
        skips[:] = 0.0
        width = rs_width if need_output else residual
        for b in range(nb):
            _source(src[b], omega[lo + b], float(time_offset + t), harmonics)
        for layer in range(layers):
            d = dilations[layer]
            span = spans[layer]
            base = offsets[layer]
            for b in range(nb):
                g0 = gate_table[lo + b, 0, layer]
                g1 = gate_table[lo + b, 1, layer]
                m = mix[lo + b, t]
                for o in range(gate):
                    a[b, o] = g0[o] + m * (g1[o] - g0[o])
                if frames > 0:
                    l0 = local_table[lo + b, frame, layer]
                    l1 = local_table[lo + b, min(frame + 1, frames - 1), layer]
                    for o in range(gate):
                        a[b, o] += l0[o] + frame_w * (l1[o] - l0[o])
                hb = history[lo + b]
                for j in range(kernel - 1):  # past taps: time t - (kernel - 1 - j) * d
                    slot = base + (t - (kernel - 1 - j) * d) % span
                    for i in range(residual):
                        taps[b, j * residual + i] = hb[slot, i]
                slot = base + t % span
                for i in range(residual):  # the current tap, then it joins the history
                    taps[b, (kernel - 1) * residual + i] = x[b, i]
                    hb[slot, i] = x[b, i]
            if harmonics:
                _add_matmat(a, source[layer], src, gate)
            _add_matmat(a, conv[layer], taps, gate)
            for b in range(nb):
                for o in range(half):
                    z[b, o] = math.tanh(a[b, o]) * (1.0 / (1.0 + math.exp(-a[b, o + half])))
                for o in range(width):
                    rs[b, o] = res_skip_bias[layer, o]
            _add_matmat(rs, res_skip[layer], z, width)
            for b in range(nb):
                for i in range(residual):
                    x[b, i] = (rs[b, i] + x[b, i]) * SQRT_HALF
                if need_output:
                    for o in range(skip):
                        skips[b, o] += rs[b, residual + o]
        if need_output:
            for b in range(nb):
                for o in range(skip):
                    hidden[b, o] = post1_bias[o]
                    skips[b, o] = max(skips[b, o], 0.0)
            _add_matmat(hidden, post1, skips, skip)
            for b in range(nb):
                for o in range(classes):
                    scores[b, o] = post2_bias[o]
                for o in range(skip):
                    hidden[b, o] = max(hidden[b, o], 0.0)
            _add_matmat(scores, post2, hidden, classes)
        for b in range(nb):
            given = forced[lo + b, t]
            if given >= 0:
                prev[b] = given
            else:
                for o in range(classes):
                    logits[o] = scores[b, o]
                prev[b] = _draw(logits, uniforms[lo + b, t], temperature)
            codes[lo + b, t] = prev[b]
    previous[lo:hi] = prev


@njit(cache=True, inline="always", boundscheck=False)
def _add_matmat(out, w, v, width):
    """out[b, :width] += v[b] @ w[:, :width] for every row b, four rows of w per pass, each
    loaded once for all b; every out[b, o] gets the same sums in the same order as alone."""
    rows = v.shape[1]
    i = 0
    while i + 4 <= rows:
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        for b in range(v.shape[0]):
            v0, v1, v2, v3 = v[b, i], v[b, i + 1], v[b, i + 2], v[b, i + 3]
            ob = out[b]
            for o in range(width):
                ob[o] = ob[o] + w0[o] * v0 + w1[o] * v1 + w2[o] * v2 + w3[o] * v3
        i += 4
    while i < rows:
        wi = w[i]
        for b in range(v.shape[0]):
            vi = v[b, i]
            ob = out[b]
            for o in range(width):
                ob[o] += wi[o] * vi
        i += 1


@njit(cache=True, inline="always")
def _source(out, omega, time, harmonics):
    """The pitch source at one sample: sin then cos of k * omega * time; model.source_signal's formula."""
    for k in range(1, harmonics + 1):
        audible = k * omega < math.pi
        arg = (k * omega) * time
        out[k - 1] = math.sin(arg) if audible else 0.0
        out[harmonics + k - 1] = math.cos(arg) if audible else 0.0


@njit(cache=True)
def _draw(logits, uniform, temperature):
    """Inverse-CDF draw; model.sample_from_logits is the same algorithm."""
    classes = logits.shape[0]
    top = 0
    for c in range(1, classes):
        if logits[c] > logits[top]:
            top = c
    if temperature <= 0.0:
        return top
    peak = logits[top]
    total = 0.0
    for c in range(classes):
        logits[c] = total + math.exp((logits[c] - peak) / temperature)  # becomes the running CDF
        total = logits[c]
    target = uniform * total
    for c in range(classes):
        if logits[c] > target:
            return c
    return classes - 1
