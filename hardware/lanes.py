"""MAC lane arithmetic: one weight code times one activation, per lane kind.

Each builder adds the combinational product of a code and a signed activation `a` to module `m`
and returns folded terms `(term, neg)`: the lane's contribution is `-term` when `neg` is set. The
row's adder tree adds `term ^ -neg` (the one's complement) for every term and takes each `neg` as
the carry-in of one of its adders (or of the accumulator), so negation costs XOR gates and no lane
carries its own incrementer (the sign is "folded into the accumulate").

- SP2-4 code `[s | c1(2) | c2(1)]`: `t1 = c1 ? a << (3 - c1) : 0`, `t2 = c2 ? a << 2 : 0`: two muxed
  shifts and one adder; the zero code contributes nothing (DESIGN section 2, all 16 codes).
- FIXED-4 as radix-4 Booth digits: `w = 4 d1 + d0`, `d0 = -2 w1 + w0`, `d1 = -2 w3 + w2 + w1`, each
  digit in {-2..2} selecting 0, a or 2a with a folded sign: the LUT alternative to a DSP.
- Plain multipliers (`mul`): `w * a` as its partial products, what a fixed-point design writes without thinking (baseline).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed

Term = tuple[Value, Value]


def sp2_terms(m: Module, code: Value, a: Value) -> list[Term]:
    c2, c1, s = code[0], code[1:3], code[3]
    mag = Signal(signed(len(a) + 4))
    t1 = Mux(c1 == 0, 0, Mux(c1 == 1, a << 2, Mux(c1 == 2, a << 1, a)))
    m.d.comb += mag.eq(t1 + Mux(c2, a << 2, 0))
    return [(mag, s)]


def booth_terms(m: Module, code: Value, a: Value) -> list[Term]:
    w = code[0:4]
    terms = []
    for i, (lo, mid, hi) in enumerate(((Const(0, 1), w[0], w[1]), (w[1], w[2], w[3]))):
        one = mid ^ lo  # |d| = 1
        two = (hi & ~mid & ~lo) | (~hi & mid & lo)  # |d| = 2
        neg = hi & ~(mid & lo)  # d < 0
        t = Signal(signed(len(a) + 1 + 2 * i))  # |d a| <= 2 |a|, weighted 4^i
        m.d.comb += t.eq(Mux(one, a, Mux(two, a << 1, 0)) << (2 * i))
        terms.append((t, neg))
    return terms


def mul_terms(m: Module, code: Value, a: Value) -> list[Term]:
    """The textbook array multiplier, written out as its partial products: a `*` here would be
    mapped onto the DSPs by Yosys (MULT18X18D on ECP5), and the baseline's point is LUT multipliers
    beside DSP lanes that are already full."""
    b = len(code)
    p = Signal(signed(len(a) + b))
    total = Mux(code[b - 1], -(a << (b - 1)), 0)  # the two's complement weight of the sign bit
    for i in range(b - 1):
        total = total + Mux(code[i], a << i, 0)
    m.d.comb += p.eq(total)
    return [(p, Const(0, 1))]


def folded(term: Value, neg: Value) -> Value:
    """`term` inverted when `neg`: the one's complement; the +1 enters the row's adder tree as a
    carry-in."""
    t = term.as_signed()
    return Mux(neg, ~t, t)
