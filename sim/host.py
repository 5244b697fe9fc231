"""The host side of a network on the array: which activation vectors each MAC layer streams, how
its outputs come back, and everything else computed with the golden model's own functions."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import golden
from ..artifact import MacLayer


@dataclass(frozen=True)
class Job:
    """What one simulator process runs: images [start, start + count) of an npz, through the
    artifact's network, on the RTL in `rtl`; results go to `result` (JSON)."""

    artifact: str
    rtl: str
    images: str  # npz with float32 `images` [N, C, H, W] and int64 `labels` [N]
    start: int
    count: int
    result: str
    batch: int = 64  # images per layer pass (one configuration per layer per batch)
    inject: dict | None = None  # fault injection: {"layer", "row", "column", "bit"} flips a code bit

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> "Job":
        return cls(**json.loads(Path(path).read_text()))


def mac_vectors(layer: MacLayer, x: np.ndarray) -> np.ndarray:
    """The activation vectors of every output pixel, [N * pixels, K], in (c, kh, kw) order."""
    if layer.op == "linear":
        return np.asarray(x).reshape(len(x), -1)
    return golden.im2col(x, layer.kernel, layer.stride, layer.padding).reshape(-1, layer.k)


def assemble(layer: MacLayer, outputs: np.ndarray, n: int) -> np.ndarray:
    """RTL outputs [N * pixels, R] back to the channel-last tensor [N, OH, OW, R] or [N, R]."""
    if layer.op == "linear":
        return outputs.reshape(n, layer.r)
    return outputs.reshape(n, *layer.out.shape[1:], layer.r)


def write_json(path: str | Path, data: dict) -> None:
    """Atomic JSON write (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
