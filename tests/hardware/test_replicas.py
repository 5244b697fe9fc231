"""Replicated activation registers survive synthesis: Yosys folds identical flip-flops into one
unless the cells carry `keep`, which the board build's script sets (`KEEP_REPLICAS`)."""

from amaranth.back import verilog

from rowmix.hardware import datapath
from rowmix.hardware.config import GroupConfig
from rowmix.hardware.resources import run_yosys_script

ROWS, T_K, AW = 4, 4, 5


def flip_flops(tmp_path, act_fanout: int, keep: bool) -> int:
    group = GroupConfig(ROWS, "sp2")
    comp = datapath.GroupDatapath("SP2", group, T_K, AW, 24, "ecp5", datapath.tree_levels(T_K), stages=2,
                                  act_fanout=act_fanout)  # stages 2: SP2 lanes beside ECP5 DSP lanes run late
    script = ["read_verilog unit.v", "hierarchy -top unit", "proc", *([datapath.KEEP_REPLICAS] if keep else []),
              "opt_clean -purge", "synth_ecp5 -top unit", "tee -q -o stat.json stat -json", ""]
    work = tmp_path / f"f{act_fanout}{'k' if keep else ''}"
    stat = run_yosys_script("\n".join(script), {"unit.v": verilog.convert(comp, name="unit", emit_src=False)}, work)
    return stat["modules"]["\\unit"]["num_cells_by_type"]["TRELLIS_FF"]


def test_one_copy_per_row_costs_exactly_the_copies(tmp_path):
    shared = flip_flops(tmp_path, 0, keep=True)
    per_row = flip_flops(tmp_path, 1, keep=True)
    assert per_row - shared == (ROWS - 1) * T_K * AW
    assert flip_flops(tmp_path, 1, keep=False) == shared  # what the keep line prevents
