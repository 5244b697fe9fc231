"""Run the UART host path in cocotb (Icarus or Verilator): generate the link top for an array,
build it, run boards/uart_testbench.py on a few images, return what the board would have returned."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RowmixError
from ..hardware.config import ArrayConfig
from ..sim.host import Job
from ..sim.icarus import icarus_copy
from ..sim.simulate import simulator_setup
from .link_top import LINK_TOP_NAME, link_verilog


@dataclass(frozen=True)
class UartSimResult:
    images: int
    predictions: list[int]
    labels: list[int]
    mismatch: str | None
    layers: dict
    seconds: float


def simulate_uart(artifact: str | Path, cfg: ArrayConfig, images: np.ndarray, labels: np.ndarray, *,
                  divisor: int = 4, simulator: str = "icarus", work_dir: str | Path | None = None,
                  waves: bool = False) -> UartSimResult:
    from cocotb_tools.runner import get_runner

    from ..sim.models import primitive_models

    work = Path(work_dir or tempfile.mkdtemp(prefix="rowmix-uart-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{LINK_TOP_NAME}.v").write_text(link_verilog(cfg, divisor))
    (work / "array.json").write_text(json.dumps(cfg.to_json(), indent=1) + "\n")
    sources = [work / f"{LINK_TOP_NAME}.v"]
    if simulator == "icarus":
        sources = [icarus_copy(sources[0], work / f"{LINK_TOP_NAME}.icarus.v")]
    sources += primitive_models(cfg.target, work)
    np.savez(work / "images.npz", images=np.asarray(images, np.float32), labels=np.asarray(labels, np.int64))
    job = Job(str(Path(artifact).resolve()), str(work), str(work / "images.npz"), 0, len(images), str(work / "result.json"))
    job.save(work / "job.json")
    args = simulator_setup(simulator)
    runner = get_runner(simulator)
    runner.build(sources=sources, hdl_toplevel=LINK_TOP_NAME, build_dir=work / "build", timescale=("1ns", "1ps"),
                 build_args=args, log_file=work / "build.log", waves=waves)
    try:
        runner.test(test_module="rowmix.boards.uart_testbench", hdl_toplevel=LINK_TOP_NAME, build_dir=work / "build",
                    test_dir=work, extra_env={"ROWMIX_SIM_JOB": str(work / "job.json"), "ROWMIX_UART_DIVISOR": str(divisor),
                                              "PYTHONPATH": os.pathsep.join(sys.path)},
                    results_xml=str(work / "results.xml"), log_file=work / "sim.log", timescale=("1ns", "1ps"),
                    waves=waves)
    except SystemExit:
        pass  # a failing test (a mismatch) still wrote its result
    if not (work / "result.json").is_file():
        tail = (work / "sim.log").read_text()[-3000:] if (work / "sim.log").is_file() else ""
        raise RowmixError(f"the UART link simulation produced no result; log tail:\n{tail}")
    r = json.loads((work / "result.json").read_text())
    return UartSimResult(r["images"], r["predictions"], r["labels"], r["mismatch_text"], r["layers"], r["sim_seconds"])
