"""Row assignment of the first methods, ratio parsing and rounding, MSE-optimal scales."""

import numpy as np
import pytest

from rowmix.errors import RowmixError
from rowmix.formats import FIXED4, FIXED8, SP2_4, quantize_values
from rowmix.quant import Ratio, make_method
from rowmix.quant.scales import activation_scale, mse_scales, weight_scales


@pytest.mark.parametrize("text", ["60:30:5", "65:30", "a:b:c", "-5:100:5", "inf:0:0"])
def test_bad_ratios(text):
    with pytest.raises(RowmixError):
        Ratio.parse(text)


@pytest.mark.parametrize("rows, want", [(16, (10, 5, 1)), (64, (42, 19, 3)), (10, (7, 2, 1)), (1, (0, 0, 1)), (3, (2, 0, 1))])
def test_ratio_counts(rows, want):
    assert Ratio.parse("65:30:5").counts(rows) == want


def test_ratio_edge_shares():
    assert Ratio.parse("100:0:0").counts(7) == (7, 0, 0)
    assert Ratio.parse("0:100:0").counts(7) == (0, 7, 0)
    assert Ratio.parse("95:0:5").counts(10) == (9, 0, 1)


def test_mixed_assigns_by_variance_with_the_same_ratio():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.1, 2.0, 64)
    w = rng.normal(size=(64, 50)) * sigma[:, None]
    formats = make_method("mixed", ratio="65:30:5").assign_rows("L", w)
    var = w.var(axis=1)
    assert [formats.count(f) for f in (SP2_4, FIXED4, FIXED8)] == [42, 19, 3]
    assert max(var[[f == SP2_4 for f in formats]]) <= min(var[[f == FIXED4 for f in formats]])
    assert max(var[[f == FIXED4 for f in formats]]) <= min(var[[f == FIXED8 for f in formats]])


def test_fixed_and_sp2_methods():
    w = np.zeros((5, 3))
    assert make_method("fixed", bits=3).assign_rows("L", w) == [FIXED4.__class__("FIXED", 3)] * 5
    assert make_method("sp2").assign_rows("L", w) == [SP2_4] * 5


@pytest.mark.parametrize("fmt", [FIXED4, SP2_4, FIXED8], ids=str)
def test_scale_search_beats_max_scaling_and_is_a_local_optimum(fmt):
    rng = np.random.default_rng(1)
    w = rng.standard_t(4, size=(32, 300)).astype(np.float32)
    s = weight_scales(w, fmt)

    def mse(scale):
        return ((w - scale[:, None] * quantize_values(w, scale[:, None], fmt)) ** 2).mean(axis=1)

    max_scale = (np.abs(w).max(axis=1) / fmt.qmax).astype(np.float32)
    assert np.all(mse(s) <= mse(max_scale) + 1e-9)
    for f in (0.98, 1.02):  # small moves do not improve it much
        assert np.mean(mse(s)) <= np.mean(mse((s * f).astype(np.float32))) * 1.001


def test_zero_rows_get_scale_one():
    w = np.zeros((2, 8), np.float32)
    w[1] = 1.0
    s = mse_scales(w, lambda x, s: quantize_values(x, s, FIXED4), 7)
    assert s[0] == 1.0 and s[1] > 0


def test_activation_scale_clips_rare_outliers():
    rng = np.random.default_rng(2)
    x = np.concatenate([np.abs(rng.normal(size=100_000)), np.full(10, 40.0)])
    s = activation_scale(x, 4, signed=False)
    assert 3.0 < s * 15 < 12.0  # covers the Gaussian bulk, clips the ten outliers at 40
