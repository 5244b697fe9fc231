"""The requantization unit: `y = clamp((acc * M0 + 2^(n-1)) >> n, lo, hi)`, the `single` mode of
DESIGN section 2 with a 16-bit multiplier, pipelined to one result per cycle.

Stages (one register each, so no stage holds more than one wide carry chain or one mux tree,
which keeps the unit off a full iCE40 array's critical paths): inputs; acc + bias; two 16 x 16 partial products
(`acc_lo * M0` unsigned, `acc_hi * M0` signed, on DSPs); their sum, the exact 48-bit product;
plus the rounding constant, in two halves (low half and its carry, then the high half); the
arithmetic shift (floor), in two steps (by n's multiple of 8, then by the rest); saturation flags
from the high bits and the compares of the low out_bits with lo and hi, side by side; the
clamp's choice from those flags; the clamp, a mux (lo = 0 makes the fused ReLU).
Channel and valid flags travel alongside. Only the valid flags take a reset: every other register
is `reset_less`, because a board's engine reset is one net to every reset flip-flop, and the
ULX3S array's three units put 1791 data bits on it (its critical net then). An M0 of 0 (a flushed
row) gives 0 for every n, as in the golden model. The shift saturates at the product width
pw = acc_bits + 17: since |acc * M0| < 2^(pw-1), every n >= pw gives 0, which
(prod + 2^(pw-1)) >> pw also gives.

On iCE40 the partial products are SB_MAC16 instances in 16 x 16 mode with their product register
on: Yosys's `-dsp` inference would do the same for the requant multiplier but also re-map the
dual 8x8 lane DSPs into 16 x 16 mode with the clock tied off (notes/hardware.md 2), so the board
build never passes `-dsp` and instantiates here instead.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .datapath import data_reg, delayed

M_BITS = 16
N_BITS = 6  # n in 1..62
LATENCY = 11


def mul16(m: Module, target: str, a: Value, b: Value, a_signed: bool) -> Signal:
    """Registered 16 x 16 product of `a` (signed or not) and unsigned `b`."""
    p = Signal(signed(len(a) + len(b) + 1) if a_signed else len(a) + len(b), reset_less=True)
    if target == "ice40":
        a16 = Signal(signed(16) if a_signed else 16)  # the 16-bit port, sign- or zero-extended
        m.d.comb += a16.eq(a)
        a = a16
        o = Signal(32)
        m.submodules += Instance(
            "SB_MAC16", p_MODE_8x8=0, p_A_SIGNED=int(a_signed), p_B_SIGNED=0, p_PIPELINE_16x16_MULT_REG2=1,
            p_TOPOUTPUT_SELECT=3, p_BOTOUTPUT_SELECT=3,
            i_CLK=ClockSignal("sync"), i_CE=1, i_A=a, i_B=b, i_C=Const(0, 16), i_D=Const(0, 16),
            i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0, i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
            i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0, i_OHOLDTOP=0, i_OHOLDBOT=0,
            i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
            o_O=o, o_CO=Signal(), o_ACCUMCO=Signal(), o_SIGNEXTOUT=Signal())
        m.d.comb += p.eq(o.as_signed() if a_signed else o)
    else:
        m.d.sync += p.eq((a.as_signed() if a_signed else a) * b)
    return p


def rounding_constant(n: Value) -> Value:
    """2^(n-1) for n >= 1 (round half up), 0 for n = 0."""
    return (1 << n) >> 1


class RequantUnit(wiring.Component):
    """`lo` and `hi` are read at the compare stage, LATENCY - 3 cycles after the input: they are a
    layer's constants (the engine changes them only when no result is in flight), so carrying them
    down the pipeline would cost 2 x out_bits flip-flops per stage for nothing."""

    def __init__(self, acc_bits: int = 32, out_bits: int = 16, channel_bits: int = 12, target: str = "generic") -> None:
        if not 16 <= acc_bits <= 32:
            raise ValueError(f"acc_bits must be 16..32, got {acc_bits}")
        self.acc_bits, self.out_bits, self.target = acc_bits, out_bits, target
        super().__init__({
            "acc": In(signed(acc_bits)),
            "bias": In(signed(acc_bits)),  # added to acc in the unit's own first stage
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
        hi_bits = max(1, self.acc_bits - 16)  # acc = acc_hi * 2^16 + acc_lo, acc_lo unsigned
        pw = self.acc_bits + M_BITS + 1

        def stage(*values):
            regs = [Signal.like(v, reset_less=True) for v in values]
            m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
            return regs

        # the flags ride along; product stages are built explicitly
        acc_in, bias, m0_in = stage(self.acc, self.bias, self.m0)
        valid = delayed(m, self.valid, LATENCY - 1, "valid", data=False)
        flags = stage(self.n, self.channel)
        acc = data_reg(signed(16 + hi_bits))  # acc + bias, modulo 2^acc_bits: protocol.check_accumulator
        m0 = data_reg(M_BITS)
        m.d.sync += [acc.eq(acc_in + bias), m0.eq(m0_in)]
        # |prod| < 2^(pw-1): for every n >= pw the result is 0, as at n = pw. The shift saturates here,
        # two stages before the rounding constant needs it (compare, mux and decoder in one stage
        # set the full iCE40 array's Fmax).
        n_in, ch = flags
        n_eff = data_reg(range(pw + 1))
        m.d.sync += n_eff.eq(Mux(n_in > pw, pw, n_in))
        flags = [n_eff, *stage(ch)]
        p_lo = mul16(m, self.target, acc[:16], m0, a_signed=False)
        p_hi = mul16(m, self.target, acc[16:].as_signed(), m0, a_signed=True)
        n, ch = stage(*flags)
        prod = data_reg(signed(pw))
        m.d.sync += prod.eq((p_hi << 16) + p_lo)
        rounding = data_reg(pw)
        m.d.sync += rounding.eq(rounding_constant(n))
        n, ch = stage(n, ch)
        # prod + 2^(n-1) in two halves, the low half's carry registered between them: as one 42-bit
        # carry chain it set the full iCE40 array's Fmax
        half = pw // 2
        low = data_reg(half + 1)  # the low half's sum and its carry out
        prod_hi, rounding_hi = data_reg(signed(pw - half)), data_reg(pw - half)
        m.d.sync += [low.eq(prod[:half] + rounding[:half]), prod_hi.eq(prod[half:]), rounding_hi.eq(rounding[half:])]
        n, ch = stage(n, ch)
        rounded = data_reg(signed(pw + 1))
        m.d.sync += rounded.eq(Cat(low[:half], prod_hi + rounding_hi + low[half]))
        # the arithmetic shift (floor) in two stages, by n's multiple of 8 and then by its low 3 bits:
        # as one 6-level shifter it set the full iCE40 array's Fmax (5 LUT levels, 20-23 ns)
        n, ch = stage(n, ch)
        coarse = data_reg(signed(pw + 1))
        m.d.sync += coarse.eq(rounded >> Cat(Const(0, 3), n[3:]))
        n_fine, ch = stage(n[:3], ch)
        shifted = data_reg(signed(pw + 1))
        m.d.sync += shifted.eq(coarse >> n_fine)
        (ch,) = stage(ch)
        # saturation from the high bits (zero tests, no wide compare), then a narrow clamp
        ob = self.out_bits
        top = shifted[ob - 1 :]
        lo, hi = self.lo, self.hi  # layer constants: not pipelined (see the class docstring)
        x, over, under, above, below = data_reg(signed(ob)), data_reg(1), data_reg(1), data_reg(1), data_reg(1)
        low_bits = shifted[:ob].as_signed()  # the value if it does not saturate, compared with the bounds
        m.d.sync += [x.eq(low_bits), over.eq(~shifted[-1] & (top != 0)), under.eq(shifted[-1] & ~top.all()),
                     above.eq(low_bits > hi), below.eq(low_bits < lo)]
        ch, lo, hi = stage(ch, lo, hi)  # the bounds' copies beside the clamp's choice
        narrow, bound, clamp = data_reg(signed(ob)), data_reg(signed(ob)), data_reg(1)
        high = over | (~under & above)
        m.d.sync += [narrow.eq(x), bound.eq(Mux(high, hi, lo)), clamp.eq(high | under | below)]
        (ch,) = stage(ch)
        y, y_channel = data_reg(signed(ob), "y"), data_reg(len(ch), "y_channel")
        # the clamp stage is a mux of registers (its compares had set the iCE40's Fmax)
        m.d.sync += [y.eq(Mux(clamp, bound, narrow)), y_channel.eq(ch), self.y_valid.eq(valid)]
        m.d.comb += [self.y.eq(y), self.y_channel.eq(y_channel)]
        return m
