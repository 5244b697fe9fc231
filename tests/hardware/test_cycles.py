"""The cycle model against a cycle-accurate Amaranth simulation (always-valid input, always-ready
output): exact."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rowmix.formats import RequantSpec
from rowmix.hardware.config import ArrayConfig, GroupConfig
from rowmix.hardware.cycles import layer_cycles
from rowmix.hardware.engine import LayerEngine
from rowmix.hardware.protocol import activation_bytes, beat_values, config_words

from ..golden.layers import make_layer, random_input
from .test_engine import config, golden_outputs, vectors_of


def measure(cfg, layer, src, x):
    """Cycles from the edge accepting the first activation beat to the edge accepting the last
    output beat, inclusive, with one testbench ticking once per cycle."""
    dut = LayerEngine(cfg)
    words, plan = config_words(layer, src, cfg, RequantSpec())
    beats = beat_values(activation_bytes(vectors_of(layer, x), plan, cfg))
    n_out = len(beats) // plan.steps * plan.r
    result = {}

    async def tb(ctx):
        wi = bi = 0
        outs = []
        edge = 0
        ctx.set(dut.out.ready, 1)
        while len(outs) < n_out:
            if wi < len(words):
                ctx.set(dut.config.payload, {"data": int(words[wi]), "last": int(wi == len(words) - 1)})
            ctx.set(dut.config.valid, int(wi < len(words)))
            if bi < len(beats):
                ctx.set(dut.act.payload, {"data": beats[bi], "last": int(bi % plan.steps == plan.steps - 1)})
            ctx.set(dut.act.valid, int(bi < len(beats) and wi == len(words)))
            _, _, c_rdy, a_rdy, o_val, o_pay = await ctx.tick().sample(
                dut.config.ready, dut.act.ready, dut.out.valid, dut.out.payload)
            if wi < len(words) and c_rdy:
                wi += 1
            elif bi < len(beats) and a_rdy and wi == len(words):
                if bi == 0:
                    result["first"] = edge
                bi += 1
            if o_val:
                outs.append(o_pay.data)
            edge += 1
        result["last"] = edge - 1
        result["outs"] = outs
        await ctx.tick().repeat(2)  # the counter is complete two cycles after the last output
        result["counter"] = ctx.get(dut.cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    cycles = result["last"] - result["first"] + 1
    assert result["counter"] == cycles  # the engine's own cycle counter measures the same span
    return cycles, np.array(result["outs"]).reshape(-1, plan.r), plan


CASES = {
    "S < lanes (drain-bound slots)": (dict(), dict(c=2, r=11, hw=(3, 3))),
    "S > lanes, one tile": (dict(sp2=2, f4=2, f8=2, t_k=2), dict(c=4, r=6, kernel=(3, 3), hw=(3, 3))),
    "many tiles": (dict(sp2=1, f4=2, f8=1), dict(c=3, r=13, hw=(2, 3))),
    "linear": (dict(), dict(op="linear", c=40, r=9)),
    "two read registers": (dict(read_stages=2), dict(c=2, r=11, hw=(3, 3))),
    "ULX3S plan: staged read addresses and writes": (dict(read_stages=2, row_addr=True, write_stages=True, act_fanout=2, shift_drain=True),
                                                     dict(c=2, r=11, hw=(3, 3))),
    "shared requant unit, drain-bound": (dict(shared_requant=True), dict(c=2, r=11, hw=(3, 3))),
    "shared requant unit, many tiles": (dict(sp2=1, f4=2, f8=1, shared_requant=True), dict(c=3, r=13, hw=(2, 3))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cycle_model_is_exact(case):
    cfg_kw, layer_kw = CASES[case]
    rng = np.random.default_rng(3)
    cfg = config(**cfg_kw)
    layer, src = make_layer(rng, **layer_kw)
    x = random_input(rng, src, 2 if layer.op == "linear" else 1)
    cycles, outs, plan = measure(cfg, layer, src, x)
    assert np.array_equal(outs, golden_outputs(layer, src, x))
    model = layer_cycles(plan, cfg, len(outs))
    assert model.cycles == cycles, (model, cycles)
