"""The requantization unit against formats.requantize: random cases and the edges (exact ties,
negative ties, n = 1, n beyond the 48-bit register, flushed rows, both saturations)."""

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from rowmix.formats import requantize
from rowmix.hardware.requant import LATENCY, RequantUnit
from rowmix.hardware.resources import run_yosys_script


def run_unit(cases, acc_bits=32):
    dut = RequantUnit(acc_bits=acc_bits, out_bits=16)
    got = []

    async def tb(ctx):
        pending = []
        for i in range(len(cases) + LATENCY):
            if i < len(cases):
                acc, m0, n, _, _ = cases[i]
                for sig, v in ((dut.acc, acc), (dut.m0, m0), (dut.n, n), (dut.channel, i % 4096), (dut.valid, 1)):
                    ctx.set(sig, int(v))
            else:
                ctx.set(dut.valid, 0)
            j = i - (LATENCY - 3)  # lo / hi are read at the compare stage (layer constants in the engine)
            if 0 <= j < len(cases):
                ctx.set(dut.lo, int(cases[j][3]))
                ctx.set(dut.hi, int(cases[j][4]))
            await ctx.tick()
            if ctx.get(dut.y_valid):
                got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, np.int64)


def cases_and_edges():
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(1500):
        m0 = int(rng.integers(1 << 15, 1 << 16))
        n = int(rng.integers(1, 63))
        lim = min((1 << 47) // m0, (1 << 31) - 1)  # the artifact's product bound
        acc = int(rng.integers(-lim, lim))
        cases.append((acc, m0, n, -32767, 32767))
    for n in (1, 2, 16, 30, 47):
        m0 = 1 << 15
        for j in (-3, -1, 0, 2):  # exact ties (2j + 1) / 2 and their negatives
            num = (2 * j + 1) << (n - 1)
            if num % m0 == 0 and abs(num // m0) < 1 << 31:  # an int32 accumulator
                cases.append((num // m0, m0, n, -32767, 32767))
        cases += [(5, m0, n, 0, 15), (-5, m0, n, -7, 7)]
    cases += [(123456, 0, 1, -100, 100),  # flushed row
              ((1 << 31) - 1, (1 << 16) - 1, 62, -127, 127), (-(1 << 31) + 1, (1 << 16) - 1, 50, 0, 255),
              (10**9, 40000, 20, 0, 15), (-10**9, 40000, 20, -127, 127),  # saturations
              (1 << 30, 1 << 15, 1, -32767, 32767), (-(1 << 30), 1 << 15, 1, -32767, 32767)]
    return cases


def expected(cases):
    return np.array([requantize(np.array([c[0]]), c[1], c[2], c[3], c[4])[0] for c in cases])


@pytest.mark.parametrize("acc_bits", [32, 24, 17])
def test_requant_unit_random_and_edges(acc_bits):
    lim = 1 << (acc_bits - 1)
    cases = [c for c in cases_and_edges() if -lim <= c[0] < lim]
    cases += [(lim - 1, (1 << 16) - 1, n, -32767, 32767) for n in (1, acc_bits + 15, acc_bits + 16, acc_bits + 17, 62)]
    cases += [(-lim, (1 << 16) - 1, n, -32767, 32767) for n in (1, acc_bits + 15, acc_bits + 16, acc_bits + 17, 62)]
    got = run_unit(cases, acc_bits)
    a = np.array(cases, np.int64)
    want = expected(cases)
    bad = np.flatnonzero(got != want)
    assert not len(bad), [(cases[i], got[i], want[i]) for i in bad[:5]]
    assert len(got) == len(a)
    assert sum(1 for c in cases if (c[0] * c[1]) % (1 << c[2]) == 1 << (c[2] - 1)) >= 8  # ties were tested


TESTBENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  reg signed [31:0] acc; reg [15:0] m0; reg [5:0] n; reg signed [15:0] lo, hi; reg valid = 0;
  wire signed [15:0] y; wire [11:0] y_channel; wire y_valid;
  rq dut(.clk(clk), .rst(rst), .acc(acc), .bias(32'sd0), .m0(m0), .n(n), .lo(lo), .hi(hi), .channel(12'd0), .valid(valid),
         .y(y), .y_channel(y_channel), .y_valid(y_valid));
  integer f, r, i, j, count;
  reg signed [31:0] accs [0:4095]; reg [15:0] m0s [0:4095]; reg [5:0] ns [0:4095];
  reg signed [15:0] los [0:4095]; reg signed [15:0] his [0:4095];
  initial begin
    f = $fopen("cases.txt", "r");
    r = $fscanf(f, " %d", count);
    for (i = 0; i < count; i = i + 1) r = $fscanf(f, " %d %d %d %d %d", accs[i], m0s[i], ns[i], los[i], his[i]);
    for (i = 0; i < count + LAT; i = i + 1) begin
      valid = i < count;
      if (i < count) begin acc = accs[i]; m0 = m0s[i]; n = ns[i]; end
      j = i - (LAT - 3);  // lo / hi at the compare stage
      if (j >= 0 && j < count) begin lo = los[j]; hi = his[j]; end
      #1 clk = 1; #1 clk = 0; #1;
      if (y_valid) $display("%0d", y);
    end
    $finish;
  end
endmodule
"""


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_ice40_requant_on_sb_mac16_in_icarus(tmp_path):
    """The iCE40 unit's SB_MAC16 partial products (Yosys's simulation model) give the same results."""
    from rowmix.sim.models import sb_mac16_model

    cases = cases_and_edges()
    (tmp_path / "cases.txt").write_text(f"{len(cases)}\n" + "".join(" ".join(str(int(v)) for v in c) + "\n" for c in cases))
    (tmp_path / "rq.v").write_text(verilog.convert(RequantUnit(32, 16, 12, "ice40"), name="rq", emit_src=False))
    (tmp_path / "tb.v").write_text(TESTBENCH.replace("LAT", str(LATENCY)))
    sb_mac16_model(tmp_path / "sb_mac16.v")
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "tb.v", "rq.v", "sb_mac16.v"], cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    got = np.array([int(t) for t in out.split() if t.lstrip("-").isdigit()])
    assert np.array_equal(got, expected(cases))


def test_only_the_valid_flags_take_a_reset(tmp_path):
    """A board's engine reset is one net to every reset flip-flop: the unit gives it its valid flags
    (one per stage), not its data registers, which the flags already qualify."""
    script = ["read_verilog unit.v", "hierarchy -top unit", "proc", "opt",
              "select -set reset w:rst %co:+[SRST] t:$sdff* %i", "tee -q -o stat.json stat -width -json @reset", ""]
    v = verilog.convert(RequantUnit(24, 8, 12, "ecp5"), name="unit", emit_src=False)
    stat = run_yosys_script("\n".join(script), {"unit.v": v}, tmp_path)
    assert stat["modules"]["\\unit"]["num_cells_by_type"] == {"$sdff_1": LATENCY}
