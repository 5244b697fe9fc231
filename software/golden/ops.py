"""Integer operators of the golden model (DESIGN section 2, notes 13.6-13.9), channels-last.

Feature maps are int arrays [N, H, W, C], vectors [N, F]. These functions *are* the specification of
the hardware's arithmetic; the simulator's host side calls them too (im2col, residual add, pooling),
so the RTL is checked against exactly this code.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..artifact import Add, AvgPool, GlobalAvgPool, InputSpec, MacLayer, MaxPool, Shortcut, TensorSpec
from ..formats import RequantSpec, normalize, quantize_activation, requantize

_CHUNK_ELEMENTS = 1 << 24  # im2col elements materialised at once (64 MiB of float32)


def quantize_input(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Float32 images [N, C, H, W] in the dataset's raw range -> signed integers [N, H, W, C].

    The same `normalize` and `quantize_activation` bodies run in the torch front end, in float32, so
    both sides see identical input codes."""
    x = np.asarray(images, dtype=np.float32)
    c = len(spec.mean)
    mean = np.asarray(spec.mean, np.float32).reshape(c, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(c, 1, 1)
    u = quantize_activation(normalize(x, mean, std), spec.tensor.fmt)
    return np.ascontiguousarray(u.astype(np.int32).transpose(0, 2, 3, 1)) if u.ndim == 4 else u.astype(np.int32)


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, K] with K ordered (c, kh, kw), PyTorch's `weight.reshape(R, -1)`
    order. Zero padding. The result keeps x's dtype."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # [N, OH, OW, C, kh, kw]
    n, oh, ow = win.shape[:3]
    return win.reshape(n, oh, ow, -1)


def _matmul_dtype(layer: MacLayer, src: TensorSpec) -> type:
    """Cheapest dtype whose matmul is exact: every partial sum is an integer bounded by
    K * max|v| * max|u|, and float32 (float64) represents all integers below 2^24 (2^53) exactly,
    so BLAS gives the exact integer result in any summation order."""
    bound = layer.k * int(layer.rows.qmax.max()) * src.fmt.max_abs
    if bound < 1 << 24:
        return np.float32
    if bound < 1 << 53:
        return np.float64
    return np.int64


def mac_accumulate(layer: MacLayer, x: np.ndarray, src: TensorSpec) -> np.ndarray:
    """`acc = bias + W x` for every output pixel: [N, OH, OW, R] (conv) or [N, R] (linear), int64."""
    dtype = _matmul_dtype(layer, src)
    wt = layer.values.T.astype(dtype)  # [K, R]
    bias = layer.rows.bias
    if layer.op == "linear":
        return (x.astype(dtype) @ wt).astype(np.int64) + bias
    n, h, w, c = x.shape
    oh = (h + 2 * layer.padding[0] - layer.kernel[0]) // layer.stride[0] + 1
    ow = (w + 2 * layer.padding[1] - layer.kernel[1]) // layer.stride[1] + 1
    out = np.empty((n, oh, ow, layer.r), np.int64)
    step = max(1, _CHUNK_ELEMENTS // (oh * ow * layer.k))
    xf = x.astype(dtype)
    for i in range(0, n, step):
        cols = im2col(xf[i : i + step], layer.kernel, layer.stride, layer.padding)
        out[i : i + step] = (cols.reshape(-1, layer.k) @ wt).reshape(-1, oh, ow, layer.r)
    out += bias
    return out


def mac_output(layer: MacLayer, acc: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """Per-row requantization of accumulators (rows on the last axis) to the layer's output codes."""
    o = layer.out.fmt
    return requantize(acc, layer.rows.m0, layer.rows.n, o.lo, o.hi, spec).astype(np.int32)


def residual_add(op: Add, a: np.ndarray, b: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """Each input requantized to the output scale (two roundings), then added and clamped."""
    o = op.out.fmt
    wide = np.iinfo(np.int64)
    ra = requantize(a, op.m0[0], op.n[0], wide.min, wide.max, spec)
    rb = requantize(b, op.m0[1], op.n[1], wide.min, wide.max, spec)
    return np.clip(ra + rb, o.lo, o.hi).astype(np.int32)


def shortcut(op: Shortcut, x: np.ndarray) -> np.ndarray:
    """ResNet option A: x[:, ::s, ::s] and zero channels before/after (no arithmetic)."""
    s = op.stride
    before, after = op.pad_channels
    return np.pad(x[:, ::s, ::s, :], ((0, 0), (0, 0), (0, 0), (before, after)))


def maxpool(op: MaxPool, x: np.ndarray, src: TensorSpec) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=src.fmt.lo)
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return win.max(axis=(-2, -1)).astype(np.int32)


def avgpool(op: AvgPool, x: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """int32 window sum, then requantization with M = s_in / (s_out * window)."""
    (kh, kw), (sh, sw) = op.kernel, op.stride
    win = sliding_window_view(x.astype(np.int64), (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    o = op.out.fmt
    return requantize(win.sum(axis=(-2, -1)), op.m0, op.n, o.lo, o.hi, spec).astype(np.int32)


def global_avgpool(op: GlobalAvgPool, x: np.ndarray, spec: RequantSpec) -> np.ndarray:
    """[N, H, W, C] -> [N, 1, 1, C]: sum over the map, requantize with M = s_in / (s_out * H * W)."""
    o = op.out.fmt
    total = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    return requantize(total, op.m0, op.n, o.lo, o.hi, spec).astype(np.int32)


def flatten(x: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> [N, C*H*W] in PyTorch's (c, h, w) order."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(x.shape[0], -1) if x.ndim == 4 else x
