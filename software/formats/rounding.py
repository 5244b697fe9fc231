"""Rounding conventions of the integer contract (DESIGN section 2)."""

from __future__ import annotations

import math
from typing import TypeVar

from ._xp import namespace

A = TypeVar("A")


def round_half_away(u: A) -> A:
    """`sign(u) * floor(|u| + 0.5)`, evaluated in the array's own float type.

    This exact expression (not `round()`, which ties to even) is the contract: NumPy and torch
    evaluate it bit-identically, so exported codes and fake-quant codes agree even where the float32
    addition `|u| + 0.5` itself rounds.
    """
    xp = namespace(u)
    return xp.sign(u) * xp.floor(xp.abs(u) + 0.5)


def round_half_away_int(x: float) -> int:
    """Scalar half-away rounding on Python floats (float64), for multipliers and biases."""
    n = math.floor(abs(x) + 0.5)
    return n if x >= 0 else -n
