"""Hardware stage: Amaranth MAC arrays, Verilog generation, resource and cycle models.

Reads the artifact (and rowmix.formats); never imports torch or the front end."""
