"""BN folding: negated rows, positive multipliers, integer biases that reproduce the float affine."""

import numpy as np

from rowmix.formats import (
    FIXED4,
    bn_affine,
    fold_rows,
    negate_values,
    quantize_values,
    requantize,
)


def test_fold_reproduces_the_float_layer_within_one_lsb():
    rng = np.random.default_rng(0)
    rows, k = 32, 64
    w = rng.normal(size=(rows, k)).astype(np.float32)
    scale = (np.abs(w).max(axis=1) / 7).astype(np.float32)
    v = quantize_values(w, scale[:, None], FIXED4).astype(np.int64)
    gamma = rng.normal(size=rows)  # about half negative: those rows are negated
    gain, offset = bn_affine(gamma, rng.normal(size=rows), rng.normal(size=rows), rng.uniform(0.5, 2, rows), 1e-5,
                             conv_bias=rng.normal(size=rows))
    s_in, s_out = 0.05, 0.08
    folded = fold_rows(scale, s_in, s_out, gain, offset)
    assert np.array_equal(folded.negated, gain < 0) and folded.negated.any()
    assert (folded.multiplier > 0).all()
    u = rng.integers(0, 16, size=(200, k))
    acc = u @ negate_values(v, folded.negated).T + folded.bias
    y = requantize(acc, folded.m0, folded.n, -127, 127)
    exact = (s_in * (u @ (scale[:, None] * v).T)) * gain + offset  # float layer with BN
    want = np.clip(exact / s_out, -127, 127)
    assert np.abs(y - want).max() <= 1.0
