"""The golden model (DESIGN section 5): the bit-exact NumPy executable of the integer contract.

Pure NumPy, integer after input quantization, vectorised (im2col + exact BLAS or int64 matmul). The
hardware must match it bit for bit; the torch fake-quant model within one LSB per layer.
"""

from .model import GoldenResult, accuracy, add_tables, apply_op, forward, plans, run
from .ops import (
    MacPlan,
    avgpool,
    flatten,
    global_avgpool,
    im2col,
    mac_accumulate,
    mac_layer,
    maxpool,
    plan,
    quantize_input,
    residual_add,
    shortcut,
)

__all__ = [
    "GoldenResult", "accuracy", "add_tables", "apply_op", "forward", "plans", "run",
    "MacPlan", "avgpool", "flatten", "global_avgpool", "im2col", "mac_accumulate", "mac_layer", "maxpool",
    "plan", "quantize_input", "residual_add", "shortcut",
]
