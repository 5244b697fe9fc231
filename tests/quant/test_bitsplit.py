"""Bit-Split and stitching: exact bit planes, monotone refinement, the per-layer bits, and the digits
network bit-exact from fake-quant through the golden model to the RTL."""

import numpy as np
import pytest

from rowmix import golden
from rowmix.artifact import read_artifact, write_artifact
from rowmix.errors import RowmixError
from rowmix.evaluate import torch_predictions
from rowmix.formats import FIXED4, negate_values, quantize_values
from rowmix.hardware.generate import default_config, generate
from rowmix.quant import QuantNet, fakequant_from_artifact, quantize
from rowmix.quant.bitsplit import (
    BitSplit,
    fwa,
    ofwa,
    response_error,
    response_refine,
    split,
    stitch,
    write_rows,
)
from rowmix.quant.scales import weight_scales
from rowmix.sim import simulate

BITS = 3


@pytest.fixture(scope="module")
def digits_bitsplit(tmp_path_factory, digits_model, digits_tune):
    """(artifact directory, Artifact, QuantNet) of the digits model at W3 (first/last 8), A8."""
    model, info = digits_model
    q = quantize(model, info, BitSplit(bits=BITS, samples=4000, response_iters=30), digits_tune.images,
                 digits_tune.mean, digits_tune.std, act_bits=8)
    path = write_artifact(q.artifact, tmp_path_factory.mktemp("bitsplit") / "art")
    return path, read_artifact(path), q.qnet


@pytest.mark.parametrize("bits", range(3, 9))
def test_split_and_stitch_are_exact(bits):
    qmax = (1 << (bits - 1)) - 1
    v = np.random.default_rng(bits).integers(-qmax, qmax + 1, size=(7, 40)).astype(np.float64)
    planes = split(v, bits)
    assert planes.shape == (bits - 1, 7, 40)
    assert set(np.unique(planes)) <= {-1.0, 0.0, 1.0}
    assert np.array_equal(stitch(planes, bits), v)


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_written_rows_encode_back_to_the_stitched_values(bits, digits_model, digits_tune):
    """The export contract: weights scale * v in float32 make the shared encoder return v exactly,
    for scales over many magnitudes."""
    mac = QuantNet(digits_model[0], digits_tune.mean, digits_tune.std).mac("conv2")
    rng = np.random.default_rng(bits)
    planes = rng.integers(-1, 2, size=(bits - 1, mac.rows, mac.weight[0].numel())).astype(np.float64)
    s = 10.0 ** rng.uniform(-5, 1, mac.rows)
    write_rows(mac, s, stitch(planes, bits), bits)
    assert np.array_equal(mac.weight_values().numpy(), stitch(planes, bits))
    assert {f.bits for f in mac.formats} == {bits}


def test_weight_domain_refinement_is_ternary_and_not_worse_than_its_start():
    w = np.random.default_rng(0).standard_t(4, size=(16, 200))
    s0, v0 = fwa(w, 4)
    s, planes = ofwa(w, 4, 50)
    v = stitch(planes, 4)
    assert set(np.unique(planes)) <= {-1.0, 0.0, 1.0} and np.abs(v).max() <= 7
    err = lambda s, v: ((w - s[:, None] * v) ** 2).sum()  # noqa: E731
    assert err(s, v) <= err(s0, v0) * (1 + 1e-12)


def test_response_refinement_never_increases_the_error_of_round_to_nearest():
    """From MSE-scaled round-to-nearest codes, each response iteration keeps or lowers
    ||Y - X (s V)^T||^2, and the refinement as a whole lowers it clearly (the quantized input X
    differs from the float one, the case the response objective compensates)."""
    rng = np.random.default_rng(1)
    x_float = rng.normal(size=(3000, 72)) @ rng.normal(size=(72, 72)) * 0.2
    x = np.round(x_float * 4) / 4  # a quantized input
    w = rng.normal(size=(12, 72))
    y = x_float @ w.T
    gram, cross, yy = x.T @ x, y.T @ x, float((y ** 2).sum())
    s = weight_scales(w.astype(np.float32), FIXED4).astype(np.float64)
    planes = split(quantize_values(w, s[:, None], FIXED4), 4)
    errors = [response_error(gram, cross, yy, s, stitch(planes, 4))]
    for _ in range(5):
        s, planes = response_refine(gram, cross, s, planes, 4, 1)
        errors.append(response_error(gram, cross, yy, s, stitch(planes, 4)))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.8 * errors[0]
    assert set(np.unique(planes)) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("kw", [dict(bits=2), dict(first_last_bits=9), dict(samples=0)])
def test_bad_parameters(kw):
    with pytest.raises(RowmixError):
        BitSplit(**kw)


def test_rows_are_fixed_with_the_configured_bits_and_export_the_stitched_values(digits_bitsplit):
    _, art, qnet = digits_bitsplit
    macs = art.mac_layers
    for i, op in enumerate(macs):
        want = 8 if i in (0, len(macs) - 1) else BITS
        assert set(op.rows.scheme) == {"FIXED"} and set(op.rows.bits.tolist()) == {want}, op.name
        mac = qnet.mac(op.name)
        w = mac.weight.detach().reshape(mac.rows, -1).numpy()
        s = mac.scale.detach().numpy()
        v = negate_values(op.values, op.rows.negated)
        # the stored weights are scale * v: the encoder returns v, and v is its own bit planes' stitch
        assert np.allclose(w / s[:, None], v, atol=1e-4)
        assert np.array_equal(v, mac.weight_values().numpy())
        assert np.array_equal(stitch(split(v, want), want), v)
        assert np.abs(v).max() <= (1 << (want - 1)) - 1
        assert np.array_equal(op.rows.scale, s.astype(np.float64))
    assert "bitsplit_response_error" in art.method["params"]
    assert art.method["params"]["bits"] == BITS and art.method["params"]["first_last_bits"] == 8


def test_refinement_lowers_every_layers_response_error(digits_bitsplit):
    note = digits_bitsplit[1].method["params"]["bitsplit_response_error"]
    worst = float(note.rsplit("max ", 1)[1])
    assert worst <= 1.0, note


def test_golden_agrees_with_fake_quant_and_beats_round_to_nearest(digits_bitsplit, digits_model, digits_tune,
                                                                  digits_eval):
    _, art, _ = digits_bitsplit
    model, info = digits_model
    g = golden.run(art, digits_eval.images)
    p_fq = torch_predictions(fakequant_from_artifact(model, art), digits_eval.images)
    assert (p_fq == g.predictions).mean() >= 0.99
    rtn_method = BitSplit(bits=BITS, response_iters=0, weight_iters=0, act_refit=False)  # MSE scale, rounding
    rtn = quantize(model, info, rtn_method, digits_tune.images, digits_tune.mean, digits_tune.std, act_bits=8).artifact
    acc, acc_rtn = golden.accuracy(g, digits_eval.labels), golden.accuracy(golden.run(rtn, digits_eval.images),
                                                                           digits_eval.labels)
    assert acc >= 0.97 and acc >= acc_rtn, (acc, acc_rtn)


def test_digits_artifact_runs_bit_exact_on_the_rtl(tmp_path, digits_bitsplit, digits_eval):
    path, art, _ = digits_bitsplit
    images, labels = digits_eval.images[:3], digits_eval.labels[:3]
    rtl = tmp_path / "rtl"
    generate(art, default_config(art, "generic"), rtl)
    r = simulate(path, rtl, images, labels, workers=1)
    assert r.mismatches == 0 and r.images == 3, r.first_mismatch
    assert r.rtl_predictions == golden.run(art, images).predictions.tolist()
