"""The layer engine in Amaranth's simulator against the golden model, bit for bit: random layers
mixing all three row groups, R and K not multiples of the tiles, all-zero, negated and flushed rows,
signed and unsigned 8-bit inputs, back-pressure, several array configurations, layers back to back."""

import dataclasses

import numpy as np
import pytest

from rowmix import golden
from rowmix.artifact import TensorSpec
from rowmix.formats import RequantSpec
from rowmix.hardware import engine
from rowmix.hardware import requant as rq
from rowmix.hardware.config import ArrayConfig, GroupConfig

from ..golden.layers import make_layer, random_input
from .harness import Job, run_jobs

SPEC = RequantSpec()


def golden_outputs(layer, src, x_nhwc):
    y = golden.mac_layer(layer, x_nhwc.astype(np.float32), golden.plan(layer, src, SPEC), SPEC)
    return y.reshape(-1, layer.r).astype(np.int64)


def vectors_of(layer, x_nhwc):
    if layer.op == "linear":
        return x_nhwc
    return golden.im2col(x_nhwc, layer.kernel, layer.stride, layer.padding).reshape(-1, layer.k)


def config(sp2=3, f4=2, f8=1, f4_kind="dsp", f8_kind="dsp", **kw):
    groups = {"SP2": GroupConfig(sp2, "sp2"), "FIXED4": GroupConfig(f4, f4_kind), "FIXED8": GroupConfig(f8, f8_kind)}
    base = dict(t_k=4, max_k=64, max_rows=16, groups=groups)
    base.update(kw)
    return ArrayConfig(**base)


def check(cfg, layer, src, x, ready_prob=1.0):
    out = run_jobs(cfg, [Job(layer, src, vectors_of(layer, x))], ready_prob=ready_prob)[0]
    want = golden_outputs(layer, src, x)
    bad = np.argwhere(out != want)
    assert not len(bad), f"first mismatch at pixel {bad[0][0]}, channel {bad[0][1]}: " \
                         f"expected {want[tuple(bad[0])]}, got {out[tuple(bad[0])]}"
    assert len(np.unique(want)) >= 3  # the layer exercises real values, not a constant


