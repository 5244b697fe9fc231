"""The end-to-end flow: float model -> row-wise quantization -> artifact -> golden -> Verilog ->
cocotb simulation -> comparison -> report. Every stage's output is cached in the run directory and
reused while its inputs (recorded as a hash in stages.json) are unchanged."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .console import err
from .errors import RowmixError


@dataclass(frozen=True)
class FlowOptions:
    out: Path
    model: str = "digits"
    data_dir: Path | None = None
    method: str = "mixed"
    ratio: str | None = None  # None: the default board's ratio from the resource model
    board: str = "icebreaker"
    act_bits: int = 4
    input_bits: int = 8
    pool_bits: int = 8
    target: str = "generic"
    simulator: str = "icarus"
    limit: int | None = None  # evaluate the first N images of the eval split (default: all)
    sim_limit: int | None = None  # simulate the first N of those (default: all for digits, 20 otherwise)
    workers: int = 2


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([__version__, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


class Stages:
    """stages.json: the input hash each stage's output was made from."""

    def __init__(self, root: Path) -> None:
        self.path = root / "stages.json"
        self.keys = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def fresh(self, stage: str, key: str, output: Path) -> bool:
        ok = self.keys.get(stage) == key and output.exists()
        if ok:
            err.print(f"[dim]{stage}: cached ({output.name})[/dim]")
        return ok

    def done(self, stage: str, key: str) -> None:
        self.keys[stage] = key
        tmp = self.path.with_name(".stages.json.tmp")
        tmp.write_text(json.dumps(self.keys, indent=1))
        tmp.replace(self.path)


def default_ratio(board: str, act_bits: int):
    """The board's ratio: the row shares of its full mixed array (rowmix.boards.arrays, what
    `rowmix build --board` puts on it) for a board with a bitstream flow, else the ratio the shipped
    resource model (rowmix bench hardware) derives."""
    from importlib import resources

    from .boards.arrays import PLANS, board_ratio
    from .hardware.resources import ratio_string, read_resource_model
    from .quant import Ratio

    if board in PLANS and PLANS[board].act_bits == act_bits:
        return Ratio.parse(ratio_string(board_ratio(board)), source=f"board-array:{board}")

    path = resources.files("rowmix.hardware").joinpath("default_resource_model.json")
    r = read_resource_model(Path(str(path)), board, act_bits)
    return Ratio.parse(ratio_string(r), source=f"{r['source']} (shipped resource model)")


