"""Hardware stage: Amaranth MAC arrays, Verilog generation, resource and cycle models."""
