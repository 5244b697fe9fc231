"""Activation formats: per-tensor scale, zero point 0, signed symmetric or unsigned (after ReLU)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ._xp import namespace
from .rounding import round_half_away

A = TypeVar("A")


@dataclass(frozen=True)
class ActFormat:
    bits: int
    signed: bool
    scale: float

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 16:
            raise ValueError(f"activation bits must be 2..16, got {self.bits}")
        if not self.scale > 0:
            raise ValueError(f"activation scale must be > 0, got {self.scale}")

    @property
    def lo(self) -> int:
        return -((1 << (self.bits - 1)) - 1) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_abs(self) -> int:
        return max(-self.lo, self.hi)


def quantize_activation(x: A, fmt: ActFormat) -> A:
    """`clamp(round_half_away(x / scale), lo, hi)`: one body for NumPy and torch."""
    xp = namespace(x)
    return xp.clip(round_half_away(x / fmt.scale), fmt.lo, fmt.hi)


def normalize(x: A, mean: A, std: A) -> A:
    """Input preprocessing `(x - mean) / std`, float32 element-wise, bit-identical in NumPy and torch
    (mean and std shaped to broadcast over channels)."""
    return (x - mean) / std
