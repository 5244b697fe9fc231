"""The host link in Amaranth's simulator: UART loopback, and frames driven byte by byte into the
link + layer engine, answered bit-exactly against the golden model; bad frames are rejected."""

import random

import numpy as np
from amaranth.hdl import Module
from amaranth.sim import Simulator

from rowmix.boards.frames import Cmd, Decoder, Nak, Status, act_frame, config_frames, encode
from rowmix.boards.link_top import LinkCore
from rowmix.boards.uart import UartRx, UartTx
from rowmix.formats import RequantSpec
from rowmix.hardware.protocol import activation_bytes, config_words

from ..golden.layers import make_layer, random_input
from ..hardware.test_engine import config, golden_outputs, vectors_of


def test_uart_loopback_random_bytes():
    m = Module()
    m.submodules.tx = tx = UartTx(5)
    m.submodules.rx = rx = UartRx(5)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [random.Random(1).randrange(256) for _ in range(40)] + [0x00, 0xFF, 0x5A]
    got = []

    async def send(ctx):
        for b in data:
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def recv(ctx):
        ctx.set(rx.data.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(rx.data.valid, rx.data.payload)
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(recv)
    sim.run_until(1e-6 * 60 * len(data))
    assert got == data


def test_uart_overrun_drops_the_new_byte_and_counts_it():
    """Three bytes back to back to a consumer that takes nothing until all have arrived: the first
    waits on `data`, the second is dropped at the third's start bit (one overrun), and the third
    waits in the receiver and follows the first."""
    m = Module()
    m.submodules.tx = tx = UartTx(5)
    m.submodules.rx = rx = UartRx(5)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def send(ctx):
        for b in (0x11, 0x22, 0x33):
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def recv(ctx):
        await ctx.tick().repeat(5 * 10 * 4)  # past all three bytes
        ctx.set(rx.data.ready, 1)
        for _ in range(20):
            _, _, valid, payload = await ctx.tick().sample(rx.data.valid, rx.data.payload)
            if valid:
                got.append(payload)
        assert ctx.get(rx.overruns) == 1 and ctx.get(rx.framing_errors) == 0

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(recv)
    sim.run()
    assert got == [0x11, 0x33]


def exchange(cfg, requests: list[bytes]) -> list:
    """Send each request frame byte by byte, wait for its response; returns the decoded responses."""
    dut = LinkCore(cfg)
    responses, decoder = [], Decoder()

    async def bench(ctx):
        ctx.set(dut.tx.ready, 1)
        for frame in requests:
            for b in frame:
                ctx.set(dut.rx.payload, b)
                ctx.set(dut.rx.valid, 1)
                await ctx.tick().until(dut.rx.ready)
            ctx.set(dut.rx.valid, 0)
            want = len(responses) + 1
            for _ in range(200_000):
                _, _, valid, payload = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
                if valid:
                    responses.extend(decoder.feed(bytes([payload])))
                    if len(responses) == want:
                        break
            assert len(responses) == want, f"no response to request {want}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return responses


def test_frames_run_a_layer_bit_exactly_and_bad_frames_are_rejected():
    cfg = config()
    rng = np.random.default_rng(3)
    layer, src = make_layer(rng, c=3, r=11, hw=(3, 3))
    x = random_input(rng, src, 1)
    words, plan = config_words(layer, src, cfg, RequantSpec())
    vectors = vectors_of(layer, x)
    beats = activation_bytes(vectors, plan, cfg)
    cfg_frames = config_frames(words, 64)  # several CONFIG frames, then CONFIG_END
    assert len(cfg_frames) > 2
    good_act = act_frame(beats[0])
    corrupt = bytearray(good_act)
    corrupt[6] ^= 0x10
    requests = [encode(Cmd.STATUS), *cfg_frames, bytes(corrupt), encode(0x42), encode(Cmd.ACT, b"\x01\x02\x03"),
                *[act_frame(b) for b in beats], encode(Cmd.STATUS), encode(Cmd.RESET), encode(Cmd.STATUS)]
    r = exchange(cfg, requests)
    assert Status.parse(r[0].payload) == Status(False, False, False, 0, 0, 0)
    n = len(cfg_frames)
    assert [f.cmd for f in r[1 : n + 1]] == [Cmd.ACK] * n and r[n].payload[0] == Cmd.CONFIG_END
    assert [(f.cmd, f.payload[1]) for f in r[n + 1 : n + 4]] == [(Cmd.NAK, Nak.CHECK), (Cmd.NAK, Nak.COMMAND),
                                                                 (Cmd.NAK, Nak.LENGTH)]
    results = r[n + 4 : n + 4 + len(beats)]
    out = np.array([np.frombuffer(f.payload, "<i2") for f in results], np.int64)
    assert np.array_equal(out, golden_outputs(layer, src, x))
    st = Status.parse(r[-3].payload)
    assert st.configured and st.pixels == len(beats) and st.rejected == 3 and st.cycles > 0
    assert r[-2].cmd == Cmd.ACK
    assert Status.parse(r[-1].payload) == Status(False, False, False, 0, 0, 0)  # RESET cleared the engine
