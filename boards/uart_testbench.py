"""cocotb test of a board's host path before a board exists: the link top's Verilog (UART, link,
engine) driven through a simulated UART by the very driver `rowmix run` uses (boards/host.py),
bridged from its blocking calls into the simulator with cocotb's `bridge` / `resume`."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, SimTimeoutError, with_timeout
from cocotbext.uart import UartSink, UartSource

from ..artifact import read_artifact
from ..hardware.config import ArrayConfig
from ..sim.host import Job, write_json
from .host import BoardLink, run_network

CLOCK_NS = 10


class SimUart:
    """The Transport protocol over cocotbext-uart (blocking calls, run from a bridged thread)."""

    def __init__(self, source: UartSource, sink: UartSink, bit_ns: int) -> None:
        self.source, self.sink, self.wait_ns = source, sink, 200 * bit_ns

    def write(self, data: bytes) -> None:
        resume(self._write)(data)

    def read(self, n: int) -> bytes:
        return resume(self._read)(n)

    async def _write(self, data: bytes) -> None:
        await self.source.write(data)

    async def _read(self, n: int) -> bytes:
        try:
            return bytes(await with_timeout(self.sink.read(), self.wait_ns, "ns"))  # all that arrived
        except SimTimeoutError:
            return b""


@cocotb.test()
async def uart_network(dut):
    job = Job.load(os.environ["ROWMIX_SIM_JOB"])
    divisor = int(os.environ["ROWMIX_UART_DIVISOR"])
    art = read_artifact(job.artifact)
    cfg = ArrayConfig.load(os.path.join(job.rtl, "array.json"))
    with np.load(job.images, allow_pickle=False) as z:
        images = z["images"][job.start : job.start + job.count]
        labels = z["labels"][job.start : job.start + job.count]
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    bit_ns = CLOCK_NS * divisor
    baud = 1e9 / bit_ns
    uart = SimUart(UartSource(dut.uart_rx, baud=baud), UartSink(dut.uart_tx, baud=baud), bit_ns)
    link = BoardLink(uart, cfg)
    run = await bridge(run_network)(link, art, images)
    write_json(job.result, {
        "images": len(run.predictions), "predictions": run.predictions, "labels": labels[: len(run.predictions)].tolist(),
        "layers": run.layers, "mismatch": None if run.mismatch is None else run.mismatch.to_json(),
        "mismatch_text": None if run.mismatch is None else str(run.mismatch), "sim_seconds": run.seconds,
    })
    assert run.mismatch is None, str(run.mismatch)
