"""Simulation stage: cocotb runs the generated Verilog and checks it against the golden model."""
