"""The accumulator check: the array wraps at `acc_bits` and the golden model does not, so the host
refuses a layer whose bias + W u can leave the accumulator for some input."""

import itertools

import numpy as np
import pytest

from rowmix.errors import RowmixError
from rowmix.formats import RequantSpec
from rowmix.hardware.protocol import accumulator_range, config_words, signed_bits

from ..golden.layers import make_layer
from .test_engine import config


@pytest.mark.parametrize("in_bits,in_signed", [(4, False), (5, True), (8, False)])
def test_range_is_the_exact_extreme_over_all_inputs(in_bits, in_signed):
    rng = np.random.default_rng(in_bits)
    layer, src = make_layer(rng, op="linear", c=3, r=8, in_bits=in_bits, in_signed=in_signed)
    f = src.fmt
    u = np.array(list(itertools.product(range(f.lo, f.hi + 1), repeat=layer.k)), np.int64)  # every input
    acc = layer.rows.bias[None, :] + u @ layer.values.astype(np.int64).T
    lo, hi = accumulator_range(layer, src)
    assert np.array_equal(lo, acc.min(axis=0)) and np.array_equal(hi, acc.max(axis=0))


def test_signed_bits_is_the_least_width():
    assert [signed_bits(np.array([lo]), np.array([hi])) for lo, hi in
            [(0, 0), (-1, 0), (0, 1), (-8, 7), (-9, 7), (-8, 8), (-(1 << 23), (1 << 23) - 1)]] == [1, 1, 2, 4, 5, 5, 24]


def test_a_layer_that_can_overflow_is_refused_naming_layer_and_row():
    rng = np.random.default_rng(5)
    layer, src = make_layer(rng, op="linear", c=200, r=6, in_bits=8, in_signed=False)  # |acc| up to ~2^22
    lo, hi = accumulator_range(layer, src)
    worst = int(np.argmax(np.maximum(-lo, hi)))
    need = signed_bits(lo, hi)
    with pytest.raises(RowmixError, match=rf"layer '{layer.name}' row {worst}: .*acc_bits >= {need}\)"):
        config_words(layer, src, config(max_k=256, acc_bits=need - 1), RequantSpec())
    words, _ = config_words(layer, src, config(max_k=256, acc_bits=need), RequantSpec())
    assert len(words)
