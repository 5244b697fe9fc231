"""A whole network on a full board array: the board arrays' lanes take 4-bit activations, so the
network is quantized with a signed 5-bit input and 4-bit pooled tensors, and then runs on the
iCEBreaker's full mixed array bit for bit in cocotb (SB_MAC16 simulation models included)."""

import numpy as np
import pytest

from rowmix import golden
from rowmix.artifact import read_artifact, write_artifact
from rowmix.boards.arrays import board_array, board_ratio
from rowmix.errors import RowmixError
from rowmix.hardware.generate import generate
from rowmix.hardware.protocol import plan_layer
from rowmix.quant import make_method, quantize
from rowmix.sim import simulate


@pytest.fixture(scope="module")
def board_fit_artifact(tmp_path_factory, digits_model, digits_tune):
    model, info = digits_model
    r = board_ratio("icebreaker")
    ratio = f"{r['SP2']}:{r['FIXED4']}:{r['FIXED8']}"
    q = quantize(model, info, make_method("mixed", 4, ratio), digits_tune.images, digits_tune.mean, digits_tune.std,
                 act_bits=4, input_bits=5, pool_bits=4)
    path = write_artifact(q.artifact, tmp_path_factory.mktemp("fit") / "art")
    return path, read_artifact(path)


def test_board_fit_formats(board_fit_artifact):
    _, art = board_fit_artifact
    assert (art.input.tensor.bits, art.input.tensor.signed) == (5, True)
    assert art.op("gap").out.bits == 4
    assert art.method["params"]["input_bits"] == 5 and art.method["params"]["pool_bits"] == 4


def test_default_formats_are_refused_with_the_option_that_fits(digits_artifacts):
    _, art, _ = digits_artifacts["mixed"]
    cfg = board_array("icebreaker")
    for name, fix in (("conv1", "--input-bits 5"), ("fc", "--pool-bits 4")):
        layer = art.op(name)
        with pytest.raises(RowmixError, match=rf"layer '{name}'.*do not fit.*{fix}"):
            plan_layer(layer, art.tensors[layer.input], cfg, art.requant)


def test_whole_network_on_the_full_icebreaker_array(tmp_path, board_fit_artifact, digits_eval):
    path, art = board_fit_artifact
    cfg = board_array("icebreaker")
    generate(art, cfg, tmp_path / "rtl")
    images, labels = digits_eval.images[:2], digits_eval.labels[:2]
    r = simulate(path, tmp_path / "rtl", images, labels, workers=1)
    assert r.mismatches == 0, r.first_mismatch
    assert r.rtl_predictions == golden.run(art, images).predictions.tolist()
    assert r.cycles == r.model_cycles


def test_input_and_pool_bits_are_checked(digits_model, digits_tune):
    model, info = digits_model
    for kw, msg in ((dict(input_bits=9), "--input-bits"), (dict(pool_bits=2), "--pool-bits")):
        with pytest.raises(RowmixError, match=msg):
            quantize(model, info, make_method("mixed", 4, "65:30:5"), digits_tune.images[:16], digits_tune.mean,
                     digits_tune.std, act_bits=4, **kw)
