"""8N1 UART receiver and transmitter with byte streams (amaranth-stdio is not on PyPI).

`divisor` is clock cycles per bit (clk_freq / baud, at least 4). The receiver synchronises `rx`
through two flip-flops, re-times on every start bit's falling edge and samples each bit in its
middle, so the host and board clocks may differ by a few percent. A received byte waits for
`data` to empty until the next start bit; if the previous byte is still there then, the new one is
dropped and counted in `overruns`. The receiver looks at `data.valid` only, never at the consumer's
`ready`, so no path runs from the link's state logic into the receiver's timer (one did, and set the
iCE40's Fmax). A missing stop bit is counted in `framing_errors` (the byte is dropped). The link
above checksums every frame, so a dropped byte surfaces as a rejected frame, never as silent
corruption."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    def __init__(self, divisor: int) -> None:
        if divisor < 4:
            raise ValueError(f"UART divisor must be >= 4 clock cycles per bit, got {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                          "overruns": Out(16), "framing_errors": Out(16)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shreg = Signal(8)
        # `tick` (timer == 0) and `last` (bit == 7) are registers set a cycle ahead, as in the
        # transmitter: as compares they led the timer's and the state's enables through four LUT
        # levels, a full iCE40 array's critical path
        tick, last = Signal(), Signal()

        def start(m):  # the first data bit's middle is 1.5 bits after the start bit's edge
            m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), tick.eq(0), bit.eq(0), last.eq(0)]

        def count_down(m):
            m.d.sync += [timer.eq(timer - 1), tick.eq(timer == 1)]

        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    start(m)
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(~tick):
                    count_down(m)
                with m.Else():
                    m.d.sync += [shreg.eq((shreg >> 1) | (rx << 7)), timer.eq(self.divisor - 1), tick.eq(0),
                                 bit.eq(bit + 1), last.eq(bit == 6)]
                    with m.If(last):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(~tick):
                    count_down(m)
                with m.Else():
                    with m.If(~rx):
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = "BREAK"
                    with m.Else():
                        m.next = "DELIVER"
            with m.State("DELIVER"):  # hand the byte over as soon as `data` is empty
                with m.If(~self.data.valid):
                    m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    m.next = "IDLE"
                with m.Elif(~rx):  # the next start bit, and the previous byte still waits: drop this one
                    m.d.sync += self.overruns.eq(self.overruns + 1)
                    start(m)
                    m.next = "DATA"
            with m.State("BREAK"):  # wait for the line to return high before hunting a start bit
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    def __init__(self, divisor: int) -> None:
        if divisor < 4:
            raise ValueError(f"UART divisor must be >= 4 clock cycles per bit, got {divisor}")
        self.divisor = divisor
        super().__init__({"tx": Out(1, init=1), "data": In(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)  # stop | data | start, shifted out LSB first
        bits = Signal(range(11))
        # `idle` (bits == 0) and `tick` (timer == 0) are registers set a cycle ahead: as zero tests
        # they led the transmitter's enables through four LUT levels, a full iCE40 array's critical path
        idle, tick = Signal(init=1), Signal()
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(idle)]
        with m.If(idle):
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq((self.data.payload << 1) | (1 << 9)), bits.eq(10), timer.eq(self.divisor - 1),
                             idle.eq(0), tick.eq(0)]
        with m.Elif(~tick):
            m.d.sync += [timer.eq(timer - 1), tick.eq(timer == 1)]
        with m.Else():
            m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), bits.eq(bits - 1), timer.eq(self.divisor - 1),
                         tick.eq(0), idle.eq(bits == 1)]
        return m
