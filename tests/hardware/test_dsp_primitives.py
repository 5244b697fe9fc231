"""The instantiated DSP primitives (iCE40 SB_MAC16 in dual 8x8 mode, ECP5 MULT18X18D with its
registers) for every pair of codes and every activation, simulated by Icarus Verilog with their
models (Yosys's SB_MAC16, rowmix's MULT18X18D): Amaranth's simulator cannot run vendor primitives."""

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rowmix.formats import codes_to_values
from rowmix.hardware import dsp
from rowmix.sim.icarus import icarus_fixup
from rowmix.sim.models import primitive_models

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")


def run_icarus(tmp_path, target: str, bench: str, unit=None, name: str = "") -> str:
    """Compile the testbench (with `unit` as Verilog module `name`, and the target's primitive
    models) in Icarus and return what it prints."""
    files = ["tb.v"]
    (tmp_path / "tb.v").write_text(bench.replace("STAGES", str(dsp.stages("dsp", target))))
    if unit is not None:
        (tmp_path / f"{name}.v").write_text(icarus_fixup(verilog.convert(unit, name=name, emit_src=False)))
        files.append(f"{name}.v")
    files += [str(f) for f in primitive_models(target, tmp_path)]
    subprocess.run(["iverilog", "-g2012", "-o", "sim", *files], cwd=tmp_path, check=True, capture_output=True)
    return subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout


class PairUnit(wiring.Component):
    """One DSP row pair with its codes as inputs, so the testbench can sweep everything."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__({"w_hi": In(4), "w_lo": In(4), "a": In(signed(8)), "hi": Out(signed(16)), "lo": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        a_reg = Signal.like(self.a)  # the caller's activation register (the datapath's copy)
        m.d.sync += a_reg.eq(self.a)
        hi, lo = dsp.pair_product(m, self.target, self.w_hi, self.w_lo, self.a, a_reg)
        m.d.comb += [self.hi.eq(hi), self.lo.eq(lo)]
        return m


TESTBENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  reg [3:0] w_hi, w_lo;
  reg signed [7:0] a;
  wire signed [15:0] hi, lo;
  pair dut(.clk(clk), .rst(rst), .w_hi(w_hi), .w_lo(w_lo), .a(a), .hi(hi), .lo(lo));
  integer h, l, i;
  initial begin
    for (h = 0; h < 16; h = h + 1)
      for (l = 0; l < 16; l = l + 1)
        for (i = -128; i < 128; i = i + 1) begin
          w_hi = h; w_lo = l; a = i; repeat (STAGES) begin #1 clk = 1; #1 clk = 0; #1; end
          $display("%0d %0d %0d %0d %0d", h, l, i, hi, lo);
        end
    $finish;
  end
endmodule
"""


@pytest.mark.parametrize("target", ["ice40", "ecp5", "generic"])
def test_dsp_pair_exhaustive_in_icarus(tmp_path, target):
    """Every code pair x every activation through the Verilog (the target's DSP instance)."""
    out = run_icarus(tmp_path, target, TESTBENCH, PairUnit(target), "pair")
    got = np.array([[int(t) for t in line.split()] for line in out.splitlines() if line.strip()])
    assert got.shape == (16 * 16 * 256, 5)
    values = codes_to_values(np.arange(16), "FIXED4")
    h, l, a = got[:, 0], got[:, 1], got[:, 2]
    assert np.array_equal(got[:, 3], values[h] * a)
    assert np.array_equal(got[:, 4], values[l] * a)


class ProductUnit(wiring.Component):
    """One FIXED-8 row's multiplier (off iCE40) with its operands as inputs."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__({"w": In(signed(8)), "a": In(signed(8)), "p": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        a_reg = Signal.like(self.a)
        m.d.sync += a_reg.eq(self.a)
        m.d.comb += self.p.eq(dsp.product(m, self.target, self.w, a_reg))
        return m


PRODUCT_BENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  reg signed [7:0] w, a;
  wire signed [15:0] p;
  product dut(.clk(clk), .rst(rst), .w(w), .a(a), .p(p));
  integer i, j;
  initial begin
    for (i = -128; i < 128; i = i + 1)
      for (j = -128; j < 128; j = j + 1) begin
        w = i; a = j; repeat (STAGES) begin #1 clk = 1; #1 clk = 0; #1; end
        if (p !== w * a) begin $display("MISMATCH %0d * %0d = %0d", w, a, p); $finish; end
      end
    $display("DONE");
    $finish;
  end
endmodule
"""


def test_ecp5_fixed8_product_exhaustive_in_icarus(tmp_path):
    """Every signed 8 x 8 operand pair through the registered MULT18X18D: four stages, exact."""
    out = run_icarus(tmp_path, "ecp5", PRODUCT_BENCH, ProductUnit("ecp5"), "product")
    assert "MULT18X18D" in (tmp_path / "product.v").read_text()
    assert out.strip().splitlines()[-1] == "DONE", out[-500:]


def test_mult18x18d_model_refuses_what_it_does_not_model(tmp_path):
    out = run_icarus(tmp_path, "ecp5", 'module tb; MULT18X18D #(.REG_PIPELINE_CLK("CLK0")) u (.CLK0(1\'b0)); endmodule\n')
    assert "unsupported configuration" in out
