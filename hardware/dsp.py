"""DSP multipliers for FIXED rows, per target, each ending in a registered product (data
registers: never reset, see hardware/datapath.py).

FIXED-4 rows are processed two at a time: both rows multiply the same activation, so one
multiplier computes `(w1 << S + w2) * a = (w1 a) << S + w2 a` and the two products are unpacked
exactly, `lo = sign_extend(P[S-1:0])`, `hi = (P >> S) + P[S-1]` (the borrow of a negative `lo`),
which holds while `|w2 a| < 2^(S-1)`: 4-bit weights times 8-bit signed activations need
`|w a| <= 8 * 128 = 1024 < 2^11`, so S = 12 and `|A| <= 7 * 2^12 + 8 < 2^15` fits the 16-bit
(SB_MAC16 16x16), 18-bit (MULT18X18D) and 25-bit (DSP48E1) multiplier ports. Unpacking every
product (depth 1) keeps the bound independent of K.

On iCE40 the SB_MAC16 is instantiated in its native dual 8x8 mode instead (two independent signed
8x8 products, registered, no packing needed), which also pairs FIXED-8 rows; Yosys's `-dsp`
inference knows only the 16x16 mode.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value, signed

PACK_SHIFT = 12
REPLICA = "replica"  # name stem of registers kept apart in synthesis (hardware.datapath.KEEP_REPLICAS):
# Yosys had merged the multipliers' activation registers into one, whose fanout to every MULT18X18D
# of the die set the ECP5's Fmax


def packed_operand(w_hi: Value, w_lo: Value) -> Value:
    return (w_hi.as_signed() << PACK_SHIFT) + w_lo.as_signed()


def check_pack_bound(code_bits: int, act_width: int) -> None:
    """The generator's assertion of the exact-unpacking bound (notes/algorithms.md 6.2)."""
    bound = (1 << (code_bits - 1)) * (1 << (act_width - 1))  # |w| <= 2^(b-1), |a| <= 2^(A-1)
    if bound >= 1 << (PACK_SHIFT - 1):
        raise ValueError(f"packed DSP unpacking needs |w a| < 2^{PACK_SHIFT - 1}, got up to {bound}")


def _signed8(m: Module, v: Value) -> Value:
    s8 = Signal(signed(8))
    m.d.comb += s8.eq(v.as_signed())
    return s8


def dual_product(m: Module, w_hi: Value, a_hi: Value, w_lo: Value, a_lo: Value) -> tuple[Value, Value]:
    """Registered products (w_hi * a_hi, w_lo * a_lo) of one iCE40 SB_MAC16 in dual 8x8 mode: two
    independent signed products, so any two MAC lanes can share it (two rows on one activation,
    or two activation elements of one row)."""
    if max(len(a_hi), len(a_lo), len(w_hi), len(w_lo)) > 8:
        raise ValueError("SB_MAC16 dual 8x8 mode takes at most 8-bit operands")
    pw = max(len(a_hi), len(a_lo)) + max(len(w_hi), len(w_lo))
    hi, lo = Signal(signed(pw)), Signal(signed(pw))
    o = Signal(32)
    m.submodules += Instance(
        "SB_MAC16",
        p_MODE_8x8=1, p_A_SIGNED=1, p_B_SIGNED=1, p_TOP_8x8_MULT_REG=1, p_BOT_8x8_MULT_REG=1,
        p_TOPOUTPUT_SELECT=2, p_BOTOUTPUT_SELECT=2,
        i_CLK=ClockSignal("sync"), i_CE=1,
        i_A=Cat(_signed8(m, w_lo), _signed8(m, w_hi)), i_B=Cat(_signed8(m, a_lo), _signed8(m, a_hi)),
        i_C=Const(0, 16), i_D=Const(0, 16), i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0, i_IRSTTOP=0, i_IRSTBOT=0,
        i_ORSTTOP=0, i_ORSTBOT=0, i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
        i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
        o_O=o, o_CO=Signal(), o_ACCUMCO=Signal(), o_SIGNEXTOUT=Signal(),
    )
    m.d.comb += [hi.eq(o[16:32].as_signed()), lo.eq(o[0:16].as_signed())]
    return hi, lo


