"""cocotb on Icarus Verilog: the generated Verilog against the golden model, bit for bit, on random
networks (all row groups, strides, padding), a code sweep through every lane, the digits network end
to end, and a fault injection that the checker must pin to its layer and row."""

import json

import numpy as np
import pytest

from rowmix import golden
from rowmix.artifact import read_artifact
from rowmix.cli import main
from rowmix.hardware.config import ArrayConfig, GroupConfig
from rowmix.hardware.generate import default_config, generate
from rowmix.sim import simulate

from .nets import random_images, random_network

ARRAY = ArrayConfig(t_k=4, max_k=128, max_rows=16,
                    groups={"SP2": GroupConfig(3, "sp2"), "FIXED4": GroupConfig(2, "dsp"), "FIXED8": GroupConfig(1, "dsp")})


def run_rtl(tmp_path, art_dir, art, images, labels=None, cfg=ARRAY, **kw):
    rtl = tmp_path / "rtl"
    generate(art, cfg, rtl)
    labels = np.zeros(len(images), np.int64) if labels is None else labels
    return simulate(art_dir, rtl, images, labels, workers=kw.pop("workers", 1), **kw)


@pytest.mark.parametrize("conv_kw", [dict(), dict(stride=(2, 2)), dict(kernel=(1, 1), padding=(0, 0))],
                         ids=["3x3", "stride2", "1x1"])
def test_random_networks_bit_exact(tmp_path, conv_kw):
    rng = np.random.default_rng(len(str(conv_kw)))
    art = random_network(rng, tmp_path / "art", conv_kw=conv_kw)
    art = read_artifact(tmp_path / "art")
    images = random_images(rng, art, 3)
    r = run_rtl(tmp_path, tmp_path / "art", art, images)
    assert r.mismatches == 0, r.first_mismatch
    assert r.rtl_predictions == golden.run(art, images).predictions.tolist()
    assert r.cycles == r.model_cycles  # cocotbext-axi streams without gaps: the model is exact


def test_every_code_of_every_lane(tmp_path):
    """A linear layer whose rows hold all 16 codes of their group (FIXED8 all 256) against activations
    at the range limits, so each lane multiplies every code by extreme values."""
    rng = np.random.default_rng(5)
    art = random_network(rng, tmp_path / "art", c=16, hw=(2, 2), r=12, conv_kw=dict(kernel=(1, 1), padding=(0, 0)))
    art = read_artifact(tmp_path / "art")
    conv = art.op("conv")
    seen = {g: set() for g in ("SP2", "FIXED4", "FIXED8")}
    for g in seen:
        seen[g] |= set(np.unique(conv.group_codes[g][:, : conv.k]).tolist())
    images = random_images(rng, art, 2)
    images[0] = np.float32(127 * art.input.tensor.scale)
    images[1] = np.float32(-127 * art.input.tensor.scale)
    r = run_rtl(tmp_path, tmp_path / "art", art, images)
    assert r.mismatches == 0, r.first_mismatch
    assert len(seen["SP2"]) >= 10 and len(seen["FIXED4"]) >= 10  # nearly every code is exercised


def test_digits_network_end_to_end(tmp_path, digits_artifacts, digits_eval):
    path, art, _ = digits_artifacts["mixed"]
    images, labels = digits_eval.images[:6], digits_eval.labels[:6]
    r = run_rtl(tmp_path, path, art, images, labels, cfg=default_config(art, "generic"), workers=2)
    g = golden.run(art, images)
    assert r.mismatches == 0 and r.images == 6
    assert r.rtl_predictions == g.predictions.tolist()
    assert r.rtl_accuracy == golden.accuracy(g, labels)
    assert r.cycles == r.model_cycles


def test_fault_injection_is_pinned_to_its_layer_and_row(tmp_path, digits_artifacts, digits_eval, capsys):
    path, art, _ = digits_artifacts["mixed"]
    layer = art.op("conv3")
    row = layer.row_groups["FIXED4"][0]
    column = int(np.argmax(np.abs(layer.values[row])))  # a weight that matters
    fault = {"layer": "conv3", "row": row, "column": column, "bit": 2}
    r = run_rtl(tmp_path, path, art, digits_eval.images[:2], cfg=default_config(art, "generic"), inject=fault)
    assert r.mismatches == 1
    assert r.first_mismatch.startswith(f"layer 'conv3', row {row}, image 0")


def test_cli_simulate_json_and_exit_code(tmp_path, digits_artifacts, capsys):
    path, art, _ = digits_artifacts["mixed"]
    rtl = tmp_path / "rtl"
    generate(art, default_config(art, "generic"), rtl)
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(path), "--rtl", str(rtl), "--limit", "3", "--json"])
    assert e.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    for key in ("images", "mismatches", "rtl_accuracy", "golden_accuracy", "cycles", "ideal_cycles", "utilisation",
                "sim_seconds"):
        assert key in out
    assert out["images"] == 3 and out["mismatches"] == 0 and out["rtl_accuracy"] == out["golden_accuracy"]


@pytest.mark.slow
def test_verilator_matches_icarus(tmp_path, digits_artifacts, digits_eval):
    path, art, _ = digits_artifacts["mixed"]
    r = run_rtl(tmp_path, path, art, digits_eval.images[:8], digits_eval.labels[:8],
                cfg=default_config(art, "generic"), simulator="verilator")
    assert r.mismatches == 0 and r.rtl_predictions == golden.run(art, digits_eval.images[:8]).predictions.tolist()


@pytest.mark.parametrize("target", ["ice40", "ecp5", "generic"])
def test_odd_dsp_rows_and_lut_topped_groups_bit_exact(tmp_path, target):
    """The board arrays' shapes: an odd FIXED4 / FIXED8 DSP row (on iCE40 its activation elements
    share a dual 8x8 SB_MAC16), DSP groups topped up with Booth and plain LUT multiplier rows, on
    iCE40 the requant unit's SB_MAC16 16x16 partial products (Yosys's simulation model), on ECP5 the
    registered MULT18X18D (rowmix's model) with the ULX3S plan's options (two read registers, staged
    read addresses and writes, row-tag copies, narrow accumulators, and on ECP5 an all-DSP FIXED8
    group whose hold registers shift while the LUT-topped groups mux theirs through registered picks)."""
    rng = np.random.default_rng(11)
    art = random_network(rng, tmp_path / "art")
    art = read_artifact(tmp_path / "art")
    odd = 3 if target == "ice40" else 2
    ecp5 = dict(read_stages=2, row_addr=True, write_stages=True, act_fanout=2, shift_drain=True, narrow_acc=True) \
        if target == "ecp5" else {}
    cfg = ArrayConfig(target=target, t_k=4, max_k=128, max_rows=16, acc_bits=24, shared_requant=True, **ecp5, groups={
        "SP2": GroupConfig(2, "sp2"), "FIXED4": GroupConfig(odd + 1, "dsp", lut_rows=1, lut_kind="booth"),
        "FIXED8": GroupConfig(2, "dsp", lut_rows=1, lut_kind="mul") if target != "ecp5" else GroupConfig(2, "dsp")})
    images = random_images(rng, art, 2)
    r = run_rtl(tmp_path, tmp_path / "art", art, images, cfg=cfg)
    assert r.mismatches == 0, r.first_mismatch
    assert r.cycles == r.model_cycles
