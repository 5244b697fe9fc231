"""Reusable buffers for the golden model's hot path.

Large temporaries allocated afresh on every call come from mmap and cost a page fault per 4 KiB on
first touch, which for small networks costs as much as the arithmetic. Each worker thread keeps one
workspace for a whole run: persistent scratch buffers per (layer, role, shape), and a free list of
tensors that the forward pass hands back once no later op reads them.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class Workspace:
    def __init__(self) -> None:
        self._scratch: dict[tuple, np.ndarray] = {}
        self._free: dict[tuple, list[np.ndarray]] = defaultdict(list)

    def scratch(self, key: tuple, shape: tuple[int, ...], dtype, zeros: bool = False) -> np.ndarray:
        """The same buffer on every call with this key and shape; `zeros` fills it once, so regions
        never written later (padding borders) stay zero."""
        k = (*key, shape, np.dtype(dtype).str)
        buf = self._scratch.get(k)
        if buf is None:
            buf = self._scratch[k] = (np.zeros if zeros else np.empty)(shape, dtype)
        return buf

    def take(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        free = self._free[(shape, np.dtype(dtype).str)]
        return free.pop() if free else np.empty(shape, dtype)

    def give(self, a: np.ndarray) -> None:
        """Hand back a tensor nothing reads any more (only arrays that own their memory)."""
        if a.base is None and a.flags.c_contiguous:
            self._free[(a.shape, a.dtype.str)].append(a)