def run_flow(o: FlowOptions) -> dict:
    from .artifact import read_artifact, summarize, write_artifact
    from .console import progress
    from .data import load_dataset
    from .evaluate import evaluate
    from .hardware.generate import default_config, generate
    from .models import MODELS, build_model
    from .quant import Ratio, make_method, quantize
    from .report import write_report
    from .sim import simulate

    t0 = time.perf_counter()
    if o.model not in MODELS:
        raise RowmixError(f"unknown model {o.model!r} (known: {', '.join(MODELS)})")
    data = MODELS[o.model]
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out)
    ratio = Ratio.parse(o.ratio, source="user") if o.ratio else default_ratio(o.board, o.act_bits)
    method = make_method(o.method, 8, ratio)
    model, info = build_model(o.model, o.data_dir)

    # 1. quantize
    art_dir = out / "artifact"
    k_art = _key("quantize", info.name, info.weights_sha256, method.name, method.params(), asdict(ratio), o.act_bits,
                 o.input_bits, o.pool_bits)
    if not stages.fresh("quantize", k_art, art_dir):
        tune = load_dataset(data, "tune", o.data_dir, 1000 if data == "cifar10" else None)
        with progress(f"calibrating on {len(tune)} images", len(tune)) as update:
            q = quantize(model, info, method, tune.images, tune.mean, tune.std, act_bits=o.act_bits,
                         input_bits=o.input_bits, pool_bits=o.pool_bits, progress=update)
        write_artifact(q.artifact, art_dir)
        stages.done("quantize", k_art)
    art = read_artifact(art_dir)

    # 2. generate
    rtl_dir = out / "rtl"
    cfg = default_config(art, o.target)
    k_rtl = _key("generate", k_art, cfg.to_json())
    if not stages.fresh("generate", k_rtl, rtl_dir):
        generate(art, cfg, rtl_dir)
        stages.done("generate", k_rtl)
    est = json.loads((rtl_dir / "estimate.json").read_text())

    # 3. float / fake-quant / golden
    ds = load_dataset(data, "eval", o.data_dir, o.limit)
    ev_path = out / "evaluation.json"
    k_ev = _key("evaluate", k_art, data, "eval", o.limit)
    if not stages.fresh("evaluate", k_ev, ev_path):
        ev = evaluate(art, ds, o.data_dir)
        ev_path.write_text(json.dumps(ev.to_json(predictions=True)))
        stages.done("evaluate", k_ev)
    ev = json.loads(ev_path.read_text())

    # 4. RTL simulation (of every eval image for digits; of the first 20 by default for the ResNets,
    # whose full-set accuracy comes from the golden model, which the RTL matches bit for bit)
    n_sim = min(len(ds), o.sim_limit if o.sim_limit is not None else (len(ds) if data == "digits" else 20))
    sim_path = out / "simulation.json"
    k_sim = _key("simulate", k_rtl, data, "eval", o.limit, n_sim, o.simulator)
    if not stages.fresh("simulate", k_sim, sim_path):
        err.print(f"simulating {n_sim} images on {o.simulator} ({o.workers} processes)")
        res = simulate(art_dir, rtl_dir, ds.images[:n_sim], ds.labels[:n_sim], simulator=o.simulator,
                       workers=o.workers)
        sim_path.write_text(json.dumps(res.to_json()))
        stages.done("simulate", k_sim)
    sim = json.loads(sim_path.read_text())

    # 5. comparison and report
    g_pred = np.array(ev["golden_predictions"])
    r_pred = np.array(sim["rtl_predictions"])
    golden_on_rtl_images = float(np.mean(g_pred[: len(r_pred)] == ds.labels[: len(r_pred)])) if len(r_pred) else None
    fq_pred = ev["fakequant_predictions"]
    s = summarize(art)
    per_image = max(1, sim["images"])
    layers = []
    for l in s["layers"]:
        st = sim["layers"].get(l["name"], {})
        cyc = st.get("cycles", 0) / per_image
        ideal = st.get("ideal_cycles", 0) / per_image
        layers.append({**l, "cycles": round(cyc), "model_cycles": round(st.get("model_cycles", 0) / per_image),
                       "ideal_cycles": round(ideal), "utilisation": ideal / cyc if cyc else 0.0})
    groups = cfg.to_json()["groups"]
    summary = {
        "model": o.model, "dataset": data, "split": "eval", "images": len(ds), "rtl_images": sim["images"],
        "method": o.method,
        "ratio": str(ratio), "ratio_source": ratio.source, "act_bits": o.act_bits, "target": cfg.target,
        "array_summary": f"t_k={cfg.t_k}, " + ", ".join(f"{g} {v['rows']} rows ({v['kind']})" for g, v in groups.items()),
        "simulator": o.simulator,
        "accuracy": {"float": ev["float_accuracy"], "fake-quant": ev["fakequant_accuracy"], "golden": ev["accuracy"],
                     "RTL": sim["rtl_accuracy"]},
        "golden_accuracy_on_rtl_images": golden_on_rtl_images,
        "agreement": {"golden vs RTL": int((g_pred[: len(r_pred)] == r_pred).sum()) if len(r_pred) else None,
                      "golden vs fake-quant": None if fq_pred is None else int((g_pred == np.array(fq_pred)).sum())},
        "mismatches": sim["mismatches"], "first_mismatch": sim["first_mismatch"],
        "cycles_per_image": round(sim["cycles"] / per_image), "model_cycles_per_image": round(sim["model_cycles"] / per_image),
        "ideal_cycles_per_image": round(sim["ideal_cycles"] / per_image), "utilisation": sim["utilisation"],
        "estimate": {"macs_per_cycle": est["macs_per_cycle"], "dsp": est["resources"]["dsp"],
                     "memory_bits": est["resources"]["memory_bits"]},
        "sim_seconds": sim["sim_seconds"], "layers": layers,
        "seconds": time.perf_counter() - t0,
    }
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    tmp.replace(out / "summary.json")
    write_report(summary, out / "report.html")
    return summary
