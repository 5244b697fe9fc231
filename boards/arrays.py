"""Arrays sized to each board, and the fixed-point-only baselines built by the same generator.

One sizing rule for all four designs of a board, so their comparison is fair:
- the DSPs go first: 2 per requant unit (its 16 x 16 partial products), the rest to DSP row lanes
  (FIXED4 packed / dual 8x8: 2 MACs per DSP; FIXED8 on ECP5: 1);
- then LUT lanes fill the board's lane budgets, `lane_luts` LUTs and `lane_ffs` flip-flops, at the
  per-lane cost Yosys synthesizes for their kind (the shipped resource model's lane costs: SP2
  shift-add, Booth or plain multipliers, adder trees and accumulators included), as many rows as the
  tighter of the two allows. Booth lanes register two terms per MAC: sized by LUTs alone, the ECP5
  Booth baseline filled 79 % of the flip-flops and found no legal placement.

Designs: `mixed` (SP2 rows on LUTs + FIXED4 / FIXED8 rows on DSPs, what rowmix runs), and the
fixed-point-only baselines of the board issue: `dsp-only` (a: FIXED-4 on DSPs, packing allowed),
`dsp+mul` (b: DSPs, then plain LUT multipliers) and `dsp+booth` (c: DSPs, then radix-4 Booth LUT
lanes). The mixed design's row shares are the SP2 : FIXED4 : FIXED8 ratio the board's networks
are quantized with (`rowmix flow --board`), so every group finishes a layer at the same time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

from ..errors import RowmixError
from ..hardware.config import ArrayConfig, GroupConfig
from ..hardware.estimate import dsp_count

DESIGNS = ("mixed", "dsp-only", "dsp+mul", "dsp+booth")
REQUANT_DSPS = 2


@dataclass(frozen=True)
class BoardPlan:
    target: str
    t_k: int
    dsps: int
    lane_luts: int  # LUT (LC) budget of the LUT lanes
    lane_ffs: int  # flip-flop budget of the LUT lanes
    fixed4_dsp_rows: int  # the mixed design's DSP rows; the baselines give every lane DSP to FIXED4
    fixed8_dsp_rows: int
    shared_requant: bool  # one unit drains every group (small devices) or one per group
    max_k: int
    max_rows: int
    acc_bits: int = 24
    act_bits: int = 4
    act_fanout: int = 0  # rows per copy of the late LUT lanes' activation registers (0: one per group)
    row_addr: bool = False  # staged read addresses per row's code memory (ArrayConfig.row_addr)
    read_stages: int = 1  # registers after every memory read (ArrayConfig.read_stages)
    write_stages: bool = False  # configuration writes through a register per act_fanout rows (ArrayConfig.write_stages)
    shift_drain: bool = False  # hold registers shift toward the drain (ArrayConfig.shift_drain)
    narrow_acc: bool = False  # row accumulators only as wide as a max_k sum reaches (ArrayConfig.narrow_acc)


PLANS = {
    # iCE40UP5K: 5280 LCs, 8 SB_MAC16, 30 EBRs. The engine's control, the requant unit and the UART
    # link take about 2700 LCs since block RAM reads lost Yosys's collision logic (docs/boards.md),
    # which left 1190 for LUT lanes (8 SP2 rows of t_k 4, 99 % of the LCs); rows accumulating at 16
    # of the 24 bits (narrow_acc) freed 345 LCs: 1340, 9 SP2 rows at 97 % (10 need 101 %).
    # The 6 lane DSPs hold 3 FIXED4 rows and the EBRs the code memories, with no room for a FIXED-8
    # group: this board's networks are SP2 + FIXED4 (MSQ-style). Memories hold any digits layer.
    "icebreaker": BoardPlan("ice40", t_k=4, dsps=8, lane_luts=1340, lane_ffs=1340, fixed4_dsp_rows=3, fixed8_dsp_rows=0,
                            shared_requant=True, max_k=128, max_rows=24, narrow_acc=True),
    # ECP5-85F: 83640 LUT4, 156 MULT18X18D; 36 % of the LUTs for lanes (41 SP2 rows, 928 MACs/cycle):
    # 46 % (52 rows, 1104 MACs/cycle) filled 65 % of the device and router2 routed it at two seeds of
    # four, after up to 190 iterations. 31 % of the flip-flops, which only the Booth lanes reach first.
    # Memories hold any ResNet-20 layer.
    # One copy of the activation registers per 2 LUT rows (32 lanes): one copy for 41 rows was the
    # critical net, and a copy per 4 rows left the copy -> SP2 term register route at 8 ns of 10.2;
    # a second read register: one route from a code block RAM to its far lanes took 19 ns.
    # Rows accumulate at 18 of the 24 bits (22 for FIXED8; narrow_acc), as on the UP5K.
    "ulx3s-85f": BoardPlan("ecp5", t_k=16, dsps=156, lane_luts=30100, lane_ffs=26000, fixed4_dsp_rows=16, fixed8_dsp_rows=1,
                           shared_requant=False, max_k=576, max_rows=64, act_fanout=2,
                           row_addr=True, read_stages=2, write_stages=True, shift_drain=True, narrow_acc=True),
}


def lane_costs() -> dict:
    """LUTs per MAC lane by target, group, kind and lane activation width (shipped resource model)."""
    path = resources.files("rowmix.hardware").joinpath("default_resource_model.json")
    return json.loads(path.read_text())["lane_costs"]


def plan(board: str) -> BoardPlan:
    if board not in PLANS:
        raise RowmixError(f"no array plan for board {board!r} (known: {', '.join(PLANS)})")
    return PLANS[board]


def _dsps_per_row(p: BoardPlan, group: str) -> float:
    return p.t_k / (2 if group == "FIXED4" or p.target == "ice40" else 1)


def board_array(board: str, design: str = "mixed") -> ArrayConfig:
    if design not in DESIGNS:
        raise RowmixError(f"unknown design {design!r} (known: {', '.join(DESIGNS)})")
    p = plan(board)
    aw = "5" if p.act_bits == 4 else "8"
    costs = lane_costs()[p.target]
    lut_rows = lambda g, k: math.floor(min(p.lane_luts / costs[g][k][aw]["lut"],  # noqa: E731
                                           p.lane_ffs / costs[g][k][aw]["ff"]) / p.t_k)
    if design == "mixed":
        f8_cap = 4 if p.fixed8_dsp_rows else 0  # FIXED-8 rows are a few % of a layer: a shallow memory
        groups = {"SP2": GroupConfig(lut_rows("SP2", "sp2"), "sp2"),
                  "FIXED4": GroupConfig(p.fixed4_dsp_rows, "dsp"),
                  "FIXED8": GroupConfig(p.fixed8_dsp_rows, "dsp", max_rows=f8_cap)}
    else:  # one FIXED4 group: all lane DSPs (one requant unit), then LUT rows
        n = int((p.dsps - REQUANT_DSPS) // _dsps_per_row(p, "FIXED4"))
        if p.target != "ice40":
            n -= n % 2  # packed pairs
        extra = {"dsp-only": (0, ""), "dsp+mul": (lut_rows("FIXED4", "mul"), "mul"),
                 "dsp+booth": (lut_rows("FIXED4", "booth"), "booth")}[design]
        groups = {"SP2": GroupConfig(0, "sp2"), "FIXED8": GroupConfig(0, "dsp"),
                  "FIXED4": GroupConfig(n + extra[0], "dsp", lut_rows=extra[0], lut_kind=extra[1])}
    cfg = ArrayConfig(target=p.target, t_k=p.t_k, act_bits=p.act_bits, groups=groups, max_k=p.max_k,
                      max_rows=p.max_rows, acc_bits=p.acc_bits, shared_requant=p.shared_requant,
                      act_fanout=p.act_fanout, row_addr=p.row_addr,
                      read_stages=p.read_stages, write_stages=p.write_stages, shift_drain=p.shift_drain,
                      narrow_acc=p.narrow_acc)
    units = 1 if p.shared_requant else sum(1 for g in groups.values() if g.rows)
    need = dsp_count(cfg) + REQUANT_DSPS * units
    if need > p.dsps:
        raise RowmixError(f"board {board}: the {design} array needs {need} DSPs, the device has {p.dsps}")
    return cfg


def board_ratio(board: str) -> dict[str, int]:
    """The mixed design's SP2 : FIXED4 : FIXED8 row shares in percent (rounded to sum to 100)."""
    from ..hardware.resources import ratio_percentages

    cfg = board_array(board)
    total = sum(g.rows for g in cfg.groups.values())
    return ratio_percentages({g: cfg.groups[g].rows / total for g in ("SP2", "FIXED4", "FIXED8")})
