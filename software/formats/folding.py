"""Batch-norm folding into per-row multipliers and integer biases (DESIGN section 2).

Per-row weight scales make the fold exact without touching codes: the BN gain goes into the row's
multiplier, the offset into its integer bias. A row with a negative gain is negated (its codes change
sign, flag `negated`) so every multiplier is positive and one unsigned-multiplier requant unit serves
all rows.

Real output of row r: `y_r = a_r * (s_x * scale_r * sum_k v_rk u_k) + o_r`, where `a_r` is the BN
gain (1 without BN) and `o_r = a_r * conv_bias_r + beta_r - a_r * mean_r` the affine offset. Then
`y_r = |a_r| s_x scale_r * (sum_k v'_rk u_k + o_r / (|a_r| s_x scale_r))` with `v' = sign(a_r) v`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .requant import DEFAULT_REQUANT, RequantSpec, quantize_multiplier
from .rounding import round_half_away_int


@dataclass(frozen=True)
class FoldedRows:
    negated: np.ndarray  # bool [R]
    multiplier: np.ndarray  # float64 [R], the real M_r > 0
    m0: np.ndarray  # int64 [R]
    n: np.ndarray  # int64 [R]
    bias: np.ndarray  # int64 [R]


class FoldError(ValueError):
    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row


def bn_affine(gamma, beta, mean, var, eps: float, conv_bias=None) -> tuple[np.ndarray, np.ndarray]:
    """Inference BN (and an optional conv bias before it) as `y = gain * z + offset` per row."""
    gain = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    b = 0.0 if conv_bias is None else np.asarray(conv_bias, np.float64)
    offset = np.asarray(beta, np.float64) + gain * (b - np.asarray(mean, np.float64))
    return gain, offset


def fold_rows(
    weight_scale: np.ndarray,
    s_in: float,
    s_out: float,
    gain: np.ndarray,
    offset: np.ndarray,
    spec: RequantSpec = DEFAULT_REQUANT,
) -> FoldedRows:
    """Multipliers (M0, n), integer biases and negation flags for every row of one layer."""
    weight_scale = np.asarray(weight_scale, np.float64)
    gain = np.broadcast_to(np.asarray(gain, np.float64), weight_scale.shape)
    offset = np.broadcast_to(np.asarray(offset, np.float64), weight_scale.shape)
    rows = weight_scale.shape[0]
    negated = gain < 0
    step = np.abs(gain) * s_in * weight_scale  # real value of one accumulator LSB, per row
    multiplier = step / s_out
    m0 = np.zeros(rows, np.int64)
    n = np.zeros(rows, np.int64)
    bias = np.zeros(rows, np.int64)
    for r in range(rows):
        if not (np.isfinite(step[r]) and step[r] > 0):
            raise FoldError(r, f"accumulator step |gain| * s_in * scale = {step[r]!r} must be finite and > 0")
        m0[r], n[r] = quantize_multiplier(float(multiplier[r]), spec)
        bias[r] = round_half_away_int(float(offset[r] / step[r]))
    return FoldedRows(negated=negated, multiplier=multiplier, m0=m0, n=n, bias=bias)


def negate_values(v: np.ndarray, negated: np.ndarray) -> np.ndarray:
    """Apply the per-row negation to integer values [R, K] (legal for both schemes: FIXED ranges are
    symmetric and SP2 flips its sign bit)."""
    return np.where(np.asarray(negated)[:, None], -v, v)
