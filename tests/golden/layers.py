"""Synthetic integer layers for golden-model tests: every row format, negated rows, all-zero rows."""

from __future__ import annotations

import numpy as np

from rowmix.artifact import MacLayer, RowTable, TensorSpec
from rowmix.formats import RequantSpec, RowFormat, quantize_multiplier, values_to_codes
from rowmix.formats.codes import SP2_VALUES

FORMATS = [RowFormat("SP2", 4), RowFormat("FIXED", 4), RowFormat("FIXED", 8), RowFormat("FIXED", 3), RowFormat("FIXED", 6)]


def random_values(rng: np.random.Generator, fmt: RowFormat, k: int) -> np.ndarray:
    if fmt.scheme == "SP2":
        return rng.choice(SP2_VALUES, size=k)
    return rng.integers(-fmt.qmax, fmt.qmax + 1, size=k)


def make_layer(rng, *, op="conv", c=5, r=11, kernel=(3, 3), stride=(1, 1), padding=(1, 1), in_bits=4,
               in_signed=False, out_bits=4, out_signed=False, hw=(7, 6), m_range=None, spec=None, extreme=False):
    """A random MAC layer and its input spec. Rows cycle through FORMATS; row 0 is all zero.
    Multipliers and biases default to a scale where outputs spread over the output range.
    `extreme`: every row at its format's largest magnitude, the sign alternating by row."""
    k = c * kernel[0] * kernel[1] if op == "conv" else c
    formats = [FORMATS[i % len(FORMATS)] for i in range(r)]
    if extreme:
        values = np.stack([np.full(k, (-1) ** i * f.qmax) for i, f in enumerate(formats)])
    else:
        values = np.stack([random_values(rng, f, k) for f in formats])
        values[0] = 0
    u_max = (1 << (in_bits - 1)) if in_signed else (1 << in_bits) - 1
    typical = max(1.0, np.sqrt(k) * 4 * u_max / 2)  # spread of sum_k v u for random codes
    out_hi = (1 << (out_bits - 1)) - 1 if out_signed else (1 << out_bits) - 1
    if m_range is None:
        m_range = (0.3 * out_hi / typical, 1.5 * out_hi / typical)
    spec = spec or RequantSpec()
    m0, n = zip(*(quantize_multiplier(float(m), spec) for m in rng.uniform(*m_range, size=r)))
    rows = RowTable(
        scheme=tuple(str(f.scheme) for f in formats), bits=np.array([f.bits for f in formats]),
        scale=rng.uniform(0.01, 0.1, r), m0=np.array(m0), n=np.array(n),
        bias=rng.integers(-int(typical), int(typical) + 1, r), negated=rng.random(r) < 0.3,
        sensitivity=np.full(r, np.nan),
    )
    k_pad = k + (k % 2) + 2  # extra padding beyond the nibble alignment
    groups, codes = MacLayer.pack_values(values, rows, k_pad)
    src_shape = (c, *hw) if op == "conv" else (c,)
    src = TensorSpec(src_shape, in_bits, in_signed, 0.1)
    if op == "conv":
        oh = (hw[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
        ow = (hw[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
        out_shape = (r, oh, ow)
    else:
        kernel, stride, padding, out_shape = (1, 1), (1, 1), (0, 0), (r,)
    layer = MacLayer(
        name="L", op=op, input="x", out=TensorSpec(out_shape, out_bits, out_signed, 0.2), k=k, k_pad=k_pad,
        kernel=kernel, stride=stride, padding=padding, rows=rows, row_groups=groups, codes=codes,
        bias=rows.bias.astype(np.int32),
    )
    assert np.array_equal(layer.values, values)
    return layer, src


def random_input(rng, src: TensorSpec, n: int) -> np.ndarray:
    """Integer activations [N, H, W, C] (or [N, F]) covering the format's whole range."""
    f = src.fmt
    shape = (n, *src.shape[1:], src.shape[0]) if len(src.shape) == 3 else (n, *src.shape)
    return rng.integers(f.lo, f.hi + 1, size=shape)