CASES = {
    "3x3 pad, R=11 (tiles 4/2/2)": (dict(), dict(c=3, r=11, hw=(3, 4))),
    "stride 2, K=45 not a multiple of t_k": (dict(), dict(c=5, r=7, stride=(2, 2), hw=(5, 5))),
    "signed 8-bit input layer": (dict(), dict(c=2, r=9, in_bits=8, in_signed=True, out_bits=8, out_signed=True, hw=(3, 3))),
    "unsigned 8-bit input (offset)": (dict(), dict(c=3, r=8, in_bits=8, kernel=(1, 1), padding=(0, 0), hw=(3, 3))),
    "linear, 16-bit signed out": (dict(), dict(op="linear", c=21, r=10, out_bits=16, out_signed=True)),
    "Booth FIXED4, plain FIXED8, t_k 8": (dict(f4_kind="booth", f8_kind="mul", t_k=8), dict(c=4, r=12, hw=(3, 3))),
    "plain FIXED4 lanes, t_k 2": (dict(f4_kind="mul", t_k=2, max_k=64), dict(c=2, r=6, hw=(3, 3))),
    "4-bit lanes (act_bits 4)": (dict(act_bits=4), dict(c=3, r=10, hw=(3, 3))),
    "wide groups, one tile": (dict(sp2=4, f4=4, f8=2, t_k=8), dict(c=3, r=10, hw=(3, 3))),
    "t_k 16: 4-word FIXED8 code slices": (dict(sp2=2, f4=2, f8=1, t_k=16, max_k=128), dict(c=3, r=7, hw=(3, 3))),
    "one requant unit shared by the groups": (dict(shared_requant=True), dict(c=3, r=11, hw=(3, 4))),
    "activation registers and read addresses per row": (dict(act_fanout=1, row_addr=True, f8_kind="mul"),
                                                         dict(c=3, r=11, hw=(3, 3))),
    "two read registers (far lanes)": (dict(read_stages=2, row_addr=True), dict(c=3, r=11, hw=(3, 4))),
    "staged configuration writes (ULX3S plan)": (dict(read_stages=2, row_addr=True, write_stages=True, act_fanout=2, shift_drain=True),
                                                 dict(c=3, r=11, hw=(3, 4))),
    # SP2 rows (5) drain through registered picks among each 2 rows (drain_fanout), the last pick of one row
    "replicas per 2 rows, Booth": (dict(sp2=5, f4_kind="booth", act_fanout=2, t_k=2), dict(c=2, r=13, hw=(3, 3))),
    "shared requant, signed 8-bit in": (dict(shared_requant=True, f8=2),
                                        dict(c=2, r=9, in_bits=8, in_signed=True, out_bits=8, out_signed=True, hw=(3, 3))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_golden(case):
    cfg_kw, layer_kw = CASES[case]
    rng = np.random.default_rng(len(case))
    layer, src = make_layer(rng, **layer_kw)
    check(config(**cfg_kw), layer, src, random_input(rng, src, 1))


@pytest.mark.parametrize("narrower", [0, 1])
def test_narrow_accumulators_hold_the_largest_sums(monkeypatch, narrower):
    """`narrow_acc` rows reach exactly their bound: K = max_k products of the largest SP2 weight (8)
    with the most negative lane activation (an unsigned 8-bit 0 is -128 after the offset) sum to
    2^16 (-8 rows) and -2^16 (+8 rows), which the 18-bit rows hold. One bit fewer wraps the +2^16
    rows, and the bit-exact check has to see it."""
    cfg = config(narrow_acc=True, max_k=64, acc_bits=24)
    assert [cfg.row_acc_bits(g) for g in ("SP2", "FIXED4", "FIXED8")] == [18, 18, 22]
    if narrower:
        width = ArrayConfig.row_acc_bits
        monkeypatch.setattr(ArrayConfig, "row_acc_bits", lambda self, g: width(self, g) - 1)
    rng = np.random.default_rng(5)
    layer, src = make_layer(rng, op="linear", c=64, r=10, in_bits=8, out_bits=8, out_signed=True,
                            extreme=True, m_range=(1e-4, 4e-4))
    x = np.concatenate([np.full((1, 64), 0), np.full((1, 64), 255), random_input(rng, src, 2)])
    sp2 = np.array(layer.rows.scheme) == "SP2"
    assert sorted(set(layer.values[sp2] @ (x[0] - 128))) == [-(1 << 16), 1 << 16]
    if narrower:
        with pytest.raises(AssertionError, match="first mismatch"):
            check(cfg, layer, src, x)
    else:
        check(cfg, layer, src, x)


def test_backpressure_and_flushed_rows():
    rng = np.random.default_rng(7)
    layer, src = make_layer(rng, c=3, r=11, hw=(3, 3), m_range=(1e-2, 1e-1))
    m0 = layer.rows.m0.copy()
    n = layer.rows.n.copy()
    m0[3], n[3] = 0, 1  # flushed row: always 0
    n[4] = 60  # very small multiplier: shift beyond the 48-bit register
    m0[4] = 1 << 15
    rows = dataclasses.replace(layer.rows, m0=m0, n=n)
    layer = dataclasses.replace(layer, rows=rows)
    check(config(), layer, src, random_input(rng, src, 1), ready_prob=0.4)


def test_layers_back_to_back_reconfigure():
    rng = np.random.default_rng(11)
    cfg = config()
    jobs, wants = [], []
    for kw in (dict(c=3, r=9, hw=(3, 3)), dict(op="linear", c=13, r=5), dict(c=2, r=13, hw=(2, 3))):
        layer, src = make_layer(rng, **kw)
        x = random_input(rng, src, 2 if kw.get("op") == "linear" else 1)
        jobs.append(Job(layer, src, vectors_of(layer, x)))
        wants.append(golden_outputs(layer, src, x))
    outs = run_jobs(cfg, jobs, ready_prob=0.7)
    for out, want in zip(outs, wants):
        assert np.array_equal(out, want)


def test_a_mutated_rounding_fails_the_layer_test(monkeypatch):
    """A requant unit that truncates instead of rounding half up must fail the bit-exact check."""
    monkeypatch.setattr(rq, "rounding_constant", lambda n: 0)
    rng = np.random.default_rng(0)
    layer, src = make_layer(rng, c=3, r=11, hw=(3, 4))
    with pytest.raises(AssertionError, match="first mismatch"):
        check(config(), layer, src, random_input(rng, src, 1))


@pytest.mark.parametrize("later", [0, 4])
def test_staged_writes_land_before_the_first_read(monkeypatch, later):
    """With `write_stages` the code writes land two cycles after their word. The last word is the
    last group's slice of its only tile and step (K_pad = t_k), and the engine reads it at its
    first issue: the activations follow the configuration at once. Writes 4 cycles later still
    (address, data and enable alike) miss that read, and the bit-exact check has to see it; 3 later
    still make it, so the stages leave that margin."""
    replicated = engine.replicated
    monkeypatch.setattr(engine, "replicated", lambda m, v, n, fanouts, name, reset_less=True: replicated(
        m, v, n, fanouts + (1,) * later if name.startswith(("cwa", "cwd", "cwg", "cwl")) else fanouts, name, reset_less))
    cfg = config(read_stages=2, row_addr=True, write_stages=True, act_fanout=2, shift_drain=True)
    rng = np.random.default_rng(3)
    layer, src = make_layer(rng, op="linear", c=2, r=3, in_bits=8, out_bits=8, out_signed=True)
    assert layer.k_pad == cfg.t_k and cfg.groups["FIXED8"].rows == 1  # one step; one FIXED8 row, one tile
    x = random_input(rng, src, 4)
    if later:
        with pytest.raises(AssertionError, match="first mismatch"):
            check(cfg, layer, src, x)
    else:
        check(cfg, layer, src, x)
