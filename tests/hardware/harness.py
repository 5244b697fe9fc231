"""Amaranth-simulator harness for the layer engine: send a layer's configuration and activation
vectors, collect the output stream (optionally with random back-pressure), count cycles."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from rowmix.artifact import MacLayer, TensorSpec
from rowmix.formats import RequantSpec
from rowmix.hardware.config import ArrayConfig
from rowmix.hardware.cycles import layer_cycles
from rowmix.hardware.engine import LayerEngine
from rowmix.hardware.protocol import activation_bytes, beat_values, config_words


@dataclass
class Job:
    layer: MacLayer
    src: TensorSpec
    vectors: np.ndarray  # [P, K] integer activations
    outputs: list[int] = field(default_factory=list)
    first_act_cycle: int | None = None
    last_out_cycle: int | None = None


def run_jobs(cfg: ArrayConfig, jobs: list[Job], ready_prob: float = 1.0, seed: int = 0,
             spec: RequantSpec = RequantSpec()) -> list[np.ndarray]:
    """Run layers back to back; returns each job's outputs [P, R]."""
    dut = LayerEngine(cfg)
    plans = []
    streams = []
    for job in jobs:
        words, plan = config_words(job.layer, job.src, cfg, spec)
        plans.append(plan)
        streams.append((words, beat_values(activation_bytes(job.vectors, plan, cfg))))
    rng = random.Random(seed)
    cycle = [0]
    done_jobs = [0]

    async def clock_count(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def driver(ctx):
        for j, (words, beats) in enumerate(streams):
            for i, w in enumerate(words):
                ctx.set(dut.config.payload, {"data": int(w), "last": int(i == len(words) - 1)})
                ctx.set(dut.config.valid, 1)
                await ctx.tick().until(dut.config.ready)
            ctx.set(dut.config.valid, 0)
            steps = plans[j].steps
            for i, b in enumerate(beats):
                ctx.set(dut.act.payload, {"data": b, "last": int(i % steps == steps - 1)})
                ctx.set(dut.act.valid, 1)
                await ctx.tick().until(dut.act.ready)
                if i == 0:
                    jobs[j].first_act_cycle = cycle[0] - 1
            ctx.set(dut.act.valid, 0)
            while done_jobs[0] <= j:  # the next layer's configuration waits for this one's outputs
                await ctx.tick()

    async def receiver(ctx):
        for j, job in enumerate(jobs):
            expected = len(job.vectors) * plans[j].r
            while len(job.outputs) < expected:
                ready = 1 if rng.random() < ready_prob else 0
                ctx.set(dut.out.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(dut.out.valid, dut.out.payload)
                if valid and ready:
                    job.outputs.append(payload.data)
                    last = len(job.outputs) % plans[j].r == 0
                    assert payload.last == last, f"tlast at output {len(job.outputs)}"
            job.last_out_cycle = cycle[0]
            done_jobs[0] += 1
        ctx.set(dut.out.ready, 0)
        for _ in range(4):
            await ctx.tick()
        assert not ctx.get(dut.error), "engine raised its error flag"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock_count)
    sim.add_testbench(driver)
    sim.add_testbench(receiver)
    # a stalled engine fails here instead of hanging the test: 4x the cycle model's count (more under
    # back-pressure) plus the configuration words, which the loader takes one per three cycles
    budget = sum(4 * layer_cycles(plan, cfg, len(job.vectors)).cycles / ready_prob + 4 * len(words) + 1000
                 for job, plan, (words, _) in zip(jobs, plans, streams))
    sim.run_until(budget * 1e-8)
    if done_jobs[0] < len(jobs):
        j = done_jobs[0]
        raise AssertionError(f"engine stalled: job {j} gave {len(jobs[j].outputs)} of "
                             f"{len(jobs[j].vectors) * plans[j].r} outputs in {cycle[0]} cycles")
    return [np.array(job.outputs, np.int64).reshape(len(job.vectors), plans[j].r) for j, job in enumerate(jobs)]
