"""Weight number formats: FIXED-b and SP2-4 rows, their integer values and their codes.

A row's *value* v is the integer the MAC multiplies by; its *code* is the bit pattern stored and
decoded by hardware. Rows live in one of three storage groups, each with a fixed container width:
SP2 (4-bit SP2 codes), FIXED4 (FIXED-b, b <= 4, 4-bit two's complement) and FIXED8 (FIXED-b,
4 < b <= 8, 8-bit two's complement). A FIXED-b value sign-extended to its container is the same
integer, so b < 4 rows run on FIXED-4 lanes and 4 < b <= 8 rows on FIXED-8 lanes unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np

from ._xp import namespace
from .rounding import round_half_away

A = TypeVar("A")


class Scheme(enum.StrEnum):
    FIXED = "FIXED"
    SP2 = "SP2"


# Storage groups, in the order the artifact and the hardware list them, and their container widths.
GROUPS: tuple[str, ...] = ("SP2", "FIXED4", "FIXED8")
CONTAINER_BITS: dict[str, int] = {"SP2": 4, "FIXED4": 4, "FIXED8": 8}

# SP2-4 code [s | c1(2) | c2(1)] -> v = (-1)^s * ((c1 ? 1 << (3 - c1) : 0) + (c2 ? 4 : 0)).
SP2_VALUES = np.array([0, 4, 4, 8, 2, 6, 1, 5, 0, -4, -4, -8, -2, -6, -1, -5], dtype=np.int64)
SP2_LEVELS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 8)
# Canonical code per value (index v + 8): zero is 0b0000 and |v| = 4 uses c1 = 1, c2 = 0.
_SP2_CANONICAL = np.full(17, -1, dtype=np.int16)
for _code in range(15, -1, -1):  # descending, so the lowest code of each value wins
    _SP2_CANONICAL[SP2_VALUES[_code] + 8] = _code
_SP2_CANONICAL[4 + 8], _SP2_CANONICAL[-4 + 8] = 0b0010, 0b1010
SP2_CANONICAL_CODES = frozenset(int(c) for c in _SP2_CANONICAL if c >= 0)


@dataclass(frozen=True)
class RowFormat:
    """Scheme and precision of one weight row."""

    scheme: Scheme
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", Scheme(self.scheme))
        if self.scheme is Scheme.SP2 and self.bits != 4:
            raise ValueError(f"SP2 rows are 4-bit, got bits={self.bits}")
        if self.scheme is Scheme.FIXED and not 2 <= self.bits <= 8:
            raise ValueError(f"FIXED rows have 2..8 bits, got bits={self.bits}")

    @property
    def qmax(self) -> int:
        """Largest legal |v|."""
        return 8 if self.scheme is Scheme.SP2 else (1 << (self.bits - 1)) - 1

    @property
    def group(self) -> str:
        if self.scheme is Scheme.SP2:
            return "SP2"
        return "FIXED4" if self.bits <= 4 else "FIXED8"

    @property
    def container_bits(self) -> int:
        return CONTAINER_BITS[self.group]

    @cached_property
    def levels(self) -> tuple[int, ...]:
        """Non-negative magnitudes the row can take, ascending."""
        if self.scheme is Scheme.SP2:
            return SP2_LEVELS
        return tuple(range(self.qmax + 1))

    def __str__(self) -> str:
        return f"{self.scheme}-{self.bits}"


FIXED4 = RowFormat(Scheme.FIXED, 4)
FIXED8 = RowFormat(Scheme.FIXED, 8)
SP2_4 = RowFormat(Scheme.SP2, 4)


def quantize_values(w: A, scale: A | float, fmt: RowFormat) -> A:
    """The encoder: float weights -> integer values v (as floats of the input's type).

    One body for NumPy and torch. FIXED rounds half away from zero and clamps to the symmetric range;
    SP2 picks the nearest level, ties to the larger magnitude (each midpoint counts as reached).
    `scale` broadcasts against `w` (a per-row column for a [R, K] matrix).
    """
    xp = namespace(w)
    u = w / scale
    if fmt.scheme is Scheme.FIXED:
        return xp.clip(round_half_away(u), -fmt.qmax, fmt.qmax)
    m = xp.abs(u)
    mag = m * 0
    for lo, hi in zip(SP2_LEVELS[:-1], SP2_LEVELS[1:]):
        mag = xp.where(m >= (lo + hi) / 2, mag + (hi - lo), mag)
    return xp.sign(u) * mag


def values_to_codes(v: np.ndarray, fmt: RowFormat) -> np.ndarray:
    """Integer values -> canonical container codes (uint8). Raises on a value the format cannot hold."""
    v = np.asarray(v)
    vi = v.astype(np.int64)
    if not np.array_equal(vi, v):
        raise ValueError(f"{fmt} values must be integers")
    if fmt.scheme is Scheme.SP2:
        if vi.size and (vi.min() < -8 or vi.max() > 8):
            raise ValueError(f"SP2 value out of range: {vi.min()}..{vi.max()}")
        codes = _SP2_CANONICAL[vi + 8]
        if (codes < 0).any():
            bad = int(vi[codes < 0].flat[0])
            raise ValueError(f"{bad} is not an SP2-4 value (legal: +-{{0,1,2,4,5,6,8}})")
        return codes.astype(np.uint8)
    if vi.size and np.abs(vi).max() > fmt.qmax:
        raise ValueError(f"{fmt} value out of range +-{fmt.qmax}: {int(vi[np.abs(vi) > fmt.qmax].flat[0])}")
    return (vi & ((1 << fmt.container_bits) - 1)).astype(np.uint8)


def codes_to_values(codes: np.ndarray, group: str) -> np.ndarray:
    """Container codes of a storage group -> integer values (int64). Handles every code, legal or not."""
    codes = np.asarray(codes).astype(np.int64)
    if group == "SP2":
        return SP2_VALUES[codes & 0xF]
    width = CONTAINER_BITS[group]
    codes = codes & ((1 << width) - 1)
    return codes - ((codes >> (width - 1)) << width)


def illegal_value_mask(v: np.ndarray, fmt: RowFormat) -> np.ndarray:
    """True where a decoded value is outside the row format's legal set (for example the FIXED code
    -2^(b-1), which decodes as plain two's complement but is never exported)."""
    return np.abs(np.asarray(v)) > fmt.qmax
