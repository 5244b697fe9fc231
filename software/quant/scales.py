"""MSE-optimal scales (DESIGN section 2; notes/algorithms.md 9.2 and 13.3).

A coarse grid over clipping values picks the basin, then Lloyd iterations `s <- sum(x v)/sum(v v)`
(optimal scale for fixed codes, then nearest codes for that scale) descend to its minimum; each
step can only lower the error, and a row stops as soon as it does not. Works on rows of weights
(per-row scale for any level set) and on activation samples (one row).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..formats import ActFormat, RowFormat, quantize_activation, quantize_values

Encoder = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Clip candidates as fractions of max|x|: fine steps where weight rows land, geometric ones down to
# 1/512 for heavy-tailed activations whose best clip is far below their largest outlier.
GRID = np.unique(np.concatenate([np.geomspace(1 / 512, 0.3, 12), np.linspace(0.3, 1.0, 36)]))


def mse_scales(x: np.ndarray, encode: Encoder, qmax: float, iters: int = 50) -> np.ndarray:
    """Per-row scale minimising sum((x - s * encode(x, s))^2) for x [R, N]; rows of zeros get 1."""
    x = np.asarray(x, np.float64)
    amax = np.abs(x).max(axis=1)
    safe = np.where(amax > 0, amax, 1.0)

    def err(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = encode(x, s[:, None])
        return ((x - s[:, None] * v) ** 2).sum(axis=1), v

    best_s = safe / qmax
    best_e, _ = err(best_s)
    for frac in GRID[:-1]:
        s = safe * frac / qmax
        e, _ = err(s)
        better = e < best_e
        best_s, best_e = np.where(better, s, best_s), np.where(better, e, best_e)
    active = np.ones(len(x), bool)
    for _ in range(iters):
        _, v = err(best_s)
        vv = (v * v).sum(axis=1)
        s = np.where(vv > 0, (x * v).sum(axis=1) / np.where(vv > 0, vv, 1), best_s)
        e, _ = err(s)
        better = active & (e < best_e) & (s > 0)
        if not better.any():
            break
        best_s, best_e = np.where(better, s, best_s), np.where(better, e, best_e)
        active = better
    return np.where(amax > 0, best_s, 1.0)


def weight_scales(w: np.ndarray, fmt: RowFormat) -> np.ndarray:
    """float32 per-row scales of rows `w` [R, K] that all use `fmt`."""
    s = mse_scales(w, lambda x, s: quantize_values(x, s, fmt), fmt.qmax)
    return s.astype(np.float32)


def activation_scale(samples: np.ndarray, bits: int, signed: bool) -> float:
    """MSE-optimal per-tensor scale of an activation distribution (clipping and rounding noise)."""
    probe = ActFormat(bits, signed, 1.0)

    def encode(x: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.clip(np.sign(x / s) * np.floor(np.abs(x / s) + 0.5), probe.lo, probe.hi)

    x = np.asarray(samples, np.float64).reshape(1, -1)
    if not signed:
        x = np.maximum(x, 0)
    return float(np.float32(mse_scales(x, encode, probe.hi)[0]))


def range_scale(max_abs: float, bits: int, signed: bool) -> float:
    """Scale that represents [-max_abs, max_abs] (or [0, max_abs]) without clipping."""
    probe = ActFormat(bits, signed, 1.0)
    return float(np.float32(max_abs / probe.hi)) if max_abs > 0 else 1.0


__all__ = ["activation_scale", "mse_scales", "range_scale", "weight_scales", "quantize_activation"]
