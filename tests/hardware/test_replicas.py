"""Replicated registers survive synthesis: Yosys folds identical flip-flops into one unless the
cells carry `keep`, which the board build's script sets (`KEEP_REPLICAS`)."""

from amaranth.back import verilog

from rowmix.hardware import datapath, dsp
from rowmix.hardware.config import GroupConfig
from rowmix.hardware.resources import run_yosys_script

ROWS, T_K, AW = 4, 4, 5
STAGES = dsp.stages("dsp", "ecp5")  # SP2 lanes beside ECP5 DSP lanes take their operands STAGES - 1 cycles late
TAGS = 3  # each copy holds the row tags (valid, first, last) and, in a shifting DSP group unless its rows end
# the group, the shift


def flip_flops(tmp_path, act_fanout: int, keep: bool, group: str = "SP2") -> int:
    cfg = GroupConfig(ROWS, "sp2" if group == "SP2" else "dsp")
    comp = datapath.GroupDatapath(group, cfg, T_K, AW, 24, "ecp5", datapath.tree_levels(T_K), stages=STAGES,
                                  act_fanout=act_fanout, shift_drain=group != "SP2")  # as drain_shifts() sets it
    script = ["read_verilog unit.v", "hierarchy -top unit", "proc", *([datapath.KEEP_REPLICAS] if keep else []),
              "opt_clean -purge", "synth_ecp5 -top unit", "tee -q -o stat.json stat -json", ""]
    work = tmp_path / f"{group}{act_fanout}{'k' if keep else ''}"
    stat = run_yosys_script("\n".join(script), {"unit.v": verilog.convert(comp, name="unit", emit_src=False)}, work)
    return stat["modules"]["\\unit"]["num_cells_by_type"]["TRELLIS_FF"]


def test_one_copy_per_row_costs_exactly_the_copies(tmp_path):
    shared = flip_flops(tmp_path, 0, keep=True)
    per_row = flip_flops(tmp_path, 1, keep=True)
    # a copy of every late register and tag per extra row (SP2 rows mux their hold registers: no shift)
    assert per_row - shared == (ROWS - 1) * (T_K * AW * (STAGES - 1) + TAGS)
    assert flip_flops(tmp_path, 1, keep=False) == shared  # what the keep line prevents


def test_dsp_lanes_keep_one_activation_register_per_act_fanout_rows(tmp_path):
    """FIXED4 rows in pairs on MULT18X18D read their registered activation operand (and their row
    controls) from the copies
    (here one per pair: ROWS / 2 copies), not from one register shared by every multiplier of the
    die (what Yosys made of them without `keep`)."""
    kept = flip_flops(tmp_path, 2, keep=True, group="FIXED4")
    merged = flip_flops(tmp_path, 2, keep=False, group="FIXED4")
    assert kept - merged == (ROWS // 2 - 1) * (T_K * AW + TAGS + 1)
