"""The layer engine: one MAC layer of a rowmix artifact at a time, one output pixel after another.

Streams (amaranth.lib.stream, valid/ready):
- `cfg`: 32-bit configuration words (header, per-group row tables, per-group codes; see
  protocol.py) that load one layer tile; accepted only while the engine is idle.
- `act`: one activation vector per output pixel (the im2col column, K_pad = S * t_k elements), t_k
  8-bit elements per beat, `last` on the vector's final beat.
- `out`: the pixel's R output codes in channel order, one per beat, `last` on channel R - 1.

Schedule: the three row groups (SP2, FIXED4, FIXED8) run in lockstep on the broadcast activation
vector. A pixel is T = max_g ceil(R_g / rows_g) tile slots of P = max(S, total row lanes) cycles;
in the first S cycles of a slot each group issues the codes of its current row tile. The last step
of a tile captures every row lane's accumulator into hold registers, which one shared
requantization unit drains (one row per cycle, hence P >= total row lanes) into a two-bank output
buffer at the row's channel. Activation vectors are double-buffered (the next one loads while the
current one computes) and so are output pixels (one streams out while the next computes), so a
layer of N pixels takes about N * T * P cycles; cycles.py models it exactly.

Unsigned 8-bit activations (0..255) enter the signed 8-bit lanes as `a - 128` (the MSB flipped) when
the layer's `offset` flag is set; the host folds `128 * sum_k w_rk` into each row's bias, an exact
identity that lets every lane and DSP use signed operands.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import GROUPS
from . import requant as rq
from .config import CODE_BITS, ArrayConfig
from .datapath import REPLICA, GroupDatapath, delayed, group_stages, group_tree_levels
from .memories import block_ram, registered_read

MAGIC = 0x524D5801  # "RMX", protocol version 1
HEADER_WORDS = 8
ROW_WORDS = 3
CHANNEL_BITS = 12
ACT_BEAT_BITS = 8  # activation element width on the stream
DRAIN_OVERHEAD = 2
OUT_BANKS = 4  # output pixels in flight: computing, draining, streaming
WRITE_TREE = 4  # configuration writes (address and data): a first-level copy per WRITE_TREE leaf copies


def row_layout(acc_bits: int) -> data.StructLayout:
    return data.StructLayout({"bias": signed(acc_bits), "m0": rq.M_BITS, "n": rq.N_BITS,
                              "channel": CHANNEL_BITS, "valid": 1})


def words_per_slice(cfg: ArrayConfig, group: str) -> int:
    return -(-cfg.t_k * CODE_BITS[group] // 32)


def read_fanouts(cfg: ArrayConfig) -> tuple[int, ...]:
    """With `row_addr`, the code read address reaches each row's memory through one register stage
    per entry (`replicated`): a copy per `copy_rows` rows, then one per row. Its length is part of
    the pipeline latency."""
    return (cfg.copy_rows, 1) if cfg.row_addr else ()


def pipeline_latency(cfg: ArrayConfig) -> int:
    """Cycles from a step's issue to the capture of its tile: memory read, read registers (memory
    clock-to-out is slow on every FPGA, and far lanes need a second one), product stages, adder tree,
    accumulator."""
    return 1 + len(read_fanouts(cfg)) + cfg.read_stages + shared_stages(cfg) + shared_levels(cfg) + 1


def replicated(m: Module, v: Value, n: int, fanouts: tuple[int, ...], name: str,
               reset_less: bool = True) -> list[Signal]:
    """`v` in `n` places through one register stage per entry of `fanouts`: stage i holds a copy per
    `fanouts[i]` places (one copy if 0), fed by the stage before, so a broadcast across the die is a
    tree of short hops. The copies are kept apart in synthesis (REPLICA)."""
    out: list[Value] = [v] * n
    for i, per_copy in enumerate(fanouts):
        copies: dict[int, Signal] = {}
        for r in range(n):
            c = r // per_copy if per_copy else 0
            if c not in copies:
                copies[c] = Signal.like(v, name=f"{REPLICA}_{name}_s{i}_{c}", reset_less=reset_less)
                m.d.sync += copies[c].eq(out[r])
            out[r] = copies[c]
    return out


def shared_levels(cfg: ArrayConfig) -> int:
    return max(group_tree_levels(g, cfg.t_k) for g in cfg.groups.values())


def shared_stages(cfg: ArrayConfig) -> int:
    return max(group_stages(g, cfg.target) for g in cfg.groups.values() if g.rows) if cfg.macs_per_cycle else 1


class LayerEngine(wiring.Component):
    def __init__(self, cfg: ArrayConfig) -> None:
        self.cfg = cfg
        self.active_groups = [g for g in GROUPS if cfg.groups[g].rows > 0]
        super().__init__({
            "config": In(stream.Signature(data.StructLayout({"data": 32, "last": 1}))),
            "act": In(stream.Signature(data.StructLayout({"data": cfg.t_k * ACT_BEAT_BITS, "last": 1}))),
            "out": Out(stream.Signature(data.StructLayout({"data": signed(cfg.out_bits), "last": 1}))),
            "busy": Out(1),
            "configured": Out(1),
            "error": Out(1),
            "cycles": Out(32),  # cycles spent with work in flight since the layer was configured
            "pixels": Out(32),  # output pixels streamed since the layer was configured
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        t_k, steps_max = cfg.t_k, cfg.max_steps
        aw = cfg.lane_width
        groups = self.active_groups
        rows = {g: cfg.groups[g].rows for g in groups}
        drain_rows = cfg.drain_rows  # groups drain in parallel, or in turn through one shared requant unit
        max_tiles = {g: cfg.max_tiles(g) for g in groups}
        layout = row_layout(cfg.acc_bits)

        # ---- layer registers (header) ---------------------------------------------------------
        S = Signal(range(steps_max + 1))
        tiles = {g: Signal(range(max_tiles[g] + 1), name=f"tiles_{g}") for g in groups}
        T = Signal(range(max(max_tiles.values(), default=0) + 1))
        lo = Signal(signed(cfg.out_bits))
        hi = Signal(signed(cfg.out_bits))
        offset = Signal()
        # P: a tile slot must cover the S steps and the drain of the widest group's row lanes (+2: table
        # read and hold read latency), so hold registers are read before the next tile overwrites them
        slot_shape = range(max(steps_max, drain_rows + DRAIN_OVERHEAD) + 1)
        # S - 1, P - 2, T - 2 and T == 1 in registers, set as the header arrives, so every end-of-loop
        # test is an equality of registers rather than a subtraction and a compare (those set the
        # iCE40's Fmax); the issuer's flags look one step ahead, hence the "minus two"
        S_m1, P_m2, T_m2, T_one = Signal.like(S), Signal(slot_shape), Signal.like(T), Signal()
        S_m2, S_one = Signal.like(S), Signal()  # for the activation loader's look-ahead flag
        R_m2, R_one = Signal(range(cfg.max_rows + 1)), Signal()  # R - 2 and R == 1, for the output streamer
        o_last = Signal()  # the output streamer is at the pixel's last channel (o_chan == R - 1)
        tiles_m1 = {g: Signal.like(tiles[g], name=f"tiles_m1_{g}") for g in groups}
        # T = max_g tiles_g, T - 2 and T == 1 follow the tile counts register by register (settled
        # two cycles after the header's tile words, long before the header ends): a compare with the
        # incoming word set the iCE40's Fmax
        t_max = Const(0, T.shape())
        for g in groups:
            t_max = Mux(tiles[g] > t_max, tiles[g], t_max)
        m.d.sync += [T.eq(t_max), T_m2.eq(T - 2), T_one.eq(T == 1)]

        # ---- memories --------------------------------------------------------------------------
        # (block RAMs read through a register, without the collision logic: see memories.py)
        m.submodules.act_mem = act_mem = block_ram(t_k * aw, 2 * steps_max)
        act_w, act_r = act_mem.write_port(), registered_read(m, act_mem, "act")
        code_w, code_r, table_w, table_r, datapaths = {}, {}, {}, {}, {}
        levels = shared_levels(cfg)
        # With one shared requant unit the drain reads one row entry per cycle and writes one output
        # per cycle, so one row table (groups at offsets `tbase`) and one output memory serve every
        # group: on the UP5K that saves 11 of its 30 block RAMs.
        shared = cfg.shared_requant
        tbase, depth = {}, 0
        for g in groups:
            tbase[g] = depth if shared else 0
            depth += max_tiles[g] * rows[g]
        if shared and groups:
            m.submodules.rows = tab = block_ram(layout, depth)
            tab_ports = tab.write_port(), registered_read(m, tab, "rows")
        for g in groups:  # one code memory per row lane, beside its lanes, read at its own address copy
            ports = []
            for r in range(rows[g]):
                mem = block_ram(t_k * CODE_BITS[g], max_tiles[g] * steps_max)
                m.submodules[f"codes_{g}_{r}"] = mem
                ports.append((mem.write_port(), registered_read(m, mem, f"codes_{g}_{r}")))
            code_w[g], code_r[g] = (list(p) for p in zip(*ports))
            if shared:
                table_w[g], table_r[g] = tab_ports
            else:
                tab = block_ram(layout, max_tiles[g] * rows[g])
                m.submodules[f"rows_{g}"] = tab
                table_w[g], table_r[g] = tab.write_port(), registered_read(m, tab, f"rows_{g}")
            dp = GroupDatapath(g, cfg.groups[g], t_k, aw, cfg.row_acc_bits(g), cfg.target, levels, shared_stages(cfg),
                               cfg.act_fanout, cfg.drain_shifts(g), cfg.drain_fanout(g))
            m.submodules[f"datapath_{g}"] = datapaths[g] = dp
        out_w, out_r = {}, {}
        for g in groups[:1] if shared else groups:  # one output memory per drain; the channel map
            mem = block_ram(signed(cfg.out_bits), OUT_BANKS * cfg.max_rows)  # picks the group that
            m.submodules[f"out_{g}"] = mem  # wrote a channel
            out_w[g], out_r[g] = mem.write_port(), registered_read(m, mem, f"out_{g}")
        if not shared:
            m.submodules.chmap = chmap = block_ram(range(max(len(groups), 2)), cfg.max_rows)
            chmap_w, chmap_r = chmap.write_port(), registered_read(m, chmap, "chmap")

        # ---- engine state shared by the processes ----------------------------------------------
        act_full = Signal(2)  # activation bank holds a complete vector
        out_busy = Signal(OUT_BANKS)  # output bank reserved from its pixel's first issue until streamed
        out_full = Signal(OUT_BANKS)  # output bank holds a complete pixel
        issuing = Signal()
        draining = Signal()
        drained = Signal()  # no tile in the pipeline and no result in the requant units
        configured = Signal()
        error = Signal()
        m.d.comb += [self.configured.eq(configured), self.error.eq(error)]
        idle = ~issuing & ~draining & (act_full == 0) & (out_busy == 0) & (out_full == 0) & drained
        busy = Signal()
        m.d.comb += self.busy.eq(busy)

        # ---- configuration loader --------------------------------------------------------------
        hdr = Signal(range(HEADER_WORDS))
        hdr_is = Signal(HEADER_WORDS, init=1)  # one-hot `hdr`, a cycle late: words come at least 3 cycles apart
        m.d.sync += hdr_is.eq(1 << hdr)
        done_section = 1 + 2 * len(groups)
        section = Signal(range(done_section + 1))  # 0 header, then row tables, then codes
        c_tile = Signal(range(max(max_tiles.values(), default=1) + 1))
        c_lane = Signal(range(max(rows.values(), default=1) + 1))
        c_word = Signal(range(4))
        c_step = Signal(range(steps_max + 1))
        c_addr = Signal(range(max([max_tiles[g] * max(rows[g], steps_max) for g in groups], default=1) + 1))  # the
        # section's next memory address (entries and slices arrive in address order: a counter, no multiplier)
        item_words = max([ROW_WORDS] + [words_per_slice(cfg, g) for g in groups])
        buf = Signal(32 * (item_words - 1))  # earlier words of a row entry or code slice
        word = self.config.payload.data
        # One word every third cycle: the loader's decisions are registered flags, recomputed in the two
        # cycles after each word, first from its counters (`f_*`), then from those flags (`x_*`, below),
        # so no decision is a compare or flag chain (they set the iCE40's Fmax).
        # `ready` is a register: the engine is idle (an activation beat is the only event that ends
        # idleness) or mid-configuration, and neither this cycle nor the last accepted a word. As a
        # gate of registered flags it was the iCE40's critical path (word valid -> handshake -> counters).
        ready, cooling = Signal(), Signal()
        accept = self.config.valid & ready
        m.d.comb += self.config.ready.eq(ready)
        m.d.sync += [cooling.eq(accept), ready.eq(~accept & ~cooling & (
            (idle & ~(self.act.valid & self.act.ready)) | (section != 0)))]
        sections = [(1 + i, g, "rows") for i, g in enumerate(groups)] + \
                   [(1 + len(groups) + i, g, "codes") for i, g in enumerate(groups)]

        def after(sec: int):
            """The first non-empty section after `sec` (tile counts are in registers by then)."""
            target = Const(done_section, section.shape())
            for s_, g, _ in reversed(sections):
                if s_ > sec:
                    target = Mux(tiles[g] != 0, s_, target)
            return target

        f_more, f_last_lane, f_last_tile, f_last_step, f_hdr_last = (Signal() for _ in range(5))
        f_next = Signal.like(section)  # the first non-empty section after the current one
        m.d.sync += [f_last_step.eq(c_step == S_m1), f_hdr_last.eq(hdr == HEADER_WORDS - 1)]
        # What the next word does, one flag per counter move, from the flags above: the word ends an
        # item (x_item), a lane round (x_lane), a tile (x_tile), the section (x_sec), the whole
        # configuration (x_done); the counter moves at a word are then a flag and an enable each.
        x_hdr, x_item, x_lane, x_step, x_addr, x_tile, x_sec, x_done = (Signal(name=f"x_{n}") for n in (
            "hdr", "item", "lane", "step", "addr", "tile", "sec", "done"))
        x_rows = {g: Signal(name=f"x_rows_{g}") for g in groups}  # the word completes a row entry of g
        x_codes = {g: Signal(name=f"x_codes_{g}") for g in groups}  # ... a code slice of g
        x_next = Signal.like(section)  # the section after this one ends (0 once the configuration is done)
        last_sec = f_next == done_section
        m.d.sync += x_next.eq(Mux(last_sec, 0, f_next))
        m.d.sync += [x.eq(0) for x in [x_hdr, x_item, x_lane, x_step, x_addr, x_tile, *x_rows.values(), *x_codes.values()]]
        with m.Switch(section):
            with m.Case(0):
                m.d.sync += [f_next.eq(after(0)), x_hdr.eq(1), x_sec.eq(f_hdr_last), x_done.eq(f_hdr_last & last_sec)]
            for sec, g, kind in sections:
                with m.Case(sec):
                    n_words = ROW_WORDS if kind == "rows" else words_per_slice(cfg, g)
                    m.d.sync += [f_more.eq((c_word < n_words - 1) if n_words > 1 else 0),
                                 f_last_lane.eq(c_lane == rows[g] - 1), f_last_tile.eq(c_tile == tiles_m1[g]),
                                 f_next.eq(after(sec))]
                    lane_end = ~f_more & f_last_lane
                    tile_end = lane_end & (f_last_step if kind == "codes" else 1)
                    m.d.sync += [x_item.eq(~f_more), x_lane.eq(lane_end), x_tile.eq(tile_end),
                                 x_sec.eq(tile_end & f_last_tile), x_done.eq(tile_end & f_last_tile & last_sec)]
                    if kind == "rows":
                        m.d.sync += [x_rows[g].eq(~f_more), x_addr.eq(~f_more)]
                    else:
                        m.d.sync += [x_codes[g].eq(~f_more), x_step.eq(lane_end), x_addr.eq(lane_end)]

        full = {n: Cat(buf, word)[32 * (item_words - n):] for n in range(1, item_words + 1)}  # an item's words,
        # first word lowest (a FIXED8 slice of t_k 16 is 4 words: the loader once assumed at most 3)
        for g in groups:
            entry = Signal(layout, name=f"entry_{g}")
            f = full[ROW_WORDS]
            m.d.comb += [entry.bias.eq(f[0:32].as_signed()), entry.m0.eq(f[32:48]), entry.n.eq(f[48:54]),
                         entry.channel.eq(f[64 : 64 + CHANNEL_BITS]), entry.valid.eq(f[80])]
            with m.If(accept & x_rows[g]):
                m.d.comb += [table_w[g].addr.eq(tbase[g] + c_addr), table_w[g].data.eq(entry), table_w[g].en.eq(1)]
                if not shared:
                    m.d.comb += [chmap_w.addr.eq(entry.channel), chmap_w.data.eq(groups.index(g)),
                                 chmap_w.en.eq(entry.valid)]
            slice_ = full[words_per_slice(cfg, g)][:t_k * CODE_BITS[g]]
            if cfg.write_stages:
                # Two register stages, a copy per WRITE_TREE * `act_fanout` rows, then one per
                # `act_fanout` rows, kept apart: one configuration word to every code memory of the
                # ECP5 array was a 24 ns route, and one stage of copies a 15 ns one. (A stage of one
                # copy per memory cost 6500 flip-flops on the ULX3S array and left its baselines
                # unroutable.) Writes land two cycles late, before any read can follow: the last
                # word registers `configured`, a vector loads, `start` registers, the issuer sets the
                # read address, and the memory samples it a cycle later at the earliest.
                # The address and the enable take as long, so the three arrive together: the enable's
                # first stage is the same tree's (the write flag and the lane, whose compare with each
                # row is the second): a row's enable straight from the stream register's `full` was an
                # 11 ns route on the ECP5 array with a copy per 2 rows.
                tree = (WRITE_TREE * cfg.act_fanout, cfg.act_fanout)
                rows_g = len(code_w[g])
                w_addr = replicated(m, c_addr, rows_g, tree, f"cwa_{g}")
                w_data = replicated(m, slice_, rows_g, tree, f"cwd_{g}")
                w_go = replicated(m, accept & x_codes[g], rows_g, tree[:1], f"cwg_{g}", reset_less=False)
                w_lane = replicated(m, c_lane, rows_g, tree[:1], f"cwl_{g}")
            for r, port in enumerate(code_w[g]):
                addr, data, en = c_addr, slice_, accept & x_codes[g] & (c_lane == r)
                if cfg.write_stages:
                    addr, data, en = w_addr[r], w_data[r], Signal(name=f"cw_en_{g}_{r}")
                    m.d.sync += en.eq(w_go[r] & (w_lane[r] == r))
                m.d.comb += [port.addr.eq(addr), port.data.eq(data), port.en.eq(en)]
        # Header words 0-5 are decoded a cycle after they are taken, from a register (`h_word`): the
        # magic compare and the derived counts (S - 1, R == 1, ...) straight from the configuration
        # stream register set the iCE40's Fmax. The next word comes three cycles later at the earliest.
        h_word = Signal(32, reset_less=True)
        h_is = Signal(6)
        m.d.sync += h_is.eq(0)
        with m.If(h_is[0]):
            m.d.sync += error.eq(h_word != MAGIC)  # a new layer clears old errors
        with m.If(h_is[1]):
            w = h_word[: len(S)]
            d = drain_rows + DRAIN_OVERHEAD
            m.d.sync += [S.eq(w), S_m1.eq(w - 1), S_m2.eq(w - 2), S_one.eq(w == 1),
                         P_m2.eq(Mux(w > d, w - 2, d - 2))]
        with m.If(h_is[2]):
            w = h_word[: len(R_m2)]
            m.d.sync += [R_m2.eq(w - 2), R_one.eq(w == 1), o_last.eq(w == 1)]
        for i, g in enumerate(GROUPS):
            if g in tiles:
                with m.If(h_is[3 + i]):
                    w = h_word[: len(tiles[g])]
                    m.d.sync += [tiles[g].eq(w), tiles_m1[g].eq(w - 1)]
        with m.If(accept):
            m.d.sync += [configured.eq(0), buf.eq(Cat(buf, word)[32:])]  # buf: the last words
            with m.If(x_hdr):
                # which header word this is, from a one-hot register (`hdr_is`, settled between words)
                # rather than a decode of `hdr` behind the handshake (an iCE40 critical path)
                m.d.sync += [h_is.eq(hdr_is[:6]), h_word.eq(word)]
                with m.If(hdr_is[6]):
                    m.d.sync += [lo.eq(word[:16].as_signed()), hi.eq(word[16:].as_signed())]
                with m.If(hdr_is[7]):
                    m.d.sync += offset.eq(word[0])
                m.d.sync += hdr.eq(hdr + 1)
            with m.Else():
                m.d.sync += c_word.eq(Mux(x_item, 0, c_word + 1))
            with m.If(x_item):
                m.d.sync += c_lane.eq(c_lane + 1)
            with m.If(x_lane):
                m.d.sync += c_lane.eq(0)
            with m.If(x_step):
                m.d.sync += c_step.eq(c_step + 1)
            with m.If(x_addr):
                m.d.sync += c_addr.eq(c_addr + 1)
            with m.If(x_tile):
                m.d.sync += [c_step.eq(0), c_tile.eq(c_tile + 1)]
            with m.If(x_sec):  # the section's last word: counters restart for the next section
                m.d.sync += [section.eq(x_next), hdr.eq(0), c_tile.eq(0), c_lane.eq(0), c_word.eq(0), c_step.eq(0),
                             c_addr.eq(0)]
            with m.If(x_done):
                m.d.sync += configured.eq(~error & self.config.payload.last)
            with m.If(x_done != self.config.payload.last):
                m.d.sync += error.eq(1)  # the word stream is shorter or longer than its header says

        # ---- activation loader -------------------------------------------------------------------
        l_bank = Signal()
        l_step = Signal(range(steps_max + 1))
        free = ~act_full.bit_select(l_bank, 1)
        m.d.comb += self.act.ready.eq(configured & free)
        elems = []
        for j in range(t_k):
            e = self.act.payload.data[j * ACT_BEAT_BITS : (j + 1) * ACT_BEAT_BITS]
            e = Mux(offset, e ^ 0x80, e)  # unsigned 0..255 -> signed a - 128
            elems.append(e[:aw])  # 4-bit configs keep 5 signed bits: 0..15 and -7..7 both fit
        m.d.comb += [act_w.addr.eq(l_bank * steps_max + l_step), act_w.data.eq(Cat(*elems))]
        # `end` (l_step == S - 1) is a register that looks a beat ahead: behind the handshake, the
        # compare set the iCE40's Fmax. Beats are refused until configured, so while not configured
        # the flag settles from the counter; a beat then moves it with the counter.
        end = Signal()
        with m.If(self.act.valid & self.act.ready):
            m.d.comb += act_w.en.eq(1)
            m.d.sync += [l_step.eq(l_step + 1), end.eq(l_step == S_m2)]
            with m.If(end != self.act.payload.last):
                m.d.sync += error.eq(1)  # vector length differs from K_pad / t_k
            with m.If(end):
                m.d.sync += [l_step.eq(0), end.eq(S_one), l_bank.eq(~l_bank), act_full.bit_select(l_bank, 1).eq(1)]
        with m.Elif(~configured):
            m.d.sync += end.eq(l_step == S_m1)

        # ---- issue: tiles and steps of one pixel ------------------------------------------------
        i_bank = Signal()  # activation bank of the pixel being issued
        i_obank = Signal(range(OUT_BANKS))  # its output bank (outputs are buffered deeper: the drain
        # and the streaming of a pixel take longer than two pixel periods on short layers)
        i_tile = Signal.like(T)
        i_slot = Signal(slot_shape)
        base = {g: Signal(range(max_tiles[g] * steps_max + 1), name=f"base_{g}") for g in groups}
        # The issuer's decisions are registered flags: whether a pixel may start (`start`, `nxt_ok`:
        # its activations are loaded and its output bank is free), whether this is a slot's last cycle
        # (`slot_end`) and the pixel's last tile (`tile_last`). Decided from the handshake state and
        # two compares in the same cycle they were the iCE40's and the ECP5 baselines' critical paths.
        # `start` and `nxt_ok` see the state one cycle late, which can only hold a start back: every
        # event that would withdraw one is the issuer's own (bank flips, bank reservations, the
        # activation bank it frees), or a new layer, which is accepted only while no vector is loaded.
        start, nxt_ok, slot_end, tile_last = Signal(), Signal(), Signal(), Signal()
        nxt_obank = (i_obank + 1)[: len(i_obank)]
        m.d.sync += [start.eq(configured & act_full.bit_select(i_bank, 1) & ~out_busy.bit_select(i_obank, 1)),
                     nxt_ok.eq(configured & act_full.bit_select(~i_bank, 1) & ~out_busy.bit_select(nxt_obank, 1))]
        issue = Signal()  # a step is issued this cycle
        step_last = i_slot == S_m1
        # Read addresses live in registers that make the same moves as the counters they are the sum
        # of (bank * steps_max + i_slot, base + i_slot), so no adder sits before the block RAMs.
        a_addr = Signal.like(act_r.addr, name="act_addr", reset_less=True)
        rd_addr = {g: Signal.like(code_r[g][0].addr, reset_less=True, name=f"code_addr_{g}") for g in groups}
        all_rd = list(rd_addr.values())
        bank_base = lambda bank: Mux(bank, steps_max, 0)  # noqa: E731
        with m.If(~issuing):
            with m.If(start):
                m.d.sync += [issuing.eq(1), i_tile.eq(0), i_slot.eq(0), out_busy.bit_select(i_obank, 1).eq(1),
                             slot_end.eq(0), tile_last.eq(T_one)]  # (P >= 3: a slot never ends at once)
                m.d.sync += [base[g].eq(0) for g in groups]
                m.d.sync += [a_addr.eq(bank_base(i_bank))] + [a.eq(0) for a in all_rd]
        with m.Else():
            m.d.comb += issue.eq(i_slot < S)
            m.d.sync += [i_slot.eq(i_slot + 1), slot_end.eq(~slot_end & (i_slot == P_m2))]
            m.d.sync += [a.eq(a + 1) for a in [a_addr] + all_rd]
            with m.If(slot_end):
                m.d.sync += [i_slot.eq(0), i_tile.eq(i_tile + 1), tile_last.eq(i_tile == T_m2)]
                m.d.sync += [base[g].eq(base[g] + S) for g in groups]
                m.d.sync += [rd_addr[g].eq(base[g] + S) for g in groups]
                m.d.sync += a_addr.eq(bank_base(i_bank))
                with m.If(tile_last):  # pixel issued: free its activations, next pixel
                    m.d.sync += [act_full.bit_select(i_bank, 1).eq(0), i_bank.eq(~i_bank), i_obank.eq(nxt_obank)]
                    # counters and addresses restart whether the next pixel goes on at once or waits
                    # (`start` sets the same values), so the wait decision stays off their paths
                    m.d.sync += [a_addr.eq(bank_base(~i_bank)), i_tile.eq(0), tile_last.eq(T_one)]
                    m.d.sync += [base[g].eq(0) for g in groups]
                    m.d.sync += [a.eq(0) for a in all_rd]
                    with m.If(nxt_ok):
                        m.d.sync += out_busy.bit_select(nxt_obank, 1).eq(1)
                    with m.Else():
                        m.d.sync += issuing.eq(0)
        # The memories read every cycle (a gated read enable fans out to every block RAM of a wide code
        # memory and set the ECP5's Fmax); while the engine waits the address holds, so idle lanes see
        # unchanged operands, and `valid` tags what counts.
        m.d.comb += act_r.addr.eq(a_addr)
        # tags one cycle later, aligned with the memory outputs
        v_tag = {g: Signal(name=f"valid_{g}") for g in groups}
        f_tag, l_tag = Signal(), Signal()
        m.d.sync += [f_tag.eq(i_slot == 0), l_tag.eq(step_last)]
        # With `row_addr` the code read addresses reach each row's memory through register stages
        # (`read_fanouts`): one address counter to every code block RAM of the ECP5 array was its
        # critical path (18 ns routing, and 12 of 18 ns when every row had its own counter). The
        # activations and the tags wait as long; the activation memory is read on time, so a bank
        # the issuer frees is never read after the loader refills it.
        late = len(read_fanouts(cfg))

        # the read registers: memory outputs and their tags, registered `read_stages` (+ late) times more
        def read_regs(v, name: str, data: bool = True, extra: int = late):
            return delayed(m, v, cfg.read_stages + extra, name, data)

        act_q = read_regs(act_r.data, "act_q")
        f_q, l_q = read_regs(f_tag, "first_q", data=False), read_regs(l_tag, "last_q", data=False)
        for g in groups:
            addrs = replicated(m, rd_addr[g], len(code_r[g]), read_fanouts(cfg), f"ra_{g}") if late \
                else [rd_addr[g]] * len(code_r[g])
            m.d.comb += [port.addr.eq(a) for a, port in zip(addrs, code_r[g])]
            m.d.sync += v_tag[g].eq(issue & (i_tile < tiles[g]))
            codes_q = read_regs(Cat(*(port.data for port in code_r[g])), f"codes_q_{g}", extra=0)
            v_q = read_regs(v_tag[g], f"valid_q_{g}", data=False)
            dp = datapaths[g]
            m.d.comb += [dp.act.eq(act_q), dp.codes.eq(codes_q), dp.valid.eq(v_q), dp.first.eq(f_q), dp.last.eq(l_q)]

        # Tile descriptors travel to the drain with the data: (tile, output bank, last tile of pixel).
        delay = pipeline_latency(cfg)
        desc = [(Signal.like(i_tile), Signal.like(i_obank), Signal(), Signal())]
        m.d.comb += [desc[0][0].eq(i_tile), desc[0][1].eq(i_obank), desc[0][2].eq(tile_last),
                     desc[0][3].eq(issue & step_last)]
        for k in range(delay):
            d = (Signal.like(i_tile), Signal.like(i_obank), Signal(), Signal())
            m.d.sync += [a.eq(b) for a, b in zip(d, desc[-1])]
            desc.append(d)
        cap_tile, cap_bank, cap_lastpix, captured = desc[-1]
        pending = Signal(range(delay + 2))  # tiles issued but not yet captured
        inc, dec = issue & step_last, captured
        m.d.sync += pending.eq(pending + inc - dec)

        # ---- drain, one per group: hold registers -> row table -> requant unit -> output memory ----
        # The groups drain in parallel, one row lane per cycle each, so a tile slot needs
        # max_g rows_g + 2 cycles (table read and hold read) rather than the sum over the groups.
        d_index = Signal(range(drain_rows + 1))
        d_bank, d_lastpix = Signal.like(i_obank), Signal()
        d_active = {g: Signal(name=f"active_{g}") for g in groups}
        # Which group a drain cycle serves (`d_on`), its lane (`d_lane`) and its row-table address
        # (`d_addr`) are counters started at the capture, not compares and products of d_index: the
        # table read address is then a register (this path set the iCE40's Fmax).
        d_on = {g: Signal(name=f"drain_on_{g}") for g in groups}
        d_lane = {g: Signal(range(max(rows[g], 2)), name=f"drain_lane_{g}") for g in groups}
        # The row-table address of a captured tile's first row, `tbase + tile * rows`, is a counter too
        # (tiles are captured in issue order): as a product it was the ECP5's critical path (a MULT18X18D).
        t_span = {g: tbase[g] + max(max_tiles.values()) * rows[g] for g in groups}  # tiles past a group's own
        d_addr = {g: Signal(range(max(t_span[g], depth) + 1), name=f"drain_addr_{g}") for g in groups}
        cap_addr = {g: Signal.like(d_addr[g], name=f"capture_addr_{g}", init=tbase[g]) for g in groups}
        with m.If(accept):  # a new layer (only accepted while idle) starts at its first tile
            m.d.sync += [cap_addr[g].eq(tbase[g]) for g in groups]
        with m.If(captured):
            m.d.sync += [d_index.eq(0), d_bank.eq(cap_bank), d_lastpix.eq(cap_lastpix)]
            for g in groups:
                m.d.sync += [d_active[g].eq(cap_tile < tiles[g]), d_lane[g].eq(0),
                             d_addr[g].eq(cap_addr[g]),
                             cap_addr[g].eq(Mux(cap_lastpix, tbase[g], cap_addr[g] + rows[g]))]
        with m.Elif(draining):
            m.d.sync += d_index.eq(d_index + 1)
        # A drain step of group g moves d_lane and, in drain_fanout mode, the picks' lane copies with it.
        # It is a register loaded with the next cycle's step, from the next `draining` and `d_on` (the
        # values those registers load) and the capture one stage up the descriptor line: as
        # `~captured & draining & d_on` it was a LUT driving every pick's lane copy across the ECP5 array.
        d_step = {g: Signal(name=f"drain_step_{g}") for g in groups}
        last_step = {g: d_step[g] & (d_lane[g] == rows[g] - 1) for g in groups}
        draining_next = Mux(captured, 1, draining & (d_index != drain_rows - 1))
        m.d.sync += draining.eq(draining_next)
        captured_next = desc[-2][3]
        for i, g in enumerate(groups):
            stays = d_on[g] & ~last_step[g]
            if shared and i:
                stays |= last_step[groups[i - 1]]
            on_next = Mux(captured, i == 0 or not shared, stays)  # after its last lane, the next group's turn
            m.d.sync += [d_on[g].eq(on_next), d_step[g].eq(~captured_next & draining_next & on_next)]
            with m.If(d_step[g]):
                m.d.sync += [d_lane[g].eq(d_lane[g] + 1), d_addr[g].eq(d_addr[g] + 1)]
        s_bank, s_end, s_busy = Signal.like(i_obank), Signal(), Signal()
        m.d.sync += [s_bank.eq(d_bank), s_end.eq(draining & (d_index == drain_rows - 1) & d_lastpix), s_busy.eq(draining)]
        bank_line, end_line = [s_bank], [s_end]
        for _ in range(rq.LATENCY):
            b, e = Signal.like(i_obank), Signal()
            m.d.sync += [b.eq(bank_line[-1]), e.eq(end_line[-1])]
            bank_line.append(b)
            end_line.append(e)
        units = {}
        ch_bits = max(1, (cfg.max_rows - 1).bit_length())  # a row's output channel within the layer
        if shared:
            m.submodules.requant = unit = rq.RequantUnit(cfg.acc_bits, cfg.out_bits, ch_bits, cfg.target)
            units = {g: unit for g in groups}
        for g in groups:
            requ = units.get(g)
            if requ is None:
                m.submodules[f"requant_{g}"] = requ = rq.RequantUnit(cfg.acc_bits, cfg.out_bits, ch_bits, cfg.target)
            s_valid, taking = Signal(name=f"valid_{g}"), Signal(name=f"taking_{g}")
            in_g = draining & d_on[g]
            with m.If(in_g if shared else 1):
                m.d.comb += table_r[g].addr.eq(d_addr[g])
            m.d.sync += [s_valid.eq(in_g & d_active[g]), taking.eq(in_g)]
            if cfg.drain_shifts(g):
                m.d.comb += datapaths[g].shift.eq(in_g)  # the unit takes the head row next cycle
            elif cfg.drain_fanout(g):  # the datapath registers its first mux level: the lane goes in early,
                # and its picks' lane copies restart and step with d_lane
                m.d.comb += [datapaths[g].lane.eq(d_lane[g]), datapaths[g].restart.eq(captured),
                             datapaths[g].advance.eq(d_step[g])]
            else:
                m.d.sync += datapaths[g].lane.eq(d_lane[g])
            entry = table_r[g].data
            drive = [requ.acc.eq(datapaths[g].head), requ.bias.eq(entry.bias), requ.m0.eq(entry.m0), requ.n.eq(entry.n),
                     requ.channel.eq(entry.channel), requ.valid.eq(s_valid & entry.valid)]
            m.d.comb += [requ.lo.eq(lo), requ.hi.eq(hi)]  # the layer's clamp, read at the unit's last stage
            if shared:
                with m.If(taking):  # the shared unit takes this group's lane
                    m.d.comb += drive
            else:
                m.d.comb += drive
            if g in out_w:
                m.d.comb += [out_w[g].addr.eq(bank_line[-1] * cfg.max_rows + requ.y_channel), out_w[g].data.eq(requ.y),
                             out_w[g].en.eq(requ.y_valid)]
        with m.If(end_line[-1]):
            m.d.sync += out_full.bit_select(bank_line[-1], 1).eq(1)
        tail = Signal(range(rq.LATENCY + 3))  # drain results still inside the requant pipelines
        with m.If(draining | s_busy):
            m.d.sync += tail.eq(rq.LATENCY + 2)
        with m.Elif(tail != 0):
            m.d.sync += tail.eq(tail - 1)
        m.d.comb += drained.eq((pending == 0) & (tail == 0))

        # ---- output streamer ---------------------------------------------------------------------
        o_bank = Signal(range(OUT_BANKS))
        o_chan = Signal(range(cfg.max_rows + 1))
        m.submodules.out_fifo = ofifo = fifo.SyncFIFOBuffered(width=cfg.out_bits + 1, depth=4)
        # Free FIFO places not yet promised to a read (a credit counter instead of `level + pending <
        # depth`, an adder and compare the iCE40 found on its critical path); the pixel's last channel
        # is a flag advanced with `o_chan`, not a compare with R - 1.
        # `has_credit` is `credits != 0` kept in a register (as a zero test it sat between the bank
        # pointer and the pointer's own enable, an iCE40 critical path).
        credits = Signal(range(ofifo.depth + 1), init=ofifo.depth)
        has_credit = Signal(init=1)
        can_read = out_full.bit_select(o_bank, 1) & has_credit
        credits_next = credits - can_read + (self.out.valid & self.out.ready)
        m.d.sync += [credits.eq(credits_next), has_credit.eq(credits_next != 0)]
        for g in out_r:
            m.d.comb += out_r[g].addr.eq(o_bank * cfg.max_rows + o_chan)
        out_data = Signal(signed(cfg.out_bits))
        if shared:
            for g in out_r:
                m.d.comb += out_data.eq(out_r[g].data)
        else:
            m.d.comb += chmap_r.addr.eq(o_chan)
            for gi, g in enumerate(groups):
                with m.If(chmap_r.data == gi):
                    m.d.comb += out_data.eq(out_r[g].data)
        rd_pending, rd_last = Signal(), Signal()
        m.d.sync += [rd_pending.eq(can_read), rd_last.eq(o_last)]
        with m.If(can_read):
            m.d.sync += [o_chan.eq(o_chan + 1), o_last.eq(o_chan == R_m2)]
            with m.If(o_last):
                m.d.sync += [o_chan.eq(0), o_last.eq(R_one), o_bank.eq(o_bank + 1), out_full.bit_select(o_bank, 1).eq(0),
                             out_busy.bit_select(o_bank, 1).eq(0)]
        with m.If(rd_pending & rd_last):  # counted as the pixel's last code enters the FIFO: the 32-bit
            m.d.sync += self.pixels.eq(self.pixels + 1)  # counter's enable then starts at registers
        m.d.comb += [ofifo.w_data.eq(Cat(out_data, rd_last)), ofifo.w_en.eq(rd_pending)]
        m.d.comb += [self.out.payload.data.eq(ofifo.r_data[:cfg.out_bits]), self.out.payload.last.eq(ofifo.r_data[-1]),
                     self.out.valid.eq(ofifo.r_rdy), ofifo.r_en.eq(self.out.ready), busy.eq(~idle | ofifo.r_rdy)]

        # `cycles`: from the cycle that accepts a layer's first activation beat to the one that hands
        # out its last output code, inclusive (what the cycle model predicts); `pixels`: pixels out.
        # Both counters clear in the cycle after a layer's first header word (the engine is idle then, so
        # neither would count): a registered clear, not the handshake, drives their 64 enables. A
        # cycle is counted one cycle after it happens (`counting` is registered: `idle` into the
        # counter's 32 enables was an iCE40 critical path), so the count is complete two cycles after
        # the last output code.
        clear = Signal()
        m.d.sync += clear.eq(accept & x_hdr & (hdr == 0))
        counting = Signal()
        m.d.sync += counting.eq((self.act.valid & self.act.ready) | (l_step != 0) | ~idle | ofifo.r_rdy)
        with m.If(clear):
            m.d.sync += [self.cycles.eq(0), self.pixels.eq(0)]
        with m.Elif(counting):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m