def pair_product(m: Module, target: str, w_hi: Value, w_lo: Value, a: Value, a_reg: Value) -> tuple[Value, Value]:
    """Registered products (w_hi * a, w_lo * a) of two rows sharing one multiplier (codes up to
    8 bits on iCE40's dual 8x8 mode, up to 4 bits packed elsewhere). `a_reg` is `a` one cycle
    later, a register the caller shares among a few lanes (off iCE40 the operands are registered
    before the multiplier; one activation register per multiplier is a fanout the caller sizes)."""
    code_bits = max(len(w_hi), len(w_lo))
    if target == "ice40":
        return dual_product(m, w_hi, a, w_lo, a)
    pw = len(a) + code_bits
    hi, lo = Signal(signed(pw)), Signal(signed(pw))
    check_pack_bound(code_bits, len(a))
    op = Signal(signed(PACK_SHIFT + code_bits + 1), reset_less=True)  # stage 1: the packed operand
    m.d.sync += op.eq(packed_operand(w_hi, w_lo))
    p = _multiply(m, target, op, a_reg)  # the multiplier sees registers only
    m.d.comb += [lo.eq(p[:PACK_SHIFT].as_signed()), hi.eq((p >> PACK_SHIFT) + p[PACK_SHIFT - 1])]
    return hi, lo


def _multiply(m: Module, target: str, a: Value, b: Value) -> Value:
    """The registered signed product of two registered operands: one fabric register after the
    multiplier, or on ECP5 a MULT18X18D with its own input and output registers on and then a
    fabric register (the combinational MULT18X18D between fabric registers, 4.6 + 3.9 + 6.5 ns, set
    the ECP5 DSP-only design's Fmax, and then its registered output's 9.1 ns route to the adder
    tree did: a DSP's output pins reach the fabric slowly, so the product lands in a register
    first and the tree adds from there)."""
    width = len(a) + len(b)
    p = Signal(signed(width), reset_less=True)
    if target != "ecp5":
        m.d.sync += p.eq(a.as_signed() * b.as_signed())
        return p
    if max(len(a), len(b)) > 18:
        raise ValueError("MULT18X18D takes at most 18-bit operands")
    a18, b18, p36 = Signal(signed(18)), Signal(signed(18)), Signal(36)
    m.d.comb += [a18.eq(a.as_signed()), b18.eq(b.as_signed())]
    ports = {f"i_A{i}": a18[i] for i in range(18)} | {f"i_B{i}": b18[i] for i in range(18)}
    ports |= {f"i_C{i}": 0 for i in range(18)} | {f"o_P{i}": p36[i] for i in range(36)}
    m.submodules += Instance(
        "MULT18X18D", p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0, i_CLK0=ClockSignal("sync"), i_CE0=1, i_RST0=0, **ports)
    m.d.sync += p.eq(p36[:width].as_signed())  # a fabric register beside the DSP
    return p


def product(m: Module, target: str, w: Value, a_reg: Value) -> Value:
    """The product `w * a` of one row off iCE40 (FIXED-8), staged like `pair_product`: Yosys maps
    it to DSP48E1 on Xilinx."""
    w_r = Signal(signed(len(w)), reset_less=True)
    m.d.sync += w_r.eq(w.as_signed())
    return _multiply(m, target, w_r, a_reg)


def stages(kind: str, target: str) -> int:
    """Register stages from a lane's operands to its registered product: DSP lanes off iCE40 register
    their (packed) operands first, so the multiplier sees registers only (a DP16KD's clock-to-out
    plus the packing adder plus the multiplier set the ECP5's Fmax otherwise); the ECP5's
    MULT18X18D adds its input register and a fabric register after its output register."""
    if kind != "dsp" or target == "ice40":
        return 1
    return 4 if target == "ecp5" else 2
