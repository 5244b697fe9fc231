"""Integer requantization: acc (int32) -> output code, in the three modes of DESIGN section 2.

- `single`, m_bits 16 (default, what the FPGA implements): `M0 = round_half_away(q * 2^16)`,
  `y = clamp((acc * M0 + 2^(n-1)) >> n, lo, hi)` with an arithmetic (floor) shift.
- `single`, m_bits 31: the same formula with a 31-bit multiplier, bit-exact with TFLite's
  TFLITE_SINGLE_ROUNDING kernels.
- `tflite_double`: gemmlowp/TFLite default, SaturatingRoundingDoublingHighMul then
  RoundingDivideByPOT (two roundings, both half away from zero).

Every mode stores its multiplier as (M0, n) with n the total right shift, so the artifact has one
row-table layout; for `tflite_double`, TFLite's `shift` is `31 - n`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .rounding import round_half_away_int

MODES = ("single", "tflite_double")
N_MIN, N_MAX = 1, 62


@dataclass(frozen=True)
class RequantSpec:
    mode: Literal["single", "tflite_double"] = "single"
    m_bits: int = 16

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown requant mode {self.mode!r} (known: {', '.join(MODES)})")
        if self.mode == "tflite_double" and self.m_bits != 31:
            raise ValueError("tflite_double uses a 31-bit multiplier (m_bits=31)")
        if self.mode == "single" and self.m_bits not in (16, 31):
            raise ValueError(f"single mode supports m_bits 16 or 31, got {self.m_bits}")

    @property
    def m0_range(self) -> tuple[int, int]:
        """Legal non-zero M0 values, inclusive (M0 = 0 flushes a row to zero)."""
        return 1 << (self.m_bits - 1), (1 << self.m_bits) - 1


DEFAULT_REQUANT = RequantSpec()


class MultiplierError(ValueError):
    pass


def quantize_multiplier(m: float, spec: RequantSpec = DEFAULT_REQUANT) -> tuple[int, int]:
    """Real multiplier M >= 0 -> (M0, n) with M ~= M0 / 2^n, M0 in [2^(m_bits-1), 2^m_bits).

    Multipliers too small for n <= 62 flush to (0, 1) (output 0), as TFLite flushes shift < -31;
    multipliers so large that n < 1 are rejected (the layer's scales are inconsistent).
    """
    if not math.isfinite(m) or m < 0:
        raise MultiplierError(f"multiplier must be finite and >= 0, got {m!r}")
    if m == 0:
        return 0, 1
    q, e = math.frexp(m)
    m0 = round_half_away_int(q * (1 << spec.m_bits))
    if m0 == 1 << spec.m_bits:
        m0, e = m0 >> 1, e + 1
    n = spec.m_bits - e
    if n > N_MAX:
        return 0, 1
    if n < N_MIN:
        raise MultiplierError(f"multiplier {m:.6g} is too large (needs right shift n={n} < 1)")
    return m0, n


def requantize(
    acc: np.ndarray,
    m0: np.ndarray | int,
    n: np.ndarray | int,
    lo: int,
    hi: int,
    spec: RequantSpec = DEFAULT_REQUANT,
) -> np.ndarray:
    """Vectorised requantization; `m0` and `n` broadcast against `acc` (per row on the last axis).

    `acc` must fit int32 (the exporter's static bound guarantees it); the product is formed in int64,
    which holds |acc * M0| < 2^62 for every mode.
    """
    acc = np.asarray(acc, dtype=np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    if spec.mode == "single":
        y = (acc * m0 + (np.int64(1) << (n - 1))) >> n
    else:
        y = _tflite_double(acc, m0, n)
    return np.clip(y, lo, hi)


def add_code_table(a: tuple[int, int], b: tuple[int, int], m0: tuple[int, int], n: tuple[int, int],
                   out: tuple[int, int], spec: RequantSpec = DEFAULT_REQUANT) -> np.ndarray:
    """The residual add of every pair of input codes (code ranges `a`, `b` as (lo, hi)), float32
    [codes of a, codes of b]: each input requantized to the output scale with its multiplier
    (m0[i], n[i]), then added and clamped to `out`. Inputs are at most 16-bit codes, so a table
    replaces all per-element arithmetic (golden model, and the fake-quant network of an artifact)."""
    ua = np.arange(a[0], a[1] + 1, dtype=np.int64)[:, None]
    ub = np.arange(b[0], b[1] + 1, dtype=np.int64)[None, :]
    big = np.iinfo(np.int64)
    summed = requantize(ua, m0[0], n[0], big.min, big.max, spec) + requantize(ub, m0[1], n[1], big.min, big.max, spec)
    return np.clip(summed, out[0], out[1]).astype(np.float32)


# The golden model's hot path evaluates `single`-mode requantization in float64 as
# `floor(acc * m + c)` with `m = M0 / 2^n` and `c = bias * m + 1/2`. That equals the int64 reference
# whenever every |(acc + bias) * M0| < 2^52 and n <= 52: m is exact (a <= 31-bit significand times a
# power of two), products and sums of such values stay integers times 2^-n below 2^(52-n), so they
# need at most 53 significand bits and every float operation is exact.
FLOAT_EXACT_PRODUCT = 1 << 52
FLOAT_EXACT_SHIFT = 52


def float_requant_exact(acc_bound: int, m0: np.ndarray, n: np.ndarray) -> bool:
    """Whether `requantize_float` is exact for accumulators (bias included) with |acc| <= acc_bound."""
    m0, n = np.asarray(m0), np.asarray(n)
    return bool(acc_bound * int(m0.max(initial=0)) < FLOAT_EXACT_PRODUCT and n.max(initial=1) <= FLOAT_EXACT_SHIFT)


def float_requant_terms(m0: np.ndarray | int, n: np.ndarray | int, bias: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(m, c) = (M0 / 2^n, bias * m + 1/2) in float64, the constants of `requantize_float`."""
    m = np.ldexp(np.asarray(m0, np.float64), -np.asarray(n, np.int64))
    return m, np.asarray(bias, np.float64) * m + 0.5


def requantize_float(
    acc: np.ndarray, m: np.ndarray, c: np.ndarray, lo: int, hi: int,
    out: np.ndarray | None = None, scratch: np.ndarray | None = None,
) -> np.ndarray:
    """`requantize(acc + bias, M0, n, lo, hi)` for `single` mode as `clip(floor(acc * m + c))` in
    float64, with (m, c) from `float_requant_terms`; valid when `float_requant_exact` holds. Four
    passes instead of an int64 round trip (BLAS hands back floats). m and c broadcast against acc.
    Writes into `out` (any float dtype) if given, using `scratch` (float64, acc's shape) if given."""
    t = np.multiply(acc, m, dtype=np.float64, out=scratch)
    t += c
    out = np.floor(t, out=t if out is None else out)
    return np.clip(out, lo, hi, out=out)


def _tflite_double(acc: np.ndarray, m0: np.ndarray, n: np.ndarray) -> np.ndarray:
    shift = 31 - n
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = acc << left
    if ((x > np.iinfo(np.int32).max) | (x < np.iinfo(np.int32).min)).any():
        raise OverflowError("tflite_double: acc << left_shift leaves int32")
    # SaturatingRoundingDoublingHighMul; M0 > 0, so the INT32_MIN * INT32_MIN saturation never occurs.
    ab = x * m0
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    t = ab + nudge
    high = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C++ integer division truncates toward zero
    # RoundingDivideByPOT: round half away from zero.
    mask = (np.int64(1) << right) - 1
    rem = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (rem > threshold)
