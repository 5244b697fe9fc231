"""Simulation stage: cocotb runs the generated Verilog on whole networks and checks every MAC layer
against the golden model, bit for bit (DESIGN section 7)."""

from .checker import Mismatch, first_mismatch
from .simulate import SimResult, simulate

__all__ = ["Mismatch", "first_mismatch", "SimResult", "simulate"]
