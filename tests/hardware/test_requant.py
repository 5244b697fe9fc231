"""The requantization unit against formats.requantize: random cases and the edges (exact ties,
negative ties, n = 1, n beyond the 48-bit register, flushed rows, both saturations)."""

import numpy as np
from amaranth.sim import Simulator

from rowmix.formats import requantize
from rowmix.hardware.requant import LATENCY, RequantUnit


def run_unit(cases):
    dut = RequantUnit(acc_bits=32, out_bits=16)
    got = []

    async def tb(ctx):
        pending = []
        for i in range(len(cases) + LATENCY):
            if i < len(cases):
                acc, m0, n, lo, hi = cases[i]
                for sig, v in ((dut.acc, acc), (dut.m0, m0), (dut.n, n), (dut.lo, lo), (dut.hi, hi),
                               (dut.channel, i % 4096), (dut.valid, 1)):
                    ctx.set(sig, int(v))
            else:
                ctx.set(dut.valid, 0)
            await ctx.tick()
            if ctx.get(dut.y_valid):
                got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, np.int64)


def test_requant_unit_random_and_edges():
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
    got = run_unit(cases)
    a = np.array(cases, np.int64)
    want = np.array([requantize(np.array([c[0]]), c[1], c[2], c[3], c[4])[0] for c in cases])
    bad = np.flatnonzero(got != want)
    assert not len(bad), [(cases[i], got[i], want[i]) for i in bad[:5]]
    assert len(got) == len(a)
    assert sum(1 for c in cases if (c[0] * c[1]) % (1 << c[2]) == 1 << (c[2] - 1)) >= 8  # ties were tested
