"""FPGA device budgets and the boards they sit on (notes/hardware.md 1 and 4.1).

Budgets are the denominators the open flow (nextpnr) reports, or the vendor product table for the
Xilinx parts (DS190). `luts` counts the device's native LUT: LUT4 logic cells on iCE40 and ECP5,
LUT6 on 7-series, so lane costs must come from a synthesis for the same target (rowmix.hardware.
resources does that). `macs_per_dsp` is what our datapath gets out of one DSP block per cycle
(hardware/dsp.py): FIXED-4 rows are packed two per multiplier everywhere (iCE40: the SB_MAC16's
native dual 8x8 mode); FIXED-8 rows take one multiplier each, except on iCE40 where the dual 8x8
mode pairs them too.

A board adds the share of the LUT budget the MAC lanes may use (the rest is control, memories'
glue, requantization and I/O) and the Yosys synthesis command for its target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RowmixError

DEFAULT_LANE_SHARE = 0.6


@dataclass(frozen=True)
class Device:
    name: str
    target: str  # rowmix.hardware.config.TARGETS entry: ice40, ecp5, xc7
    luts: int
    lut_kind: str  # what one `luts` unit is: "LC" (iCE40 LUT4 + FF + carry), "LUT4", "LUT6"
    ffs: int
    dsps: int
    dsp_kind: str
    bram_blocks: int
    bram_kind: str
    bram_kbits: float  # per block
    spram_blocks: int = 0
    spram_kbits: float = 0.0
    macs_per_dsp: dict[str, int] = field(default_factory=lambda: {"FIXED4": 2, "FIXED8": 1})

    @property
    def bram_total_kbits(self) -> float:
        return self.bram_blocks * self.bram_kbits + self.spram_blocks * self.spram_kbits

    def to_json(self) -> dict:
        return {"name": self.name, "target": self.target, "luts": self.luts, "lut_kind": self.lut_kind,
                "ffs": self.ffs, "dsps": self.dsps, "dsp_kind": self.dsp_kind, "bram_blocks": self.bram_blocks,
                "bram_kind": self.bram_kind, "bram_kbits": self.bram_kbits, "spram_blocks": self.spram_blocks,
                "spram_kbits": self.spram_kbits, "macs_per_dsp": dict(self.macs_per_dsp)}


@dataclass(frozen=True)
class Board:
    name: str
    device: Device
    lane_share: float = DEFAULT_LANE_SHARE  # share of the device's LUTs the MAC lanes may use
    synth: str = ""  # Yosys synthesis command for the target (without -top and per-unit flags)

    @property
    def target(self) -> str:
        return self.device.target

    @property
    def lane_lut_budget(self) -> float:
        return self.device.luts * self.lane_share

    def to_json(self) -> dict:
        return {"name": self.name, "device": self.device.name, "target": self.target,
                "lane_share": self.lane_share, "synth": self.synth}


ICE40UP5K = Device("iCE40UP5K", "ice40", luts=5280, lut_kind="LC", ffs=5280, dsps=8, dsp_kind="SB_MAC16",
                   bram_blocks=30, bram_kind="EBR", bram_kbits=4, spram_blocks=4, spram_kbits=256,
                   macs_per_dsp={"FIXED4": 2, "FIXED8": 2})
LFE5U_25F = Device("LFE5U-25F", "ecp5", luts=24288, lut_kind="LUT4", ffs=24288, dsps=28, dsp_kind="MULT18X18D",
                   bram_blocks=56, bram_kind="DP16KD", bram_kbits=18)
LFE5U_45F = Device("LFE5U-45F", "ecp5", luts=43848, lut_kind="LUT4", ffs=43848, dsps=72, dsp_kind="MULT18X18D",
                   bram_blocks=108, bram_kind="DP16KD", bram_kbits=18)
LFE5U_85F = Device("LFE5U-85F", "ecp5", luts=83640, lut_kind="LUT4", ffs=83640, dsps=156, dsp_kind="MULT18X18D",
                   bram_blocks=208, bram_kind="DP16KD", bram_kbits=18)
XC7Z020 = Device("XC7Z020", "xc7", luts=53200, lut_kind="LUT6", ffs=106400, dsps=220, dsp_kind="DSP48E1",
                 bram_blocks=140, bram_kind="RAMB36E1", bram_kbits=36)
XC7Z045 = Device("XC7Z045", "xc7", luts=218600, lut_kind="LUT6", ffs=437200, dsps=900, dsp_kind="DSP48E1",
                 bram_blocks=545, bram_kind="RAMB36E1", bram_kbits=36)

DEVICES: dict[str, Device] = {d.name: d for d in (ICE40UP5K, LFE5U_25F, LFE5U_45F, LFE5U_85F, XC7Z020, XC7Z045)}

# Yosys synthesis command per target. iCE40: no `-dsp`, because the datapath instantiates SB_MAC16
# in dual 8x8 mode and `-dsp` would re-map it to 16x16 (notes/hardware.md 2).
SYNTH = {"ice40": "synth_ice40", "ecp5": "synth_ecp5", "xc7": "synth_xilinx -family xc7"}

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("icebreaker", ICE40UP5K, synth=SYNTH["ice40"]),
    Board("ulx3s-85f", LFE5U_85F, synth=SYNTH["ecp5"]),
    Board("pynq-z2", XC7Z020, synth=SYNTH["xc7"]),
)}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise RowmixError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None


def get_device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise RowmixError(f"unknown device {name!r}; known devices: {', '.join(DEVICES)}") from None
