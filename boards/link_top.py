"""The board-independent core of a board build: UART <-> host link <-> layer engine.

Ports: `uart_rx`, `uart_tx` (8N1 at clk / divisor baud) and `leds` (busy, configured, error,
heartbeat) for a board's indicator LEDs. The board tops (boards/platforms.py) add the clock, the
PLL and the pin constraints; the cocotb UART test simulates exactly this Verilog."""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hardware.config import ArrayConfig
from ..hardware.engine import LayerEngine
from .link import HostLink
from .uart import UartRx, UartTx

LINK_TOP_NAME = "rowmix_link"


class LinkTop(wiring.Component):
    def __init__(self, cfg: ArrayConfig, divisor: int) -> None:
        self.array, self.divisor = cfg, divisor
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.link = link = HostLink(self.array)
        engine_reset = Signal()
        m.submodules.engine = engine = ResetInserter(engine_reset)(LayerEngine(self.array))
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx), engine_reset.eq(link.engine_reset)]
        wiring.connect(m, rx.data, link.rx)
        wiring.connect(m, link.tx, tx.data)
        wiring.connect(m, link.config, engine.config)
        wiring.connect(m, link.act, engine.act)
        wiring.connect(m, engine.out, link.out)
        m.d.comb += [link.busy.eq(engine.busy), link.configured.eq(engine.configured), link.error.eq(engine.error),
                     link.cycles.eq(engine.cycles), link.pixels.eq(engine.pixels)]
        heartbeat = Signal(24)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.leds.eq(Cat(engine.busy, engine.configured, engine.error, heartbeat[-1]))
        return m


def link_verilog(cfg: ArrayConfig, divisor: int, name: str = LINK_TOP_NAME) -> str:
    return verilog.convert(LinkTop(cfg, divisor), name=name, emit_src=False)
