"""`rowmix bench sim`: RTL simulation speed, Icarus Verilog against Verilator, on the same design and
the same images in one run (cycles per second and simulated MACs per second of the cocotb run)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..artifact import replace_dir
from ..data import load_dataset
from ..hardware.generate import default_config, generate
from ..models import build_model
from ..quant import make_method, quantize
from ..sim import simulate


def run(out: Path, images: int = 16, simulators: tuple[str, ...] = ("icarus", "verilator")) -> dict:
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    model, info = build_model("digits")
    tune, ev = load_dataset("digits", "tune"), load_dataset("digits", "eval", limit=images)
    art = quantize(model, info, make_method("mixed", 4, "65:30:5"), tune.images, tune.mean, tune.std, act_bits=4).artifact
    from ..artifact import write_artifact

    art_dir = write_artifact(art, tmp / "artifact")
    cfg = default_config(art, "generic")
    generate(art, cfg, tmp / "rtl")
    rows = []
    for sim in simulators:
        r = simulate(art_dir, tmp / "rtl", ev.images, ev.labels, simulator=sim, workers=1)
        rows.append({"simulator": sim, "images": r.images, "mismatches": r.mismatches, "cycles": r.cycles,
                     "macs": r.macs, "build_seconds": round(r.build_seconds, 2), "run_seconds": round(r.run_seconds, 2),
                     "cycles_per_s": r.cycles / r.run_seconds, "macs_per_s": r.macs / r.run_seconds})
    base = rows[0]
    for r in rows:
        r["speed_vs_" + base["simulator"]] = r["cycles_per_s"] / base["cycles_per_s"]
    result = {"design": {"array": cfg.to_json(), "macs_per_cycle": cfg.macs_per_cycle, "network": "digits CNN, mixed 65:30:5 W4A4"},
              "runs": rows}
    lines = ["# RTL simulation speed (cocotb, one process each, same design and images)", "",
             f"Design: digits CNN artifact on a generic array of {cfg.macs_per_cycle} MAC lanes; {images} images.", "",
             "| simulator | cycles | build s | run s | cycles/s | simulated MACs/s | speed vs " + base["simulator"] + " |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['simulator']} | {r['cycles']} | {r['build_seconds']} | {r['run_seconds']} | {r['cycles_per_s']:.0f} | "
                     f"{r['macs_per_s']:.0f} | {r['speed_vs_' + base['simulator']]:.1f}x |")
    lines += ["", "Run time is spent inside the simulator with the cocotb testbench (driver, sink, golden model and",
              "checker) running; build time is Verilog compilation (Verilator: C++ compilation)."]
    (tmp / "sim_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    (tmp / "sim_bench.md").write_text("\n".join(lines) + "\n")
    import shutil

    shutil.rmtree(tmp / "artifact")
    shutil.rmtree(tmp / "rtl")
    replace_dir(tmp, out)
    return result
