"""The Verilog top: the layer engine behind AXI4-Stream-named ports, and its Verilog text.

Ports (clock `clk`, synchronous active-high reset `rst`):
- `s_axis_cfg_*`: 32-bit configuration words (`tdata`, `tvalid`, `tready`, `tlast`);
- `s_axis_*`: activation beats, t_k 8-bit elements per beat, `tlast` on a vector's final beat;
- `m_axis_*`: output codes, `out_bits` per beat, `tlast` on a pixel's last channel;
- `busy`, `configured`, `error`, `cycles`, `pixels`: status for the host.
The names are what cocotbext-axi's `AxiStreamBus.from_prefix` and Vivado IP integrator expect.
"""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import ArrayConfig
from .engine import ACT_BEAT_BITS, LayerEngine

TOP_NAME = "rowmix_array"


class AxisTop(wiring.Component):
    def __init__(self, cfg: ArrayConfig) -> None:
        self.array = cfg
        super().__init__({
            "s_axis_cfg_tdata": In(32), "s_axis_cfg_tvalid": In(1), "s_axis_cfg_tready": Out(1),
            "s_axis_cfg_tlast": In(1),
            "s_axis_tdata": In(cfg.t_k * ACT_BEAT_BITS), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(signed(cfg.out_bits)), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "busy": Out(1), "configured": Out(1), "error": Out(1), "cycles": Out(32), "pixels": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = e = LayerEngine(self.array)
        m.d.comb += [
            e.config.payload.data.eq(self.s_axis_cfg_tdata), e.config.payload.last.eq(self.s_axis_cfg_tlast),
            e.config.valid.eq(self.s_axis_cfg_tvalid), self.s_axis_cfg_tready.eq(e.config.ready),
            e.act.payload.data.eq(self.s_axis_tdata), e.act.payload.last.eq(self.s_axis_tlast),
            e.act.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(e.act.ready),
            self.m_axis_tdata.eq(e.out.payload.data), self.m_axis_tlast.eq(e.out.payload.last),
            self.m_axis_tvalid.eq(e.out.valid), e.out.ready.eq(self.m_axis_tready),
            self.busy.eq(e.busy), self.configured.eq(e.configured), self.error.eq(e.error),
            self.cycles.eq(e.cycles), self.pixels.eq(e.pixels),
        ]
        return m


def verilog_text(cfg: ArrayConfig, name: str = TOP_NAME) -> str:
    """Synthesizable Verilog of the array, byte-for-byte reproducible (no source locations)."""
    return verilog.convert(AxisTop(cfg), name=name, emit_src=False)
