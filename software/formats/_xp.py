"""Array-namespace dispatch so one function body serves NumPy arrays and torch tensors.

The encoder must be *one* function for fake-quant training (torch) and export / golden (NumPy), so
that exported codes equal trained codes. Both libraries spell the few element-wise operations the
encoders need the same way (`abs`, `floor`, `sign`, `clip`, `where`), and IEEE float32 arithmetic is
correctly rounded in both, so the same body gives bit-identical results. torch is never imported
here: a tensor can only exist if the caller already imported it.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np


def namespace(x: Any) -> ModuleType:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    return np
