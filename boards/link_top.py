"""The board-independent core of a board build: UART <-> host link <-> layer engine.

`LinkCore` is the host link and the engine with a one-entry stream register on each stream
between them: every handshake then depends on registers only, so no combinational path runs from
the link's frame FSM through the engine's loaders (on the iCE40 that path set Fmax). A register
passes a word every other cycle, which is far faster than the UART feeds it.

`LinkTop` adds the UART: ports `uart_rx`, `uart_tx` (8N1 at clk / divisor baud) and `leds` (busy,
configured, error, heartbeat) for a board's indicator LEDs. The board tops (boards/platforms.py)
add the clock, the PLL and the pin constraints; the cocotb UART test simulates exactly this
Verilog."""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..hardware.config import ArrayConfig
from ..hardware.engine import LayerEngine
from .link import HostLink
from .uart import UartRx, UartTx

LINK_TOP_NAME = "rowmix_link"


class StreamRegister(wiring.Component):
    """A one-entry stream buffer whose `ready` and `valid` are registers."""

    def __init__(self, shape) -> None:
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full)]
        with m.If(full & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(~full & self.i.valid):
            m.d.sync += [full.eq(1), self.o.payload.eq(self.i.payload)]
        return m


class LinkCore(wiring.Component):
    def __init__(self, cfg: ArrayConfig) -> None:
        self.cfg = cfg
        self.link = HostLink(cfg)
        members = self.link.signature.members
        super().__init__({"rx": members["rx"], "tx": members["tx"], "busy": Out(1), "configured": Out(1),
                          "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        # The link's reset is one flip-flop too, beside it: the board reset's route to the link's FSM
        # was an ECP5 build's critical path (9.5 ns across the die).
        link_reset = Signal(reset_less=True)
        m.d.sync += link_reset.eq(ResetSignal("sync", allow_reset_less=True))
        m.domains.link = cd_link = ClockDomain("link", local=True)
        m.d.comb += [cd_link.clk.eq(ClockSignal("sync")), cd_link.rst.eq(link_reset)]
        m.submodules.link = link = DomainRenamer({"sync": "link"})(self.link)
        # The engine runs in its own domain on the same clock, whose reset is one flip-flop: the board's
        # reset or the link's RESET pulse, registered. Through ResetInserter the two were OR-ed in
        # a LUT that then fed ~1200 reset flip-flops across the die and the loader's counter logic
        # (the iCE40 array's critical path began at the reset synchronizer). Without a PLL the ECP5
        # platform's sync domain is reset-less (the PUR resets everything at configuration).
        engine_reset = Signal(reset_less=True)
        m.d.sync += engine_reset.eq(ResetSignal("sync", allow_reset_less=True) | link.engine_reset)
        m.domains.engine = cd_engine = ClockDomain("engine", local=True)
        m.d.comb += [cd_engine.clk.eq(ClockSignal("sync")), cd_engine.rst.eq(engine_reset)]
        engine_domain = DomainRenamer({"sync": "engine"})
        m.submodules.engine = engine = engine_domain(LayerEngine(self.cfg))
        regs = {}
        for name in ("config", "act", "out"):  # reset with the engine, so RESET leaves no stale word behind
            shape = link.signature.members[name].signature.members["payload"].shape
            m.submodules[f"{name}_reg"] = regs[name] = engine_domain(StreamRegister(shape))
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        for name in ("config", "act"):
            wiring.connect(m, getattr(link, name), regs[name].i)
            wiring.connect(m, regs[name].o, getattr(engine, name))
        wiring.connect(m, engine.out, regs["out"].i)
        wiring.connect(m, regs["out"].o, link.out)
        m.d.comb += [link.busy.eq(engine.busy), link.configured.eq(engine.configured), link.error.eq(engine.error),
                     link.cycles.eq(engine.cycles), link.pixels.eq(engine.pixels),
                     self.busy.eq(engine.busy), self.configured.eq(engine.configured), self.error.eq(engine.error)]
        return m


class LinkTop(wiring.Component):
    def __init__(self, cfg: ArrayConfig, divisor: int) -> None:
        self.array, self.divisor = cfg, divisor
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.core = core = LinkCore(self.array)
        # a stream register before the transmitter: the link's response FSM (state, byte mux) reached
        # the transmitter's shift register in one cycle, the full iCE40 array's critical path
        m.submodules.tx_reg = tx_reg = StreamRegister(8)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        wiring.connect(m, rx.data, core.rx)
        wiring.connect(m, core.tx, tx_reg.i)
        wiring.connect(m, tx_reg.o, tx.data)
        heartbeat = Signal(24)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        # Registered: an LED driven straight from `configured` made that flip-flop the pin's driver, and
        # the placer pulled it toward the pad, away from the engine it controls (the ECP5's critical path)
        m.d.sync += self.leds.eq(Cat(core.busy, core.configured, core.error, heartbeat[-1]))
        return m


def link_verilog(cfg: ArrayConfig, divisor: int, name: str = LINK_TOP_NAME) -> str:
    return verilog.convert(LinkTop(cfg, divisor), name=name, emit_src=False)
