"""The cocotb testbench: a whole network through the RTL, every MAC layer checked against the
golden model bit for bit.

Driver: cocotbext-axi sources for the configuration and activation streams. Monitor: a
cocotbext-axi sink collecting one frame (R output codes) per pixel. Model: the golden model on the
same inputs the RTL received. Checker: `checker.first_mismatch`; the first mismatching layer stops
the run with its layer, row, image, pixel, expected and actual value. The host does im2col, residual
adds and pooling with the golden model's functions. Runs under cocotb_tools.runner (simulate.py),
which passes the job file in ROWMIX_SIM_JOB.
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .. import golden
from ..artifact import MacLayer, read_artifact
from ..formats import CONTAINER_BITS, pack, unpack
from ..hardware.config import ArrayConfig
from ..hardware.cycles import layer_cycles
from ..hardware.protocol import activation_bytes, config_words
from ..golden.workspace import Workspace
from .checker import first_mismatch
from .host import Job, assemble, mac_vectors, write_json


def inject_fault(art, fault: dict):
    """Flip one bit of one weight code in the RTL's copy of a layer (the golden model keeps the
    original): the checker must name that layer and row."""
    import dataclasses

    layer = art.op(fault["layer"])
    row = int(fault["row"])
    g = layer.rows.group[row]
    i = layer.row_groups[g].index(row)
    codes = unpack(layer.codes[g], CONTAINER_BITS[g], layer.k_pad).copy()
    codes[i, int(fault["column"])] ^= 1 << int(fault["bit"])
    new = dict(layer.codes)
    new[g] = pack(codes, CONTAINER_BITS[g], layer.k_pad)
    return dataclasses.replace(layer, codes=new)


@cocotb.test()
async def network(dut):
    job = Job.load(os.environ["ROWMIX_SIM_JOB"])
    t0 = time.perf_counter()
    art = read_artifact(job.artifact)
    cfg = ArrayConfig.load(os.path.join(job.rtl, "array.json"))
    with np.load(job.images, allow_pickle=False) as z:
        images = z["images"][job.start : job.start + job.count]
        labels = z["labels"][job.start : job.start + job.count]
    rtl_layers = {op.name: op for op in art.mac_layers}
    if job.inject:
        rtl_layers[job.inject["layer"]] = inject_fault(art, job.inject)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.s_axis_cfg_tvalid.value = 0
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    cfg_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_cfg"), dut.clk, dut.rst)
    act_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)

    plans = golden.plans(art)
    tables = golden.add_tables(art)
    ws = Workspace()
    predictions, layer_stats, mismatch = [], {}, None
    out_bytes = cfg.out_bits // 8
    for start in range(0, len(images), job.batch):
        n = len(images[start : start + job.batch])
        values = {art.input.name: golden.quantize_input(images[start : start + n], art.input)}
        for op in art.ops:
            if not isinstance(op, MacLayer):
                values[op.name] = golden.apply_op(art, op, values, plans, tables, ws)
                continue
            x = values[op.input]
            expected = golden.mac_layer(op, x, plans[op.name], art.requant)
            words, plan = config_words(rtl_layers[op.name], art.tensors[op.input], cfg, art.requant)
            vectors = mac_vectors(op, x)
            beats = activation_bytes(vectors, plan, cfg)
            await cfg_src.send(AxiStreamFrame(words.astype("<u4").tobytes()))
            await cfg_src.wait()  # the layer must be configured before its activations flow
            while not int(dut.configured.value):
                await RisingEdge(dut.clk)
            for pixel in beats:
                await act_src.send(AxiStreamFrame(pixel.tobytes()))
            outputs = np.empty((len(vectors), plan.r), np.int64)
            for p in range(len(vectors)):
                frame = await sink.recv()
                outputs[p] = np.frombuffer(bytes(frame.tdata), dtype=f"<i{out_bytes}")
            await ClockCycles(dut.clk, 2)  # the engine's counter is complete two cycles after the last output
            measured = int(dut.cycles.value)
            model = layer_cycles(plan, cfg, len(vectors))
            s = layer_stats.setdefault(op.name, {"cycles": 0, "model_cycles": 0, "ideal_cycles": 0, "macs": 0})
            s["cycles"] += measured
            s["model_cycles"] += model.cycles
            s["ideal_cycles"] += model.ideal_cycles
            s["macs"] += model.macs
            actual = assemble(op, outputs, n)
            mismatch = first_mismatch(op.name, expected, actual, job.start + start)
            if mismatch is not None:
                break
            values[op.name] = actual.astype(np.float32)
        if mismatch is not None:
            break
        logits = values[art.output].reshape(n, -1)
        predictions += logits.argmax(axis=1).tolist()
    result = {
        "images": len(predictions),
        "start": job.start,
        "predictions": predictions,
        "labels": labels[: len(predictions)].tolist(),
        "layers": layer_stats,
        "mismatch": None if mismatch is None else mismatch.to_json(),
        "mismatch_text": None if mismatch is None else str(mismatch),
        "sim_seconds": time.perf_counter() - t0,
    }
    write_json(job.result, result)
    assert mismatch is None, str(mismatch)
