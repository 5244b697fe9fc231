"""Row-assignment methods of the first front end: which format each output row gets.

`fixed` (every row FIXED-b), `sp2` (every row SP2-4) and `mixed` (SP2 : FIXED-4 : FIXED-8 by a ratio,
the same in every layer, rows ranked by weight variance: the highest-variance rows become FIXED-8,
the lowest-variance rows SP2, the rest FIXED-4; Hessian-based ranking arrives with RMSMP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Calib:
    """Calibration data in the raw image range (the network normalises)."""

    images: np.ndarray
    labels: np.ndarray


class Method:
    """The plug-in interface every quantization method implements (DESIGN section 4).

    The pipeline (quant/ptq.py) calls, in order: `activation_scale` for every activation
    tensor, `assign` (row formats, optional sensitivity), `init_scales` (row scales), `train` (QAT,
    calling `on_epoch` at the start of each epoch, e.g. reassignment), `post` after training (e.g.
    BN re-estimation);
    the exporter then writes the artifact. Defaults: MSE-optimal scales, no training hooks."""

    name: str = "method"
    resumable = True  # its training saves and resumes TrainConfig.checkpoint (a class attribute, not a field)

    def params(self) -> dict[str, Any]:
        return {}

    @property
    def ratio_json(self) -> dict[str, Any] | None:
        ratio = getattr(self, "ratio", None)
        return ratio.to_json() if isinstance(ratio, Ratio) else None

    def activation_scale(self, samples: np.ndarray, bits: int, signed: bool) -> float:
        from .scales import activation_scale

        return activation_scale(samples, bits, signed)

    def assign_rows(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        raise NotImplementedError

    def assign(self, qnet, calib: Calib | None) -> None:
        for node in qnet.nodes:
            if node.kind in ("conv", "linear"):
                mac = qnet.mac(node.name)
                mac.set_formats(self.assign_rows(node.name, mac.weight.detach().reshape(mac.rows, -1).numpy()))

    def weight_scales(self, w: np.ndarray, fmt: RowFormat) -> np.ndarray:
        from .scales import weight_scales

        return weight_scales(w, fmt)

    def init_scales(self, qnet, rows: dict[str, np.ndarray] | None = None) -> None:
        """MSE-optimal scale of every row for its format (only `rows[layer]` if given)."""
        for node in qnet.nodes:
            if node.kind not in ("conv", "linear"):
                continue
            mac = qnet.mac(node.name)
            w = mac.weight.detach().reshape(mac.rows, -1).numpy()
            scales = mac.scale.detach().numpy().copy()
            todo = set(range(mac.rows)) if rows is None else set(rows.get(node.name, ()))
            for f in set(mac.formats):
                idx = [r for r, g in enumerate(mac.formats) if g == f and r in todo]
                if idx:
                    scales[idx] = self.weight_scales(w[idx], f)
            mac.set_formats(mac.formats, scales)

    def train(self, qnet, teacher, images: np.ndarray, labels: np.ndarray, cfg, calib: Calib | None,
              progress=None) -> list[dict]:
        """Training after `init_scales` (only with a TrainConfig of > 0 epochs): QAT by default
        (quant/qat.py, which calls `on_epoch`); a method with its own training loop overrides it."""
        from .qat import train

        return train(qnet, teacher, images, labels, cfg, self, calib, progress)

    def on_epoch(self, epoch: int, epochs: int, qnet, calib: Calib | None) -> None:
        pass

    def post(self, qnet, calib: Calib | None) -> None:
        pass


@dataclass(frozen=True)
class Fixed(Method):
    bits: int = 8
    name: str = "fixed"

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise RowmixError(f"--bits must be 2..8 for method {self.name}, got {self.bits}")

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits}

    def assign_rows(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return [RowFormat(Scheme.FIXED, self.bits)] * len(w)


@dataclass(frozen=True)
class SP2(Method):
    name: str = "sp2"

    def assign_rows(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return [SP2_4] * len(w)


@dataclass(frozen=True)
class Mixed(Method):
    ratio: Ratio = field(default_factory=lambda: Ratio.parse("65:30:5"))
    name: str = "mixed"

    def params(self) -> dict[str, Any]:
        return {"ratio": str(self.ratio), "ranking": "variance"}

    def assign_rows(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return split_rows(self.ratio, np.var(w.reshape(len(w), -1), axis=1), np.var(w.reshape(len(w), -1), axis=1))


def split_rows(ratio: Ratio, f8_score: np.ndarray, sp2_score: np.ndarray) -> list[RowFormat]:
    """The same ratio in every layer: the n8 rows with the highest `f8_score` become FIXED-8, the ns
    of the rest with the lowest `sp2_score` SP2-4, the others FIXED-4 (stable ordering)."""
    rows = len(f8_score)
    ns, n4, n8 = ratio.counts(rows)
    formats = [FIXED4] * rows
    f8 = np.argsort(-np.asarray(f8_score), kind="stable")[:n8]
    for r in f8:
        formats[r] = FIXED8
    rest = [r for r in np.argsort(np.asarray(sp2_score), kind="stable") if r not in set(f8.tolist())]
    for r in rest[:ns]:
        formats[r] = SP2_4
    return formats
