"""Integer operators of the golden model (DESIGN section 2, notes 13.6-13.9), channels-last.

Feature maps are [N, H, W, C], vectors [N, F]. Values are integers; the hot path carries them in
float32 (exact below 2^24, and activations are at most 16-bit) because BLAS is where the speed is:
every partial sum of a MAC layer is an integer bounded by K * max|v| * max|u|, so a float32 (float64)
matmul is exact whenever that bound is below 2^24 (2^53), in any summation order; the artifact loader
guarantees it is below 2^31. Requant modes other than `single`, or products beyond 2^52, use the
int64 reference `formats.requantize`.

These functions *are* the specification of the hardware's arithmetic; the simulator's host side
calls them too (im2col, residual add, pooling), so the RTL is checked against exactly this code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..artifact import Add, AvgPool, GlobalAvgPool, InputSpec, MacLayer, MaxPool, Shortcut, TensorSpec
from .workspace import Workspace
from ..formats import (
    RequantSpec,
    add_code_table,
    float_requant_exact,
    float_requant_terms,
    normalize,
    quantize_activation,
    requantize,
    requantize_float,
)

# im2col elements per matmul chunk, so that a chunk's columns stay in cache (2 MiB of float32).
_CHUNK_COLUMNS = 1 << 19


def quantize_input(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Float32 images [N, C, H, W] in the dataset's raw range -> signed integer codes [N, H, W, C]
    (float32). The same `normalize` and `quantize_activation` bodies run in the torch front end."""
    x = np.asarray(images, dtype=np.float32)
    c = len(spec.mean)
    mean = np.asarray(spec.mean, np.float32).reshape(c, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(c, 1, 1)
    u = quantize_activation(normalize(x, mean, std), spec.tensor.fmt)
    return np.ascontiguousarray(u.transpose(0, 2, 3, 1)) if u.ndim == 4 else u


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, K] with K ordered (c, kh, kw), PyTorch's `weight.reshape(R, -1)`
    order: the activation vectors a MAC array consumes. Zero padding; keeps x's dtype."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # [N, OH, OW, C, kh, kw]
    n, oh, ow = win.shape[:3]
    return win.reshape(n, oh, ow, -1)


@dataclass(frozen=True)
class MacPlan:
    """How one MAC layer is evaluated exactly and fast: matmul dtype, weights in (kh, kw, c) column
    order (contiguous channel runs make the internal im2col cheap) and, when the float requant path
    is provably exact, its constants tiled over one output row (long inner loops for NumPy)."""

    dtype: type
    wt: np.ndarray  # [K, R], columns permuted to (kh, kw, c)
    m: np.ndarray | None  # M0 / 2^n per row, tiled over the output row; None: int64 requant
    c: np.ndarray | None  # bias * m + 1/2, tiled likewise


def plan(layer: MacLayer, src: TensorSpec, spec: RequantSpec) -> MacPlan:
    acc_bound = layer.k * int(layer.rows.qmax.max()) * src.fmt.max_abs  # < 2^31, checked on load
    dtype = np.float32 if acc_bound < 1 << 24 else np.float64
    v = layer.values
    if layer.op == "conv":
        c = layer.k // (layer.kernel[0] * layer.kernel[1])
        v = v.reshape(layer.r, c, *layer.kernel).transpose(0, 2, 3, 1).reshape(layer.r, -1)
    rows = layer.rows
    full_bound = acc_bound + int(np.abs(rows.bias).max())
    m = c_ = None
    if spec.mode == "single" and float_requant_exact(full_bound, rows.m0, rows.n):
        m, c_ = float_requant_terms(rows.m0, rows.n, rows.bias)
        if layer.op == "conv":
            width = layer.out.shape[2]
            m, c_ = np.tile(m, width), np.tile(c_, width)
    return MacPlan(dtype, np.ascontiguousarray(v.T.astype(dtype)), m, c_)


