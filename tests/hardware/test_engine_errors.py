"""The engine's error flag: a wrong magic word, a configuration stream shorter or longer than its
header says, and an activation vector of the wrong length each raise it and leave the engine
unconfigured. The host reads it in STATUS; the next layer's first word clears it, and after a stream
of the wrong length (the loader has lost the word count) the host's RESET does."""

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from rowmix.formats import RequantSpec
from rowmix.hardware.engine import LayerEngine
from rowmix.hardware.protocol import activation_bytes, beat_values, config_words

from ..golden.layers import make_layer, random_input
from .test_engine import config, vectors_of


def _layer():
    rng = np.random.default_rng(3)
    layer, src = make_layer(rng, c=3, r=7, hw=(3, 3))
    cfg = config()
    words, plan = config_words(layer, src, cfg, RequantSpec())
    beats = beat_values(activation_bytes(vectors_of(layer, random_input(rng, src, 1))[:1], plan, cfg))
    return cfg, [int(w) for w in words], beats


async def _push(ctx, port, values, last_at):
    """Each value through the stream handshake, `last` on index last_at; then a few idle cycles."""
    for i, v in enumerate(values):
        ctx.set(port.payload, {"data": v, "last": int(i == last_at)})
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)
    await ctx.tick().repeat(4)


def _run(cfg, streams, reset_between=False):
    """Send each (config words, last index, activation beats, beat last index) in turn, optionally
    resetting the engine between them; returns the (configured, error) flags after each."""
    dut, rst = LayerEngine(cfg), Signal()
    flags = []

    async def bench(ctx):
        for n, (words, last_at, beats, beat_last) in enumerate(streams):
            if n and reset_between:
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)
            await _push(ctx, dut.config, words, last_at)
            await _push(ctx, dut.act, beats, beat_last)
            flags.append((ctx.get(dut.configured), ctx.get(dut.error)))

    sim = Simulator(ResetInserter(rst)(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(1e-8 * 20_000)
    assert len(flags) == len(streams), "the engine stopped taking words"
    return flags


def test_a_good_layer_configures_without_error():
    cfg, words, beats = _layer()
    assert _run(cfg, [(words, len(words) - 1, beats, len(beats) - 1)]) == [(1, 0)]


@pytest.mark.parametrize("fault", ["magic", "short", "long"])
def test_a_bad_configuration_stream_raises_error_until_cleared(fault):
    cfg, words, beats = _layer()
    bad = {"magic": [words[0] ^ 0x100, *words[1:]], "short": words[:-1], "long": [*words, words[-1]]}[fault]
    good = (words, len(words) - 1, beats, len(beats) - 1)
    # a bad magic word leaves the word count intact: the next layer alone clears the error
    assert _run(cfg, [(bad, len(bad) - 1, [], 0), good], reset_between=fault != "magic") == [(0, 1), (1, 0)]


def test_a_vector_of_the_wrong_length_raises_error():
    cfg, words, beats = _layer()
    assert len(beats) >= 2
    assert _run(cfg, [(words, len(words) - 1, beats, len(beats) - 2)])[0][1] == 1
