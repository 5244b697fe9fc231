"""A group's row lanes: t_k MAC lanes per row, a pipelined adder tree, an accumulator per row.

Inputs arrive aligned with their tags (valid, first and last step of a row tile). Every row lane
forms its t_k products (SP2 shift-add, Booth, plain multiply, or DSP), registers them, sums them in
a tree with one register per level, and accumulates; on the last step of a tile the final sums are
captured into hold registers that the requantization drain reads one row per cycle (through a mux,
or with `shift_drain` as a shift register toward it) while the next tile accumulates.
Every group of the engine has the same latency (`tree_levels` is shared), so groups run in
lockstep on one activation stream.

Only the tags (valid, first, last, captured) are reset: every data register (operands, products,
tree sums, accumulators, hold registers) is `reset_less`, because the tags already say what counts,
and a reset wired to thousands of data flip-flops was the ECP5 DSP-only baseline's critical net.
Lanes that take their operands late (LUT lanes beside two-stage DSP lanes) read one copy of the
late activation registers per `act_fanout` rows instead of one per group: those registers fed 41
SP2 rows across the ECP5-85F die, and their routing was 18.7 of the full array's 20.9 ns critical
path. DSP lanes off iCE40 take their registered activation operand from the same copies (one
activation register per multiplier was a fanout of 144 from one register, a 12.7 ns route on the
ECP5). Yosys would merge identical registers back into one; `KEEP_REPLICAS` is the synthesis
script line that stops it (a `keep` on the wire does not).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import dsp, lanes
from .config import CODE_BITS, GroupConfig

REPLICA = dsp.REPLICA  # name stem of replicated registers (activations, DSP operands, read addresses)
# Keep the flip-flops that drive the replicas: opt_merge folds identical cells unless the cell
# itself carries `keep` (run after `proc`, before anything merges).
KEEP_REPLICAS = f"setattr -set keep 1 w:*{REPLICA}* %ci1 c:* %i"


def data_reg(shape, name: str | None = None) -> Signal:
    """A data-path register: never reset (the tags say what counts)."""
    return Signal(shape, name=name, reset_less=True)


def delayed(m: Module, v, n: int, name: str, data: bool = True):
    """`v` through `n` registers named `name_1` .. `name_n` (data registers, or reset tags)."""
    for i in range(n):
        reg = Signal(v.shape(), name=f"{name}_{i + 1}", reset_less=data)
        m.d.sync += reg.eq(v)
        v = reg
    return v


def tree_inputs(kind: str, t_k: int) -> int:
    """Terms per row lane: one per MAC (two Booth digits for Booth lanes)."""
    return t_k * (2 if kind == "booth" else 1)


def group_tree_levels(cfg: GroupConfig, t_k: int) -> int:
    return max((tree_levels(tree_inputs(k, t_k)) for k in cfg.kinds), default=1)


def group_stages(cfg: GroupConfig, target: str) -> int:
    return max((dsp.stages(k, target) for k in cfg.kinds), default=1)


def tree_levels(n_inputs: int) -> int:
    return max(1, (n_inputs - 1).bit_length())


class GroupDatapath(wiring.Component):
    def __init__(self, group: str, cfg: GroupConfig, t_k: int, act_width: int, acc_bits: int, target: str,
                 levels: int, stages: int = 1, act_fanout: int = 0, shift_drain: bool = False,
                 drain_fanout: int = 0) -> None:
        self.group, self.cfg, self.t_k, self.act_width = group, cfg, t_k, act_width
        self.act_fanout = act_fanout  # rows per copy of the late activation registers (0: one per group)
        self.shift_drain = shift_drain  # hold registers shift toward `head` (else `head` is a mux by `lane`)
        self.drain_fanout = drain_fanout  # rows per registered first level of that mux (0: one level)
        self.acc_bits, self.target, self.levels, self.stages = acc_bits, target, levels, stages
        if stages < group_stages(cfg, target):
            raise ValueError(f"{stages} product stages are fewer than the {cfg.kinds} lanes need")
        self.code_bits = CODE_BITS[group]
        if levels < group_tree_levels(cfg, t_k):
            raise ValueError(f"{levels} tree levels cannot sum the terms of {cfg.kinds} lanes")
        super().__init__({
            "act": In(t_k * act_width),
            "codes": In(cfg.rows * t_k * self.code_bits),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "head": Out(signed(acc_bits)),  # the hold register the drain reads
            "shift": In(1),  # shift_drain: the drain takes `head` next cycle, then every hold register its successor's
            # otherwise: the row whose hold register `head` is (with drain_fanout: will be next cycle)
            "lane": In(range(max(cfg.rows, 2))),
            # drain_fanout: the lane restarts at 0 (a capture) or advances, so each pick keeps its own copy
            "restart": In(1),
            "advance": In(1),
            "captured": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from aligned inputs to the hold registers."""
        return self.stages + self.levels + 1

    def _code(self, row: int, j: int):
        base = (row * self.t_k + j) * self.code_bits
        return self.codes[base : base + self.code_bits]

    def elaborate(self, platform):
        m = Module()
        t_k, aw, rows = self.t_k, self.act_width, self.cfg.rows
        acts = [self.act[j * aw : (j + 1) * aw].as_signed() for j in range(t_k)]

        # Lanes with fewer product stages than the engine's take their operands late, so every lane
        # delivers its product in the same cycle (the groups run in lockstep).
        # Delayed activations are one chain per copy (each `act_fanout` rows own one), extended as
        # lanes ask for later stages.
        act_cache: dict[tuple[int, int], list] = {}

        def acts_at(n: int, r: int) -> list:
            if n == 0:
                return acts
            copy = r // self.act_fanout if self.act_fanout else 0
            if (n, copy) not in act_cache:
                stem = f"{REPLICA}_act{copy}_" if self.act_fanout else "act"
                act_cache[n, copy] = [delayed(m, a, 1, f"{stem}{j}_late{n}") for j, a in enumerate(acts_at(n - 1, r))]
            return act_cache[n, copy]

        def operands(r: int, n: int) -> tuple[list, list]:
            return [delayed(m, self._code(r, j), n, f"code{r}_{j}_late") for j in range(t_k)], acts_at(n, r)

        # Stage P: registered terms per row, with their (folded) negation bits.
        row_terms: list[list] = [[] for _ in range(rows)]
        row_negs: list[list] = [[] for _ in range(rows)]
        n_dsp = self.cfg.dsp_rows
        for r in range(n_dsp, rows):  # LUT lanes (every row of a LUT group, the topped-up rows of a DSP group)
            kind = self.cfg.row_kind(r)
            build = {"sp2": lanes.sp2_terms, "booth": lanes.booth_terms, "mul": lanes.mul_terms}[kind]
            codes, a_late = operands(r, self.stages - dsp.stages(kind, self.target))
            for j in range(t_k):
                for term, neg in build(m, codes[j], a_late[j]):
                    reg = data_reg(signed(len(term)))  # the one's complement keeps the width
                    m.d.sync += reg.eq(lanes.folded(term, neg))
                    row_terms[r].append(reg)
                    if not (isinstance(neg, Const) and neg.value == 0):
                        neg_reg = data_reg(1)
                        m.d.sync += neg_reg.eq(neg)
                        row_negs[r].append(neg_reg)
        if n_dsp:  # DSP: pairs of rows share a multiplier (FIXED4 packed; iCE40 dual 8x8), or one each
            paired = self.group == "FIXED4" or self.target == "ice40"
            late = self.stages - dsp.stages("dsp", self.target)
            for r in range(0, n_dsp, 2 if paired else 1):
                w, a_late = operands(r, late)
                a_reg = acts_at(late + 1, r) if self.target != "ice40" else a_late  # registered operands
                w2 = operands(r + 1, late)[0] if paired and r + 1 < n_dsp else None
                for j in range(t_k):
                    if w2 is not None:
                        hi, lo = dsp.pair_product(m, self.target, w[j], w2[j], a_late[j], a_reg[j])
                        row_terms[r].append(hi)
                        row_terms[r + 1].append(lo)
                    elif self.target == "ice40" and j % 2 == 0 and j + 1 < t_k:  # odd row: pair its elements
                        hi, lo = dsp.dual_product(m, w[j], a_late[j], w[j + 1], a_late[j + 1])
                        row_terms[r] += [hi, lo]
                    elif self.target == "ice40" and j % 2:
                        pass  # taken with element j - 1
                    else:
                        row_terms[r].append(dsp.product(m, self.target, w[j], a_reg[j]))

        # Pipelined adder trees at natural width. The +1 of every folded negation enters an adder
        # as its carry-in (free in the carry chain): a tree of n terms has n - 1 adders plus the
        # accumulator, one carry-in each, which is exactly one per negatable term. Carries used at
        # deeper levels are delayed with the data.
        sums, carries_left = [], []
        for r in range(rows):
            level, carries = row_terms[r], list(row_negs[r])
            for _ in range(self.levels):
                nxt = []
                for i in range(0, len(level), 2):
                    expr = level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                    if i + 1 < len(level) and carries:
                        expr = expr + carries.pop()
                    s = data_reg(expr.shape())
                    m.d.sync += s.eq(expr)
                    nxt.append(s)
                late_carries = []
                for c in carries:
                    d = data_reg(1)
                    m.d.sync += d.eq(c)
                    late_carries.append(d)
                level, carries = nxt, late_carries
            sums.append(level[0])
            carries_left.append(carries)

        # Tags travel with the data. Their last stage, and the drain's shift, are registered once per
        # `act_fanout` rows (kept apart), like the activations: one tag register fed the enables of
        # every accumulator and hold register of a group, 2500 flip-flops across the ECP5 die.
        tags = [(self.valid, self.first, self.last)]
        for _ in range(self.stages + self.levels):
            v, f, l = Signal(), Signal(), Signal()
            m.d.sync += [v.eq(tags[-1][0]), f.eq(tags[-1][1]), l.eq(tags[-1][2])]
            tags.append((v, f, l))
        m.d.sync += self.captured.eq(tags[-1][0] & tags[-1][2])
        copies: dict[tuple[int, str], Signal] = {}

        def control(r: int, name: str) -> Signal:
            """Row r's copy (shared by its `act_fanout` rows) of a tag or the shift."""
            c = r // self.act_fanout if self.act_fanout else 0
            if (c, name) not in copies:
                reg = Signal(name=f"{REPLICA}_tag{c}_{name}" if self.act_fanout else f"tag_{name}")
                src = dict(zip(("valid", "first", "last"), tags[-2]), shift=self.shift)[name]
                m.d.sync += reg.eq(src)
                copies[c, name] = reg
            return copies[c, name]

        # With `shift_drain` the hold registers form a shift register toward row 0, so the drain reads
        # one register beside its neighbour rather than a mux of every row's (on the ECP5 that mux
        # gathered 18-52 registers from across the die into the requant unit; on the full iCE40
        # array the shift register left nextpnr's placer without a legal placement). A capture
        # loads every row at once; the drain of a tile ends before the next capture.
        # With `drain_fanout` the mux is two levels: each `drain_fanout` rows' pick is registered beside
        # them (a cycle ahead: the engine gives the lane a cycle early), then the drain muxes the picks.
        # The picks read the hold registers a cycle earlier than one mux would, which is still after
        # the capture they drain and before the next. Each pick selects by its own copy of the lane
        # (mod `drain_fanout`), a counter making the drain lane's moves: the lane's low bits broadcast
        # to every pick were the ECP5 dsp+mul baseline's critical path and its Booth baseline's most
        # congested nets.
        holds = [data_reg(signed(self.acc_bits), f"hold{r}") for r in range(rows)]
        if self.shift_drain:
            m.d.comb += self.head.eq(holds[0])
        elif self.drain_fanout:
            f = self.drain_fanout
            picks = [data_reg(signed(self.acc_bits), f"pick{c}") for c in range(-(-rows // f))]
            for c, pick in enumerate(picks):
                part = holds[c * f : (c + 1) * f]
                if len(part) == 1:
                    m.d.sync += pick.eq(part[0])
                    continue
                lane = Signal(range(f), name=f"{REPLICA}_pick{c}_lane", reset_less=True)
                with m.If(self.restart):
                    m.d.sync += lane.eq(0)
                with m.Elif(self.advance):
                    m.d.sync += lane.eq(Mux(lane == f - 1, 0, lane + 1))
                m.d.sync += pick.eq(Array(part)[lane])
            part_of = Signal(range(max(len(picks), 2)), name="drain_part")
            m.d.sync += part_of.eq(self.lane // f)
            m.d.comb += self.head.eq(Array(picks)[part_of])
        else:
            m.d.comb += self.head.eq(Array(holds)[self.lane])
        for r in range(rows):
            valid, first, last = (control(r, n) for n in ("valid", "first", "last"))
            shift = control(r, "shift") if self.shift_drain and r + 1 < rows else None
            acc = data_reg(signed(self.acc_bits), f"acc{r}")
            total = sums[r]
            for c in carries_left[r]:  # at most one is left: the accumulator's carry-in
                total = total + c
            nxt = Mux(first, total, acc + total)
            with m.If(valid):
                m.d.sync += acc.eq(nxt)
            with m.If(valid & last):
                m.d.sync += holds[r].eq(nxt)
            if shift is not None:
                with m.Elif(shift):
                    m.d.sync += holds[r].eq(holds[r + 1])
        return m
