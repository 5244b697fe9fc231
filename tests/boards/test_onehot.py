"""The one-hot FSM keeps m.FSM()'s rule that the last `next` written in a state wins, and exactly one
state bit is ever set."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from rowmix.boards.onehot import OneHotFSM


def test_last_assignment_wins_and_one_bit_is_set():
    m = Module()
    go, skip = Signal(), Signal()
    fsm = OneHotFSM(m, "A")
    with fsm.State("A"):
        with m.If(go):
            fsm.next = "B"
            with m.If(skip):
                fsm.next = "C"  # overrides B
    with fsm.State("B"):
        fsm.next = "A"
    with fsm.State("C"):
        with m.If(go):
            fsm.next = "C"  # stays
        with m.Else():
            fsm.next = "A"
    seen = []

    async def bench(ctx):
        for g, s in [(0, 0), (1, 0), (0, 0), (1, 1), (1, 0), (0, 0), (1, 1)]:
            ctx.set(go, g)
            ctx.set(skip, s)
            await ctx.tick()
            seen.append("".join(n for n in "ABC" if ctx.get(fsm.bits[n])))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == ["A", "B", "A", "C", "C", "A", "C"]
