"""Cycle model of the layer engine: exact cycle counts for a layer of P pixels when the activation
stream is always valid and the output stream always ready (the Amaranth simulation checks it).

Timeline of one pixel p (activation bank p % 2, output bank p % OUT_BANKS), in cycles:
- load:  S beats from the first cycle bank b is free; the vector is visible `S` cycles later.
- issue: T tile slots of P = max(S, rows + 2) cycles (rows = the widest group's row lanes; the groups
  drain a tile in parallel in rows + 2 cycles, before the next tile overwrites the hold registers). A
  pixel follows the previous one without a gap when its vector and output bank are ready a cycle
  before the previous pixel's last slot ends, else it starts two cycles after they are (the
  controller passes through idle; its start flag is a register).
- drain: the last tile is captured `pipeline_latency` cycles after its last step, drained one row
  lane per cycle per group through the row tables and the group's requant unit; the pixel's outputs
  are complete DRAIN_TAIL cycles after the last row lane entered the drain.
- stream: R reads, one per cycle once the pixel is complete and the previous pixel has been read;
  an output beat leaves OUT_LATENCY cycles after its read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import ArrayConfig
from .engine import DRAIN_OVERHEAD, OUT_BANKS, pipeline_latency
from .protocol import LayerPlan
from .requant import LATENCY as RQ_LATENCY

DRAIN_TAIL = 1 + RQ_LATENCY + 1  # last row's stage-2 register, requant pipeline, bank flag visible
OUT_LATENCY = 3  # memory read, FIFO write, buffered FIFO output


@dataclass(frozen=True)
class LayerCycles:
    name: str
    pixels: int
    steps: int  # S
    tiles: int  # T
    period: int  # P
    cycles: int  # first activation beat accepted .. last output beat accepted, inclusive
    steady_cycles_per_pixel: int
    macs: int  # useful MACs: pixels * R * K
    ideal_cycles: int  # macs / MAC lanes
    utilisation: float

    def to_json(self) -> dict:
        return asdict(self)


def layer_cycles(plan: LayerPlan, cfg: ArrayConfig, pixels: int) -> LayerCycles:
    drain = cfg.drain_rows
    S, T = plan.steps, max(plan.tiles.values())
    P = max(S, drain + DRAIN_OVERHEAD)
    delay = pipeline_latency(cfg)
    load_done: list[int] = []  # cycle the vector is visible (bank full)
    issue_start: list[int] = []
    last_read: list[int] = []
    loader_free = 0  # first cycle the loader may take a beat
    for p in range(pixels):
        # the bank is free once pixel p-2 has issued its last slot
        bank_free = 0 if p < 2 else issue_start[p - 2] + T * P
        start_load = max(loader_free, bank_free)
        load_done.append(start_load + S)
        loader_free = start_load + S
        out_free = 0 if p < OUT_BANKS else last_read[p - OUT_BANKS] + 1
        # the issuer decides from registered flags: state of the cycle before the decision
        if p == 0:
            issue_start.append(max(load_done[0], out_free) + 2)
        else:
            end_prev = issue_start[p - 1] + T * P - 1
            if load_done[p] < end_prev and out_free < end_prev:
                issue_start.append(end_prev + 1)
            else:
                issue_start.append(max(end_prev + 1, load_done[p], out_free) + 2)
        complete = issue_start[p] + (T - 1) * P + S - 1 + delay + drain + DRAIN_TAIL
        first_read = max(complete, last_read[p - 1] + 1 if p else 0)
        last_read.append(first_read + plan.r - 1)
    total = last_read[-1] + OUT_LATENCY + 1 if pixels else 0  # cycles counted from beat 0 at cycle 0
    macs = pixels * plan.r * plan.k
    ideal = -(-macs // cfg.macs_per_cycle)
    steady = issue_start[-1] - issue_start[-2] if pixels > 1 else total
    return LayerCycles(plan.name, pixels, S, T, P, total, steady, macs, ideal, ideal / total if total else 0.0)
