"""The requantization unit: `y = clamp((acc * M0 + 2^(n-1)) >> n, lo, hi)`, the `single` mode of
DESIGN section 2 with a 16-bit multiplier, pipelined to one result per cycle.

Stage 1 forms the exact 48-bit product (a DSP or a LUT multiplier), stage 2 adds the rounding
constant and shifts arithmetically (floor), stage 3 clamps; lo = 0 makes the fused ReLU. Channel
and valid flags travel alongside. An M0 of 0 (a flushed row) gives 0 for every n, as in the golden
model. The shift saturates at 48: the artifact guarantees |acc * M0| < 2^47, so for every n >= 48
the exact result is 0, which (prod + 2^47) >> 48 also gives; the barrel shifter stays 48 wide.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

M_BITS = 16
N_BITS = 6  # n in 1..62
LATENCY = 3
MAX_SHIFT = 48


class RequantUnit(wiring.Component):
    def __init__(self, acc_bits: int = 32, out_bits: int = 16, channel_bits: int = 12) -> None:
        self.acc_bits, self.out_bits = acc_bits, out_bits
        super().__init__({
            "acc": In(signed(acc_bits)),
            "m0": In(M_BITS),
            "n": In(N_BITS),
            "lo": In(signed(out_bits)),
            "hi": In(signed(out_bits)),
            "channel": In(channel_bits),
            "valid": In(1),
            "y": Out(signed(out_bits)),
            "y_channel": Out(channel_bits),
            "y_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        pw = self.acc_bits + M_BITS + 1
        prod = Signal(signed(pw))
        n1 = Signal(N_BITS)
        shifted = Signal(signed(pw))
        lo1, hi1, lo2, hi2 = (Signal(signed(self.out_bits)) for _ in range(4))
        ch1, ch2 = Signal.like(self.channel), Signal.like(self.channel)
        v1, v2 = Signal(), Signal()

        m.d.sync += [prod.eq(self.acc * self.m0), n1.eq(self.n), lo1.eq(self.lo), hi1.eq(self.hi),
                     ch1.eq(self.channel), v1.eq(self.valid)]
        n_eff = Signal(range(MAX_SHIFT + 1))
        rounding = Signal(MAX_SHIFT)
        m.d.comb += [n_eff.eq(Mux(n1 > MAX_SHIFT, MAX_SHIFT, n1)), rounding.eq((1 << n_eff) >> 1)]
        m.d.sync += [shifted.eq((prod + rounding) >> n_eff), lo2.eq(lo1), hi2.eq(hi1), ch2.eq(ch1), v2.eq(v1)]
        m.d.sync += [
            self.y.eq(Mux(shifted < lo2, lo2, Mux(shifted > hi2, hi2, shifted))),
            self.y_channel.eq(ch2),
            self.y_valid.eq(v2),
        ]
        return m
