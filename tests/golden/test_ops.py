"""Golden operators against direct int64 references: the fast paths (exact BLAS, float requant,
add tables) must equal the plain integer arithmetic of the contract on every element."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rowmix import golden
from rowmix.artifact import Add, AvgPool, GlobalAvgPool, TensorSpec
from rowmix.formats import RequantSpec, quantize_multiplier, requantize

from .layers import make_layer, random_input

SPECS = [RequantSpec("single", 16), RequantSpec("single", 31), RequantSpec("tflite_double", 31)]


def reference_mac(layer, x, spec):
    """im2col in the canonical (c, kh, kw) order, int64 matmul, int64 requant."""
    if layer.op == "conv":
        cols = golden.im2col(x.astype(np.int64), layer.kernel, layer.stride, layer.padding)
    else:
        cols = x.astype(np.int64)
    acc = cols @ layer.values.T + layer.rows.bias
    o = layer.out.fmt
    return acc, requantize(acc, layer.rows.m0, layer.rows.n, o.lo, o.hi, spec)


def test_im2col_order_is_pytorch_weight_order():
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 5, size=(2, 6, 7, 3))  # NHWC
    cols = golden.im2col(x, (3, 2), (2, 1), (1, 0))
    ref = F.unfold(torch.from_numpy(x).permute(0, 3, 1, 2).double(), (3, 2), padding=(1, 0), stride=(2, 1))
    n, oh, ow, k = cols.shape
    assert np.array_equal(cols.reshape(n, oh * ow, k).transpose(0, 2, 1), ref.numpy())


LAYERS = [
    dict(),
    dict(stride=(2, 2)),
    dict(kernel=(1, 1), padding=(0, 0)),
    dict(kernel=(3, 1), padding=(1, 0), hw=(5, 9)),
    dict(in_bits=8, in_signed=True, out_bits=8, out_signed=True),  # network input layer
    dict(in_bits=8, c=64, out_bits=16, out_signed=True),  # float64 matmul
    dict(op="linear", c=37, out_bits=16, out_signed=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.mode}{s.m_bits}")
@pytest.mark.parametrize("kw", LAYERS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "3x3")
def test_mac_layer_equals_int64_reference(kw, spec):
    rng = np.random.default_rng(len(str(kw)))
    layer, src = make_layer(rng, spec=spec, **kw)
    x = random_input(rng, src, 9)
    plan = golden.plan(layer, src, spec)
    acc_ref, y_ref = reference_mac(layer, x, spec)
    acc = np.empty(acc_ref.shape, np.int64)
    y = golden.mac_layer(layer, x.astype(np.float32), plan, spec, acc)
    assert np.array_equal(acc, acc_ref)
    assert np.array_equal(y, y_ref)
    assert np.array_equal(golden.mac_accumulate(layer, x, plan), acc_ref)


def test_float_matmul_dtype_follows_the_exactness_bound():
    rng = np.random.default_rng(1)
    small, src = make_layer(rng)
    assert golden.plan(small, src, SPECS[0]).dtype == np.float32  # 45 * 127 * 15 < 2^24
    big, src = make_layer(rng, c=200, in_bits=8)
    assert golden.plan(big, src, SPECS[0]).dtype == np.float64  # 1800 * 127 * 255 > 2^24


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.mode}{s.m_bits}")
def test_residual_add_table_equals_direct_arithmetic(spec):
    rng = np.random.default_rng(2)
    a_spec, b_spec = TensorSpec((4, 3, 3), 4, False, 0.3), TensorSpec((4, 3, 3), 8, True, 0.05)
    out = TensorSpec((4, 3, 3), 4, False, 0.25)
    (ma, na), (mb, nb) = quantize_multiplier(0.3 / 0.25, spec), quantize_multiplier(0.05 / 0.25, spec)
    op = Add("add", ("a", "b"), out, (ma, mb), (na, nb))
    a, b = random_input(rng, a_spec, 50), random_input(rng, b_spec, 50)
    big = 1 << 40
    want = np.clip(requantize(a, ma, na, -big, big, spec) + requantize(b, mb, nb, -big, big, spec), 0, 15)
    assert np.array_equal(golden.residual_add(op, a, b, a_spec, b_spec, spec), want)


def test_pooling_equals_direct_arithmetic():
    rng = np.random.default_rng(3)
    src = TensorSpec((6, 8, 8), 4, False, 0.1)
    x = random_input(rng, src, 5)
    m0, n = quantize_multiplier(0.1 / (0.03 * 4))
    ap = AvgPool("p", "x", TensorSpec((6, 4, 4), 8, False, 0.03), (2, 2), (2, 2), m0, n)
    sums = x.reshape(5, 4, 2, 4, 2, 6).sum(axis=(2, 4))
    assert np.array_equal(golden.avgpool(ap, x, SPECS[0]), requantize(sums, m0, n, 0, 255))
    m0, n = quantize_multiplier(0.1 / (0.01 * 64))
    gp = GlobalAvgPool("g", "x", TensorSpec((6, 1, 1), 8, False, 0.01), m0, n)
    assert np.array_equal(golden.global_avgpool(gp, x, SPECS[0])[:, 0, 0],
                          requantize(x.sum(axis=(1, 2)), m0, n, 0, 255))