def _conv_chunks(layer: MacLayer, x: np.ndarray, p: MacPlan, ws: Workspace):
    """Yield (image slice, accumulators without bias [n, OH, OW * R]) chunk by chunk.

    A chunk is copied into a zero-bordered padded buffer; in it, the kw horizontal taps of a pixel
    are one contiguous run of kw * C values of the flattened row, so a strided window view copies
    every tap of the chunk in one call. Buffers are reused across chunks (fresh large temporaries
    cost a page fault per touch)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    n, h, w, c = x.shape
    oh, ow, r = layer.out.shape[1], layer.out.shape[2], layer.r
    hp, wp, width = h + 2 * ph, w + 2 * pw, kw * c
    stride1 = sh == 1 and kh > 1 and kw * c >= 32  # narrow taps make skinny, slow matmuls
    # Stride 1: copy only the kw horizontal taps of every padded row; the kh vertical taps of output
    # row y are rows y..y+kh-1 of that matrix, i.e. the same matrix offset by whole rows of ow
    # pixels, so kh matmuls on offset views accumulate the layer with 1/kh of im2col's copying.
    per_image = hp * ow * width if stride1 else oh * ow * layer.k
    step = min(n, max(1, _CHUNK_COLUMNS // per_image))
    key = (layer.name, id(p))
    xpad = ws.scratch((*key, "xpad"), (step, hp, wp, c), p.dtype, zeros=True)
    if stride1:
        wt = p.wt.reshape(kh, width, r)
        taps = ws.scratch((*key, "taps"), (step, hp, ow, width), p.dtype)
        acc = ws.scratch((*key, "acc"), (step * hp * ow, r), p.dtype)
        part = ws.scratch((*key, "part"), (step * hp * ow, r), p.dtype)
    else:
        cols = ws.scratch((*key, "cols"), (step, oh, ow, layer.k), p.dtype)
    for i in range(0, n, step):
        m = len(x[i : i + step])
        xp = xpad[:m]
        xp[:, ph : ph + h, pw : pw + w] = x[i : i + m]
        if stride1:
            windows = sliding_window_view(xp.reshape(m, hp, wp * c), width, axis=2)
            taps[:m] = windows[:, :, : (ow - 1) * sw * c + 1 : sw * c]
            flat = taps[:m].reshape(-1, width)
            rows = len(flat) - (kh - 1) * ow
            np.matmul(flat[:rows], wt[0], out=acc[:rows])
            for a in range(1, kh):
                np.matmul(flat[a * ow : a * ow + rows], wt[a], out=part[:rows])
                acc[:rows] += part[:rows]
            yield slice(i, i + m), acc[: m * hp * ow].reshape(m, hp, ow * r)[:, :oh]
        else:
            for a in range(kh):
                rows_a = xp[:, a : a + (oh - 1) * sh + 1 : sh].reshape(m, oh, wp * c)
                windows = sliding_window_view(rows_a, width, axis=2)
                cols[:m, ..., a * width : (a + 1) * width] = windows[:, :, : (ow - 1) * sw * c + 1 : sw * c]
            yield slice(i, i + m), (cols[:m].reshape(-1, layer.k) @ p.wt).reshape(m, oh, ow * r)


def _linear_chunks(layer: MacLayer, x: np.ndarray, p: MacPlan, ws: Workspace):
    step = max(1, _CHUNK_COLUMNS // layer.k)
    for i in range(0, len(x), step):
        yield slice(i, i + step), x[i : i + step].astype(p.dtype, copy=False) @ p.wt


def _chunks(layer: MacLayer, x: np.ndarray, p: MacPlan, ws: Workspace):
    return (_linear_chunks if layer.op == "linear" else _conv_chunks)(layer, x, p, ws)


def _out_shape(layer: MacLayer, n: int) -> tuple[int, ...]:
    return (n, *layer.out.shape[1:], layer.r) if layer.op == "conv" else (n, layer.r)


def _flat_rows(a: np.ndarray) -> np.ndarray:
    """[N, OH, OW, R] -> [N, OH, OW * R] (a view), the chunk layout."""
    return a.reshape(*a.shape[:2], -1) if a.ndim == 4 else a


def mac_accumulate(layer: MacLayer, x: np.ndarray, p: MacPlan) -> np.ndarray:
    """`acc = bias + W u` for every output pixel, int64: [N, OH, OW, R] (conv) or [N, R] (linear)."""
    out = np.empty(_out_shape(layer, len(x)), np.int64)
    flat = _flat_rows(out)
    for sl, acc in _chunks(layer, x, p, Workspace()):
        flat[sl] = acc
    out += layer.rows.bias
    return out


def mac_layer(layer: MacLayer, x: np.ndarray, p: MacPlan, spec: RequantSpec, acc_out: np.ndarray | None = None,
              ws: Workspace | None = None) -> np.ndarray:
    """The MAC layer's output codes (float32), requantized chunk by chunk while the accumulators are
    still in cache. `acc_out` (int64, shaped like the output) receives the accumulators if given."""
    o, rows = layer.out.fmt, layer.rows
    ws = ws or Workspace()
    out = ws.take(_out_shape(layer, len(x)))
    flat_out = _flat_rows(out)
    flat_acc = None if acc_out is None else _flat_rows(acc_out)
    bias = np.tile(rows.bias, flat_out.shape[-1] // layer.r)
    for sl, acc in _chunks(layer, x, p, ws):
        if flat_acc is not None:
            flat_acc[sl] = acc
            flat_acc[sl] += bias
        if p.m is not None:
            scratch = ws.scratch((layer.name, id(p), "requant"), acc.shape, np.float64)
            requantize_float(acc, p.m, p.c, o.lo, o.hi, out=flat_out[sl], scratch=scratch)
        else:
            a = acc.astype(np.int64) + bias
            flat_out[sl] = requantize(a, np.tile(rows.m0, len(bias) // layer.r), np.tile(rows.n, len(bias) // layer.r),
                                      o.lo, o.hi, spec)
    return out


def _rq(x: np.ndarray, m0: int, n: int, lo: int, hi: int, spec: RequantSpec) -> np.ndarray:
    """Requantize one integer tensor with one multiplier (float path when provably exact)."""
    if spec.mode == "single" and float_requant_exact(int(np.abs(x).max(initial=0)), m0, n):
        return requantize_float(x, *float_requant_terms(m0, n), lo, hi)
    return requantize(np.asarray(x).astype(np.int64), m0, n, lo, hi, spec).astype(np.float64)


def add_table(op: Add, a: TensorSpec, b: TensorSpec, spec: RequantSpec) -> np.ndarray:
    """The residual add of every pair of input codes, [codes of a, codes of b], from the int64
    reference (`formats.add_code_table`)."""
    o = op.out.fmt
    return add_code_table((a.fmt.lo, a.fmt.hi), (b.fmt.lo, b.fmt.hi), op.m0, op.n, (o.lo, o.hi), spec)


def residual_add(op: Add, a: np.ndarray, b: np.ndarray, src_a: TensorSpec, src_b: TensorSpec,
                 spec: RequantSpec, table: np.ndarray | None = None, ws: Workspace | None = None) -> np.ndarray:
    """Each input requantized to the output scale (two roundings, half up), then added and clamped."""
    if table is None:
        table = add_table(op, src_a, src_b, spec)
    ws = ws or Workspace()
    shape = np.shape(a)
    a = np.ascontiguousarray(a, np.float32).reshape(-1)
    b = np.ascontiguousarray(b, np.float32).reshape(-1)
    flat, out = table.ravel(), ws.take(shape)
    out_flat = out.reshape(-1)
    shift = np.float32(-src_a.fmt.lo * table.shape[1] - src_b.fmt.lo)
    step = 1 << 16  # blocks that stay in cache
    idx = ws.scratch(("add", "index"), (step,), np.float32)
    for i in range(0, len(a), step):
        j = idx[: len(a[i : i + step])]
        np.multiply(a[i : i + step], np.float32(table.shape[1]), out=j)
        j += b[i : i + step]
        j += shift
        np.take(flat, j.astype(np.int32), out=out_flat[i : i + step])
    return out


def shortcut(op: Shortcut, x: np.ndarray) -> np.ndarray:
    """ResNet option A: x[:, ::s, ::s] and zero channels before/after (no arithmetic)."""
    s = op.stride
    before, after = op.pad_channels
    return np.pad(x[:, ::s, ::s, :], ((0, 0), (0, 0), (0, 0), (before, after)))


def maxpool(op: MaxPool, x: np.ndarray, src: TensorSpec) -> np.ndarray:
    """Integer max; padding takes the input format's lowest code, so it never wins."""
    (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=src.fmt.lo)
    oh, ow = op.out.shape[1:]
    out = None
    for a in range(kh):  # one np.maximum per window tap: long contiguous loops, no reduction axes
        for b in range(kw):
            tap = x[:, a : a + (oh - 1) * sh + 1 : sh, b : b + (ow - 1) * sw + 1 : sw]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def avgpool(op: AvgPool, x: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """Exact window sum, then requantization with M = s_in / (s_out * window)."""
    (kh, kw), (sh, sw) = op.kernel, op.stride
    win = sliding_window_view(np.asarray(x, np.float64), (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    o = op.out.fmt
    return _rq(win.sum(axis=(-2, -1)), op.m0, op.n, o.lo, o.hi, spec).astype(np.float32)


def global_avgpool(op: GlobalAvgPool, x: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """[N, H, W, C] -> [N, 1, 1, C]: sum over the map, requantize with M = s_in / (s_out * H * W)."""
    o = op.out.fmt
    total = np.asarray(x, np.float64).sum(axis=(1, 2), keepdims=True)
    return _rq(total, op.m0, op.n, o.lo, o.hi, spec).astype(np.float32)


def flatten(x: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> [N, C*H*W] in PyTorch's (c, h, w) order."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(x.shape[0], -1) if x.ndim == 4 else x
