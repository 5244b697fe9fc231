"""The board side of the host link (frames in boards/frames.py): UART bytes in, engine streams out,
one response frame per request.

A request's payload is stored in a buffer memory while its check byte accumulates; only a frame
that passes every check is replayed into the engine (CONFIG words, or one ACT vector with `last`
on its final beat), so a corrupted byte never reaches the array. An ACT's outputs are collected
(at most `max_rows` codes, int16 on the wire) and returned as one RESULT frame. The sequencing is
deliberately byte-serial: a UART byte takes 10 x divisor cycles, far longer than any of these
steps, and a small FSM costs fewer LUTs than a pipelined one."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hardware.config import ArrayConfig
from ..hardware.engine import ACT_BEAT_BITS
from ..hardware.memories import block_ram, registered_read
from .frames import SYNC, Cmd, Nak
from .onehot import OneHotFSM
from .frames import buffer_bytes as default_buffer_bytes

STATUS_BYTES = 11


class HostLink(wiring.Component):
    def __init__(self, cfg: ArrayConfig, buffer_bytes: int | None = None) -> None:
        if cfg.out_bits > 16:
            raise ValueError(f"the host link sends outputs as int16; the array's outputs are {cfg.out_bits}-bit")
        self.cfg = cfg
        self.buffer_bytes = buffer_bytes or default_buffer_bytes(cfg)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "config": Out(stream.Signature(data.StructLayout({"data": 32, "last": 1}))),
            "act": Out(stream.Signature(data.StructLayout({"data": cfg.t_k * ACT_BEAT_BITS, "last": 1}))),
            "out": In(stream.Signature(data.StructLayout({"data": signed(cfg.out_bits), "last": 1}))),
            "busy": In(1), "configured": In(1), "error": In(1), "cycles": In(32), "pixels": In(32),
            "engine_reset": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        beat_bytes = cfg.t_k * ACT_BEAT_BITS // 8
        nbuf = self.buffer_bytes
        # (a frame is stored before it is replayed, results before they are sent: no word is used in
        # the cycle it is written, so the block RAMs drop the collision logic, hardware/memories.py)
        m.submodules.buf = buf = block_ram(8, nbuf)
        buf_w, buf_r = buf.write_port(), registered_read(m, buf, "frame")
        m.submodules.res = res = block_ram(16, cfg.max_rows)
        res_w, res_r = res.write_port(), registered_read(m, res, "results")

        cmd = Signal(8)
        length = Signal(16)
        idx = Signal(16)  # payload bytes received / replayed / sent
        left = Signal(16)  # bytes still to receive / replay / send: a zero test, not a 16-bit compare, ends each loop
        total = Signal(8)  # running sum of cmd, length and payload bytes
        too_long = Signal()
        reason = Signal(8)
        rejected = Signal(16)
        # assembles a config word or an activation beat; reset-less: it is only read once `nbytes` says
        # it is whole, and its ~70 flip-flops were the ECP5 reset net's slowest branch
        word = Signal(max(32, cfg.t_k * ACT_BEAT_BITS), reset_less=True)
        nbytes = Signal(range(max(4, beat_bytes) + 1))  # bytes assembled into `word`
        count = Signal(range(cfg.max_rows + 1))  # outputs collected
        # response: type, payload length, small payload (ACK / NAK / STATUS), running check sum
        r_cmd = Signal(8)
        r_len = Signal(16)
        r_small = Signal(8 * STATUS_BYTES)
        r_sum = Signal(8)
        r_byte = Signal(8)

        flags = Cat(self.busy, self.configured, self.error, Const(0, 5))
        idx_clr, idx_inc, left_dec, left_from_n, left_from_len, t_load, t_dec = (Signal() for _ in range(7))
        t_left = Signal(range(max(STATUS_BYTES, 2 * cfg.max_rows) + 1))  # response bytes still to send
        reset_pulse = Signal()  # the engine's reset comes from a flip-flop, not from this FSM's logic
        m.d.sync += reset_pulse.eq(0)
        m.d.comb += self.engine_reset.eq(reset_pulse)
        # Decisions are made from registered flags (command kind at CMD, length check at LEN1, check
        # byte at CHECK), so no state decides from an adder and a compare chain in one cycle.
        is_cfg, is_act, known, len_ok, sum_ok = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += [buf_w.addr.eq(idx), buf_w.data.eq(self.rx.payload), buf_r.addr.eq(idx),
                     res_w.addr.eq(count), res_w.data.eq(self.out.payload.data), res_r.addr.eq(idx >> 1)]

        def send(m, byte, next_state):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]
            with m.If(self.tx.ready):
                m.d.sync += r_sum.eq(r_sum + byte)
                fsm.next = next_state

        responses = []  # (flag, kind, length, small payload): one flag per place that answers; the
        # registers load one cycle after the answer is decided, so the values given must hold then

        def respond(m, kind, length_, small):
            flag = Signal(name=f"respond_{len(responses)}")
            m.d.comb += flag.eq(1)
            responses.append((flag, kind, length_, small))
            fsm.next = "TX_SYNC"

        fsm = OneHotFSM(m, "SYNC")
        # ---- receive one frame --------------------------------------------------------------
        with fsm.State("SYNC"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid & (self.rx.payload == SYNC)):
                fsm.next = "CMD"
        with fsm.State("CMD"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                b = self.rx.payload
                m.d.sync += [cmd.eq(b), total.eq(b), is_cfg.eq((b == Cmd.CONFIG) | (b == Cmd.CONFIG_END)),
                             is_act.eq(b == Cmd.ACT),
                             known.eq((b == Cmd.CONFIG) | (b == Cmd.CONFIG_END) | (b == Cmd.ACT)
                                      | (b == Cmd.STATUS) | (b == Cmd.RESET))]
                fsm.next = "LEN0"
        with fsm.State("LEN0"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.sync += [length[:8].eq(self.rx.payload), total.eq(total + self.rx.payload)]
                fsm.next = "LEN1"
        with fsm.State("LEN1"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                n = Cat(length[:8], self.rx.payload)
                m.d.comb += [idx_clr.eq(1), left_from_n.eq(1)]
                m.d.sync += [length[8:].eq(self.rx.payload), total.eq(total + self.rx.payload), too_long.eq(n > nbuf),
                             len_ok.eq((n <= nbuf) & Mux(is_cfg, (n[:2] == 0) & (n != 0),
                                                         Mux(is_act, (n != 0) & ((n % beat_bytes) == 0), n == 0)))]
                fsm.next = "PAYLOAD"
                with m.If(n == 0):
                    fsm.next = "CHECK"
        with fsm.State("PAYLOAD"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.comb += buf_w.en.eq(~too_long)  # (then idx < length <= nbuf)
                m.d.comb += [idx_inc.eq(1), left_dec.eq(1)]
                m.d.sync += total.eq(total + self.rx.payload)
                with m.If(left == 1):
                    fsm.next = "CHECK"
        with fsm.State("CHECK"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.comb += [idx_clr.eq(1), left_from_len.eq(1)]
                m.d.sync += [nbytes.eq(0), count.eq(0),
                             sum_ok.eq(((total + self.rx.payload) & 0xFF) == 0)]
                fsm.next = "DECIDE"
        with fsm.State("DECIDE"):
            with m.If(~sum_ok):
                m.d.sync += reason.eq(Nak.CHECK)
                fsm.next = "NAK"
            with m.Elif(~known):
                m.d.sync += reason.eq(Nak.COMMAND)
                fsm.next = "NAK"
            with m.Elif(~len_ok):
                m.d.sync += reason.eq(Nak.LENGTH)
                fsm.next = "NAK"
            with m.Elif(is_cfg):
                fsm.next = "REPLAY_CFG"
            with m.Elif(is_act):
                fsm.next = "REPLAY_ACT"
            with m.Elif(cmd == Cmd.STATUS):
                respond(m, Cmd.STATUS_REPLY, STATUS_BYTES, Cat(flags, self.cycles, self.pixels, rejected))
            with m.Else():  # RESET
                m.d.sync += reset_pulse.eq(1)
                m.d.sync += rejected.eq(0)
                respond(m, Cmd.ACK, 2, Cat(cmd, Const(0, 8)))
        with fsm.State("NAK"):
            m.d.sync += rejected.eq(rejected + 1)
            respond(m, Cmd.NAK, 2, Cat(cmd, reason))

        # ---- replay a checked payload into the engine (buffer read latency: one cycle) -------
        final = Signal()  # the payload's last byte is latched (`left` reaches 0): a flag, not a 16-bit
        # zero test between the counter and the engine's `last` (the iCE40's critical path)
        for kind, size, port in (("CFG", 4, self.config), ("ACT", beat_bytes, self.act)):
            with fsm.State(f"REPLAY_{kind}"):  # address idx is on the read port; data next cycle
                fsm.next = f"LATCH_{kind}"
            with fsm.State(f"LATCH_{kind}"):
                m.d.comb += [idx_inc.eq(1), left_dec.eq(1)]
                m.d.sync += [word.eq(Cat(word[8:], buf_r.data)), nbytes.eq(nbytes + 1), final.eq(left == 1)]
                with m.If(nbytes + 1 == size):
                    fsm.next = f"PUSH_{kind}"
                with m.Else():
                    fsm.next = f"REPLAY_{kind}"
            with fsm.State(f"PUSH_{kind}"):
                width = size * 8
                m.d.comb += [port.valid.eq(1), port.payload.data.eq(word[len(word) - width :]),
                             port.payload.last.eq(final & ((cmd == Cmd.CONFIG_END) if kind == "CFG" else 1))]
                with m.If(port.ready):
                    m.d.sync += nbytes.eq(0)
                    with m.If(final):
                        if kind == "CFG":
                            fsm.next = "CFG_SETTLE"
                        else:
                            fsm.next = "COLLECT"
                    with m.Else():
                        fsm.next = f"REPLAY_{kind}"

        with fsm.State("CFG_SETTLE"):  # the ACK reports the flags after the engine took the last word
            with m.If(self.config.ready):  # (a stream register may sit between; ready: it is empty)
                respond(m, Cmd.ACK, 2, Cat(cmd, flags))

        # ---- collect one pixel's outputs ----------------------------------------------------
        with fsm.State("COLLECT"):
            m.d.comb += self.out.ready.eq(1)
            with m.If(self.out.valid):
                m.d.comb += res_w.en.eq(1)
                m.d.sync += count.eq(count + 1)
                with m.If(self.out.payload.last):
                    respond(m, Cmd.RESULT, Cat(Const(0, 1), count), 0)  # (count has taken this output)

        # ---- send the response ----------------------------------------------------------------
        with fsm.State("TX_SYNC"):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(SYNC)]
            with m.If(self.tx.ready):
                m.d.comb += idx_clr.eq(1)
                fsm.next = "TX_CMD"
        with fsm.State("TX_CMD"):  # (the response registers are loaded by now)
            m.d.comb += t_load.eq(1)
            send(m, r_cmd, "TX_LEN0")
        with fsm.State("TX_LEN0"):
            send(m, r_len[:8], "TX_LEN1")
        with fsm.State("TX_LEN1"):
            send(m, r_len[8:], "TX_CHK")
            with m.If(self.tx.ready & (t_left != 0)):
                fsm.next = "TX_FETCH"
        with fsm.State("TX_FETCH"):  # RESULT bytes come from the result memory (one cycle latency)
            fsm.next = "TX_LOAD"
        with fsm.State("TX_LOAD"):  # the byte is registered before it is sent and summed
            with m.If(r_cmd == Cmd.RESULT):
                m.d.sync += r_byte.eq(Mux(idx[0], res_r.data[8:], res_r.data[:8]))
            with m.Else():
                m.d.sync += r_byte.eq(r_small.word_select(idx[:4], 8))
            fsm.next = "TX_PAY"
        with fsm.State("TX_PAY"):
            send(m, r_byte, "TX_PAY")
            with m.If(self.tx.ready):
                m.d.comb += [idx_inc.eq(1), t_dec.eq(1)]
                with m.If(t_left == 1):
                    fsm.next = "TX_CHK"
                with m.Else():
                    fsm.next = "TX_FETCH"
        with fsm.State("TX_CHK"):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(-r_sum)]
            with m.If(self.tx.ready):
                m.d.comb += idx_clr.eq(1)
                fsm.next = "SYNC"

        # The response registers, as an AND-OR over the (mutually exclusive) places that answer rather
        # than a priority chain in the order they are written.
        late = [Signal(name=f"respond_{i}_r") for i in range(len(responses))]
        m.d.sync += [r.eq(f) for r, (f, *_) in zip(late, responses)]

        def pick(values):
            out = Const(0, 1)
            for f, v in zip(late, values):
                out = out | Mux(f, v, 0)
            return out

        with m.If(pick([1] * len(responses))):
            m.d.sync += [r_cmd.eq(pick([r[1] for r in responses])), r_len.eq(pick([r[2] for r in responses])),
                         r_small.eq(pick([r[3] for r in responses])), r_sum.eq(0)]

        # the byte counters, from the states' control flags (one mux each, not a chain over the states)
        with m.If(idx_clr):
            m.d.sync += idx.eq(0)
        with m.Elif(idx_inc):
            m.d.sync += idx.eq(idx + 1)
        with m.If(left_from_n):
            m.d.sync += left.eq(Cat(length[:8], self.rx.payload))
        with m.Elif(left_from_len):
            m.d.sync += left.eq(length)
        with m.Elif(left_dec):
            m.d.sync += left.eq(left - 1)
        with m.If(t_load):
            m.d.sync += t_left.eq(r_len)
        with m.Elif(t_dec):
            m.d.sync += t_left.eq(t_left - 1)
        return m

