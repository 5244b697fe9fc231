"""The UART path in cocotb: the driver of `rowmix run` talks to the link top's Verilog through a
simulated UART and gets back, layer by layer, exactly what the golden model computes.

One image moves about 31 000 bytes over the simulated UART (1.3 million clock cycles): Verilator
runs it in about 3 minutes with its compile, Icarus in 10 to 15, so the Icarus case is `slow`."""

import pytest

from rowmix.boards.uart_sim import simulate_uart
from rowmix.hardware.generate import default_config


@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=pytest.mark.slow)])
def test_uart_link_runs_digits_bit_exactly(tmp_path, digits_artifacts, digits_eval, simulator):
    path, art, _ = digits_artifacts["mixed"]
    cfg = default_config(art, "generic")
    r = simulate_uart(path, cfg, digits_eval.images[:1], digits_eval.labels[:1], simulator=simulator,
                      work_dir=tmp_path / "uart")
    assert r.mismatch is None and r.images == 1
    assert set(r.layers) == {op.name for op in art.mac_layers}
    assert all(s["pixels"] > 0 and s["cycles"] > 0 for s in r.layers.values())
