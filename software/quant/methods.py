"""Row-assignment methods of the first front end: which format each output row gets.

`fixed` (every row FIXED-b), `sp2` (every row SP2-4) and `mixed` (SP2 : FIXED-4 : FIXED-8 by a ratio,
the same in every layer, rows ranked by weight variance: the highest-variance rows become FIXED-8,
the lowest-variance rows SP2, the rest FIXED-4; Hessian-based ranking arrives with RMSMP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import RowmixError
from ..formats import FIXED4, FIXED8, SP2_4, RowFormat, Scheme


@dataclass(frozen=True)
class Ratio:
    """Target row shares in percent: SP2 : FIXED-4 : FIXED-8."""

    sp2: float
    fixed4: float
    fixed8: float
    source: str = "user"

    @classmethod
    def parse(cls, text: str, source: str = "user") -> "Ratio":
        parts = text.split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
            raise RowmixError(f"ratio {text!r} must be three non-negative numbers SP2:FIXED4:FIXED8, e.g. 65:30:5")
        if abs(sum(values) - 100) > 1e-9:
            raise RowmixError(f"ratio {text!r} must sum to 100 (it sums to {sum(values):g})")
        return cls(*values, source=source)

    def counts(self, rows: int) -> tuple[int, int, int]:
        """Rows per group (SP2, FIXED4, FIXED8) for a layer of `rows` rows: FIXED-8 rounds half up
        with at least one row when its share is non-zero, SP2 rounds half up, FIXED-4 takes the rest."""
        half_up = lambda x: math.floor(x + 0.5)  # noqa: E731
        n8 = max(1, half_up(self.fixed8 * rows / 100)) if self.fixed8 > 0 else 0
        n8 = min(n8, rows)
        ns = min(half_up(self.sp2 * rows / 100), rows - n8)
        if self.fixed4 == 0:  # no FIXED-4 rows wanted: SP2 absorbs the rounding remainder
            ns = rows - n8
        return ns, rows - ns - n8, n8

    def to_json(self) -> dict[str, Any]:
        return {"SP2": self.sp2, "FIXED4": self.fixed4, "FIXED8": self.fixed8, "source": self.source}

    def __str__(self) -> str:
        return f"{self.sp2:g}:{self.fixed4:g}:{self.fixed8:g}"


class Method(Protocol):
    name: str

    def params(self) -> dict[str, Any]: ...

    def assign(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        """Formats of the rows of weight matrix w [R, K]."""
        ...


@dataclass(frozen=True)
class Fixed:
    bits: int = 8
    name: str = "fixed"

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise RowmixError(f"--bits must be 2..8 for method fixed, got {self.bits}")

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits}

    def assign(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return [RowFormat(Scheme.FIXED, self.bits)] * len(w)


@dataclass(frozen=True)
class SP2:
    name: str = "sp2"

    def params(self) -> dict[str, Any]:
        return {}

    def assign(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return [SP2_4] * len(w)


@dataclass(frozen=True)
class Mixed:
    ratio: Ratio
    name: str = "mixed"

    def params(self) -> dict[str, Any]:
        return {"ratio": str(self.ratio), "ranking": "variance"}

    def assign(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        ns, n4, n8 = self.ratio.counts(len(w))
        order = np.argsort(np.var(w.reshape(len(w), -1), axis=1), kind="stable")  # ascending variance
        formats = [FIXED4] * len(w)
        for r in order[:ns]:
            formats[r] = SP2_4
        for r in order[len(w) - n8 :]:
            formats[r] = FIXED8
        return formats


METHODS = ("fixed", "sp2", "mixed")


def make_method(name: str, bits: int = 8, ratio: "str | Ratio | None" = None) -> Method:
    if name == "fixed":
        return Fixed(bits)
    if name == "sp2":
        return SP2()
    if name == "mixed":
        r = ratio if isinstance(ratio, Ratio) else Ratio.parse(ratio or "65:30:5")
        return Mixed(r)
    raise RowmixError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
