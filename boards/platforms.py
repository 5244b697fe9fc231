"""Board tops through amaranth-boards: the link core (UART, host link, engine) on a board's clock,
its UART pins and LEDs. The core clock comes from the board oscillator or, with `freq_hz`, from the
device PLL (iCE40 SB_PLL40_PAD, ECP5 EHXPLLL) at the nearest frequency the PLL can make."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..errors import RowmixError
from ..hardware.config import ArrayConfig
from .link_top import LinkTop


@dataclass(frozen=True)
class BoardSpec:
    name: str
    family: str  # ice40 / ecp5
    target: str  # the array generator's target
    osc_hz: float
    led_names: tuple[str, ...]

    def platform(self):
        if self.name == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform

            return ICEBreakerPlatform()
        from amaranth_boards.ulx3s import ULX3S_85F_Platform

        class ULX3S(ULX3S_85F_Platform):  # building needs no programmer (openFPGALoader programs it)
            @property
            def required_tools(self):
                return [t for t in super().required_tools if t != "openFPGALoader"]

        return ULX3S()


BOARDS = {
    "icebreaker": BoardSpec("icebreaker", "ice40", "ice40", 12e6, ("led_r", "led_g")),
    "ulx3s-85f": BoardSpec("ulx3s-85f", "ecp5", "ecp5", 25e6, ("led",)),
}


def board_spec(name: str) -> BoardSpec:
    if name not in BOARDS:
        raise RowmixError(f"unknown board {name!r} for a bitstream build (known: {', '.join(BOARDS)})")
    return BOARDS[name]


def ice40_pll(f_in: float, f_out: float) -> tuple[dict[str, int], float]:
    """SB_PLL40 divider settings (DIVR, DIVF, DIVQ, FILTER_RANGE) closest to f_out, and the result
    (the search icepll does: f_pfd = f_in / (DIVR+1) in 10..133 MHz, f_vco = f_pfd (DIVF+1) in
    533..1066 MHz, f_out = f_vco / 2^DIVQ)."""
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = f_vco / (1 << divq)
                if best is None or abs(f - f_out) < abs(best[1] - f_out):
                    rng = 1 if f_pfd < 17e6 else 2 if f_pfd < 26e6 else 3 if f_pfd < 44e6 else 4 if f_pfd < 66e6 else 5 if f_pfd < 101e6 else 6
                    best = ({"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": rng}, f)
    if best is None:
        raise RowmixError(f"the iCE40 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    return best


def ecp5_pll(f_in: float, f_out: float) -> tuple[dict[str, int], float]:
    """EHXPLLL settings (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE) closest to f_out with the VCO
    in 400..800 MHz (the search ecppll does)."""
    best = None
    for clki in range(1, 129):
        f_pfd = f_in / clki
        if f_pfd < 3.125e6:
            break
        for fb in range(1, 81):
            f = f_pfd * fb
            for op in range(1, 129):
                vco = f * op
                if 400e6 <= vco <= 800e6 and (best is None or abs(f - f_out) < abs(best[1] - f_out)):
                    best = ({"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op, "CLKOP_CPHASE": op - 1}, f)
    if best is None:
        raise RowmixError(f"the ECP5 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    return best


class BoardTop(Elaboratable):
    """`freq_hz=None`: the core runs on the oscillator; otherwise on the PLL output nearest freq_hz."""

    def __init__(self, spec: BoardSpec, cfg: ArrayConfig, baud: int, freq_hz: float | None = None) -> None:
        self.spec, self.cfg, self.baud = spec, cfg, baud
        self.pll = None
        self.freq_hz = spec.osc_hz
        if freq_hz is not None:
            self.pll, self.freq_hz = (ice40_pll if spec.family == "ice40" else ecp5_pll)(spec.osc_hz, freq_hz)
        self.divisor = round(self.freq_hz / baud)
        if self.divisor < 4:
            raise RowmixError(f"{baud} baud needs a core clock of at least {4 * baud / 1e6:g} MHz")

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            clk_pin = platform.request(platform.default_clk, dir="-")
            m.domains.sync = cd_sync = ClockDomain("sync")
            locked, clk = Signal(), Signal()
            m.d.comb += cd_sync.clk.eq(clk)
            if self.spec.family == "ice40":
                p = self.pll
                m.submodules.pll = Instance(
                    "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                    p_FILTER_RANGE=p["FILTER_RANGE"], i_PACKAGEPIN=clk_pin.io, i_RESETB=1, i_BYPASS=0,
                    o_PLLOUTGLOBAL=clk, o_LOCK=locked)
            else:
                p = self.pll
                m.submodules.pll = Instance(
                    "EHXPLLL", p_CLKI_DIV=p["CLKI_DIV"], p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKOP_DIV=p["CLKOP_DIV"],
                    p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
                    p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_FPHASE=0,
                    i_CLKI=clk_pin.io, i_CLKFB=clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
                    i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                    o_CLKOP=clk, o_LOCK=locked,
                    a_FREQUENCY_PIN_CLKI=f"{self.spec.osc_hz / 1e6:.3f}", a_FREQUENCY_PIN_CLKOP=f"{self.freq_hz / 1e6:.3f}")
            # the lock flag is asynchronous to the PLL clock: it releases the reset through a synchronizer
            m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
            # (the PLL clock's constraint is nextpnr's --freq, see build.py: Amaranth's named net
            # constraint does not survive Yosys's renaming of the PLL output net)
        m.submodules.core = core = LinkTop(self.cfg, self.divisor)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        leds = [platform.request(n, i, dir="-") for n in self.spec.led_names for i in range(4 if n == "led" else 1)]
        for i, led in enumerate(leds[:4]):
            m.submodules[f"led_{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(core.leds[i])
        return m
