"""The golden model against the torch fake-quant network started from the same codes (DESIGN 5):
every op within one output LSB, predictions equal on at least 99 % of the digits test split, and a
single corrupted code is caught."""

import dataclasses

import numpy as np
import pytest

from rowmix import golden
from rowmix.artifact import MacLayer
from rowmix.evaluate import torch_predictions
from rowmix.formats import CONTAINER_BITS, pack, unpack
from rowmix.quant import fakequant_from_artifact

from .compare import layer_differences

CONFIGS = ["mixed", "fixed8", "fixed4", "sp2"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_op_within_one_lsb(name, digits_artifacts, digits_model, digits_eval):
    _, art, _ = digits_artifacts[name]
    fq = fakequant_from_artifact(digits_model[0], art)
    diffs = layer_differences(art, fq, digits_eval.images)
    assert set(diffs) >= {op.name for op in art.mac_layers}
    assert max(diffs.values()) <= 1, diffs


@pytest.mark.parametrize("name", CONFIGS)
def test_predictions_agree_on_the_digits_test_split(name, digits_artifacts, digits_model, digits_eval):
    _, art, qnet = digits_artifacts[name]
    g = golden.run(art, digits_eval.images)
    fq = fakequant_from_artifact(digits_model[0], art)
    p_fq = torch_predictions(fq, digits_eval.images)
    assert (p_fq == g.predictions).mean() >= 0.99
    # the exporting network in deploy mode (codes from its own float weights) predicts the same as
    # the network reloaded from the artifact
    qnet.set_deploy(True)
    try:
        assert np.array_equal(torch_predictions(qnet, digits_eval.images), p_fq)
    finally:
        qnet.set_deploy(False)
    assert golden.accuracy(g, digits_eval.labels) >= 0.95


def corrupt_one_code(layer: MacLayer) -> MacLayer:
    """Flip the sign of the largest-magnitude weight of the layer's first FIXED4/SP2 row."""
    g = next(g for g in ("FIXED4", "SP2", "FIXED8") if layer.row_groups[g])
    codes = unpack(layer.codes[g], CONTAINER_BITS[g], layer.k_pad).copy()
    v = layer.values[layer.row_groups[g][0]]
    k = int(np.argmax(np.abs(v)))
    codes[0, k] = codes[0, k] ^ (0x8 if g == "SP2" else (-int(v[k])) & ((1 << CONTAINER_BITS[g]) - 1) ^ codes[0, k])
    new = dict(layer.codes)
    new[g] = pack(codes, CONTAINER_BITS[g], layer.k_pad)
    out = dataclasses.replace(layer, codes=new)
    assert (out.values != layer.values).sum() == 1
    return out


def test_a_single_corrupted_code_fails_the_comparison(digits_artifacts, digits_model, digits_eval):
    _, art, _ = digits_artifacts["mixed"]
    fq = fakequant_from_artifact(digits_model[0], art)
    for target in ("fc", "conv4"):
        ops = tuple(corrupt_one_code(op) if op.name == target else op for op in art.ops)
        bad = dataclasses.replace(art, ops=ops)
        diffs = layer_differences(bad, fq, digits_eval.images)
        assert diffs[target] > 1, (target, diffs)


def test_resnet20_fixed8_golden_matches_fakequant(cifar_dir):
    from rowmix.data import load_dataset
    from rowmix.models import build_model
    from rowmix.quant import make_method, quantize

    model, info = build_model("resnet20", cifar_dir)
    tune = load_dataset("cifar10", "tune", cifar_dir, limit=256)
    ev = load_dataset("cifar10", "eval", cifar_dir, limit=256)
    art = quantize(model, info, make_method("fixed", 8), tune.images, tune.mean, tune.std).artifact
    assert any(op.op == "shortcut" for op in art.ops)
    fq = fakequant_from_artifact(model, art)
    diffs = layer_differences(art, fq, ev.images[:16])
    assert max(diffs.values()) <= 1, diffs
    g = golden.run(art, ev.images)
    assert (torch_predictions(fq, ev.images) == g.predictions).mean() >= 0.97
    assert golden.accuracy(g, ev.labels) >= 0.88


def test_residual_adds_round_with_the_exported_multipliers(cifar_dir):
    """The artifact's fake-quant network adds with the add's own 16-bit multipliers (as the golden
    model and the RTL do), not with the float scale ratio: with every add's multipliers moved 10 %
    off the ratio, golden and fake-quant still agree on every add output code."""
    from rowmix.artifact import Add
    from rowmix.data import load_dataset
    from rowmix.models import build_model
    from rowmix.quant import make_method, quantize

    model, info = build_model("resnet20", cifar_dir)
    tune = load_dataset("cifar10", "tune", cifar_dir, limit=64)
    art = quantize(model, info, make_method("fixed", 8), tune.images, tune.mean, tune.std).artifact
    moved = tuple(dataclasses.replace(op, m0=tuple(int(m * 0.9) for m in op.m0)) if isinstance(op, Add) else op
                  for op in art.ops)
    art = dataclasses.replace(art, ops=moved)
    diffs = layer_differences(art, fakequant_from_artifact(model, art), tune.images[:8])
    adds = [op.name for op in art.ops if isinstance(op, Add)]
    assert len(adds) == 9 and all(diffs[a] == 0 for a in adds), {a: diffs[a] for a in adds}
