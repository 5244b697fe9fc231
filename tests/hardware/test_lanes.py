"""Every lane kind exhaustively: all codes times all activation values, against the golden
arithmetic (the contract's decode times the activation). Lanes are instantiated side by side, one
per code (or code pair), and the activation is swept, so a sweep is a few hundred cycles."""

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rowmix.formats import codes_to_values
from rowmix.hardware import dsp, lanes


class LaneBank(wiring.Component):
    """One lane per code value (LUT kinds) or per code pair (DSP pairs), all fed the same `a`."""

    def __init__(self, kind: str, act_width: int, code_bits: int = 4, target: str = "generic") -> None:
        self.kind, self.aw, self.cb, self.target = kind, act_width, code_bits, target
        n = 1 << code_bits
        count = n * n * 2 if kind == "pair" else n
        super().__init__({"a": In(signed(act_width)), "y": Out(ArrayLayout(signed(24), count))})

    def elaborate(self, platform):
        m = Module()
        n = 1 << self.cb
        if self.kind == "pair":
            i = 0
            a_reg = Signal.like(self.a)  # the datapath's activation register
            m.d.sync += a_reg.eq(self.a)
            for hi in range(n):
                for lo in range(n):
                    ph, pl = dsp.pair_product(m, self.target, Const(hi, self.cb), Const(lo, self.cb), self.a, a_reg)
                    m.d.comb += [self.y[i].eq(ph), self.y[i + 1].eq(pl)]
                    i += 2
            return m
        build = {"sp2": lanes.sp2_terms, "booth": lanes.booth_terms, "mul": lanes.mul_terms}[self.kind]
        for c in range(n):
            terms = build(m, Const(c, self.cb), self.a)
            total = sum(lanes.folded(t, neg) + neg for t, neg in terms)
            m.d.comb += self.y[c].eq(total)
        return m


def sweep(bank: LaneBank, acts, registered: bool, stages: int = 1) -> np.ndarray:
    out = []

    async def tb(ctx):
        for a in acts:
            ctx.set(bank.a, int(a))
            if registered:
                await ctx.tick().repeat(stages)
            out.append([ctx.get(bank.y[i]) for i in range(len(bank.y))])

    sim = Simulator(bank)
    if registered:
        sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return np.array(out, np.int64)


ACTS = {8: np.arange(-128, 128), 5: np.arange(-16, 16)}


@pytest.mark.parametrize("act_width", [8, 5])
@pytest.mark.parametrize("kind, group", [("sp2", "SP2"), ("booth", "FIXED4"), ("mul", "FIXED4")])
def test_lut_lanes_exhaustive(kind, group, act_width):
    acts = ACTS[act_width]
    got = sweep(LaneBank(kind, act_width), acts, registered=False)
    want = acts[:, None] * codes_to_values(np.arange(16), group)[None, :]
    assert np.array_equal(got, want)


def test_fixed8_plain_lane_exhaustive():
    acts = ACTS[8]
    got = sweep(LaneBank("mul", 8, code_bits=8), acts, registered=False)
    assert np.array_equal(got, acts[:, None] * codes_to_values(np.arange(256), "FIXED8")[None, :])


@pytest.mark.parametrize("act_width", [8, 5])
def test_packed_dsp_pair_exhaustive_at_the_unpacking_limit(act_width):
    """Both rows' codes x every activation, including |w a| = 8 * 128 = 1024, the largest product
    the 12-bit unpacking field must hold exactly."""
    acts = ACTS[act_width]
    got = sweep(LaneBank("pair", act_width), acts, registered=True, stages=dsp.stages("dsp", "generic"))
    v = codes_to_values(np.arange(16), "FIXED4")
    hi, lo = np.meshgrid(v, v, indexing="ij")
    want = np.stack([hi.ravel(), lo.ravel()], axis=1).ravel()[None, :] * acts[:, None]
    assert np.array_equal(got, want)
    assert np.abs(want).max() == 8 * 128 if act_width == 8 else True


def test_generator_asserts_the_packing_bound():
    dsp.check_pack_bound(4, 8)  # 8 * 128 = 1024 < 2^11
    with pytest.raises(ValueError, match="packed DSP unpacking"):
        dsp.check_pack_bound(4, 9)  # 8 * 256 = 2048 would corrupt the upper product
    with pytest.raises(ValueError):
        dsp.check_pack_bound(8, 8)
