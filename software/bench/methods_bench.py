"""`rowmix bench methods`: every method of the front end side by side on ResNet-20 / CIFAR-10, each
artifact scored by the golden model, the fake-quant network and the float model on the eval half,
and run through the generated RTL on a few images (cocotb, zero mismatches required).

The configurations and their per-configuration result cache are the accuracy benchmark's
(`rowmix bench accuracy`, same directory), so a result computed by either command is reused by
the other. Model size is counted two ways: the packed codes the hardware stores (every weight at
its row's bits) and the bits of the non-zero weights against float32 (how pruning papers count
compression)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..artifact import files_digest, read_artifact, summarize
from ..console import err
from ..data import load_dataset
from .accuracy_bench import AccuracyOptions, configs_named, run_config, write_record

# The table's rows, in order: the first front end's methods, then the other seed methods.
# CSQ: its default (STE fine-tune) at two data orders, then the bit-plane fine-tune of the paper's code
# at the same budget (the ablation; its 80- and 120-epoch runs are in docs/methods/csq.md).
KEYS = ("qmse-w8a8", "rmsmp-65", "ilmpq", "msq", "bitsplit-w4a8", "bitsplit-w3a8", "dpq", "csq-ste", "csq-ste-s1",
        "csq")
CSQ_GOAL_KEYS = (("csq-ste", "40 epochs"), ("csq-ste-s1", "40 epochs, seed 1"))
TIME_LIMIT_S = 45 * 60


@dataclass(frozen=True)
class MethodsOptions:
    out: Path = Path("runs/bench/accuracy")
    data_dir: Path | None = None
    keys: tuple[str, ...] = KEYS
    rtl_images: int = 2
    simulator: str = "verilator"
    eval_limit: int | None = None
    train_limit: int | None = None
    rescore: bool = False  # re-evaluate cached artifacts without retraining (AccuracyOptions.rescore)


def _rtl_check(key: str, art_dir: Path, o: MethodsOptions, ev) -> dict:
    """The artifact through the RTL on the first eval images (cached beside the result)."""
    from .. import sim
    from ..hardware.generate import default_config, generate
    from ..sim import simulate

    art = read_artifact(art_dir)
    rtl = o.out / "rtl" / key
    generate(art, default_config(art, "generic"), rtl)
    cache = o.out / "results" / f"{key}.rtl.json"
    # The check is reused while what it simulates is the same: the generated Verilog and configuration
    # words, and the testbench (not the generator's sources: an edit that leaves the RTL alone keeps it).
    settings = {"artifact_mtime": (art_dir / "manifest.json").stat().st_mtime_ns, "images": o.rtl_images,
                "simulator": o.simulator, "rtl": files_digest(rtl, ("*.v", "layers/*")),
                "testbench": files_digest(Path(sim.__file__).parent, ("*.py", "templates/*"))}
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("settings") == settings:
            return cached
    err.print(f"{key}: {o.rtl_images} images through the RTL ({o.simulator})")
    r = simulate(art_dir, rtl, ev.images[: o.rtl_images], ev.labels[: o.rtl_images], simulator=o.simulator,
                 workers=min(2, o.rtl_images))
    doc = {"settings": settings, "images": r.images, "mismatches": r.mismatches, "first_mismatch": r.first_mismatch,
           "rtl_predictions": r.rtl_predictions, "cycles": r.cycles}
    tmp = cache.with_name(f".{cache.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(cache)
    return doc


def _row(result: dict, rtl: dict) -> dict:
    s = summarize(read_artifact(Path(result["artifact"])))
    t = s["totals"]
    bits = sorted({b for layer in s["layers"] for b in _row_bits(layer)})
    return {"key": result["key"], "label": result["label"], "method": result["method"],
            "float": result["float"], "fakequant": result["fakequant"], "golden": result["golden"],
            "agreement": result["agreement"], "average_weight_bits": t["average_weight_bits"],
            "bit_widths": bits, "sparsity": t["sparsity"], "compression": t["compression"],
            "compression_dense": t["compression_dense"], "model_kib": t["packed_bytes"] / 1024,
            "nonzero_kib": 32 * t["weights"] / t["compression"] / 8 / 1024, "seconds": result["seconds"],
            "epochs": result["settings"]["epochs"], "act_bits": result["settings"]["act_bits"],
            "rtl_images": rtl["images"], "rtl_mismatches": rtl["mismatches"], "rtl_first_mismatch": rtl["first_mismatch"]}


def _row_bits(layer: dict) -> set[int]:
    return {int(f.split("-")[1]) for f in layer["rows_per_format"]}


def goals(rows: dict[str, dict]) -> list[dict]:
    """Issue 8's goals: points below float (golden), compression, bits, agreement, RTL, time."""
    out = []

    def gap(key: str) -> float | None:
        r = rows.get(key)
        return None if r is None else 100 * (r["float"] - r["golden"])

    for key, limit, text in (("bitsplit-w4a8", 1.0, "Bit-Split W4A8, no retraining: within 1.0 point of float"),
                             ("bitsplit-w3a8", 3.0, "Bit-Split W3A8, no retraining: within 3.0 points of float")):
        g = gap(key)
        if g is not None:
            out.append({"goal": text, "measured": f"golden - float = {-g:+.2f} points", "pass": g <= limit})
    if "dpq" in rows:
        r, g = rows["dpq"], gap("dpq")
        out.append({"goal": "DPQ: about 15x compression against float32, within 1.0 point of float",
                    "measured": f"{r['compression']:.2f}x, golden - float = {-g:+.2f} points",
                    "pass": r["compression"] >= 14.5 and g <= 1.0})
    for key, run in CSQ_GOAL_KEYS:
        if key in rows:  # the method's default, both data orders
            r, g = rows[key], gap(key)
            out.append({"goal": f"CSQ ({run}): average weight bits <= 3, 4-bit activations, within "
                                "1.5 points of float",
                        "measured": f"{r['average_weight_bits']:.2f} bits, A{r['act_bits']}, golden - float = {-g:+.2f} points",
                        "pass": r["average_weight_bits"] <= 3 + 1e-9 and r["act_bits"] == 4 and g <= 1.5})
    if rows:
        k, w = max(((k, abs(r["golden"] - r["fakequant"])) for k, r in rows.items()), key=lambda t: t[1])
        out.append({"goal": "golden vs fake-quant accuracy within 0.1 point, every method",
                    "measured": f"worst {100 * w:.2f} points ({k})", "pass": 100 * w <= 0.1 + 1e-9})
        bad = [k for k, r in rows.items() if r["rtl_mismatches"]]
        out.append({"goal": "every artifact through the RTL with zero mismatches",
                    "measured": "all bit-exact" if not bad else f"mismatches in {', '.join(bad)}", "pass": not bad})
        k, t = max(((k, r["seconds"]) for k, r in rows.items()), key=lambda t: t[1])
        out.append({"goal": "each run fits in 45 minutes on 2 CPU cores",
                    "measured": f"longest {t / 60:.1f} min ({k})", "pass": t <= TIME_LIMIT_S})
    return out


def _markdown(rows: list[dict], gl: list[dict], images: int) -> str:
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    lines = ["# The front end's methods side by side: ResNet-20 / CIFAR-10", "",
             f"Eval half ({images} images), float measured in the same run; golden = the integer model the "
             "hardware computes; RTL = the generated Verilog in cocotb on the first eval images. Training "
             "budgets are the rows' epochs on the 5000-image tune half (far shorter than the papers' schedules).", "",
             "| method | A bits | epochs | float | fake-quant | golden | golden - float | avg weight bits | bit widths | "
             "sparsity % | compression x (non-zero / dense) | packed KiB | RTL | time min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rtl = f"{r['rtl_images']} images, bit-exact" if not r["rtl_mismatches"] else f"**{r['rtl_mismatches']} mismatches**"
        lines.append(
            f"| {r['label']} | {r['act_bits']} | {r['epochs']} | {pct(r['float'])} | {pct(r['fakequant'])} | "
            f"{pct(r['golden'])} | {100 * (r['golden'] - r['float']):+.2f} | {r['average_weight_bits']:.2f} | "
            f"{', '.join(map(str, r['bit_widths']))} | {100 * r['sparsity']:.1f} | {r['compression']:.2f} / "
            f"{r['compression_dense']:.2f} | {r['model_kib']:.1f} | {rtl} | {r['seconds'] / 60:.1f} |")
    lines += ["", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {'yes' if g['pass'] else '**no**'} |" for g in gl]
    lines += ["", "Compression: 32 x weights / (bits of the non-zero weights) against float32 (pruned zeros "
              "count nothing, no index overhead); dense: every weight at its row's bits (what the packed "
              "codes store). Time: wall time of quantization, calibration and training on a 2-core machine. "
              "CSQ: the goal is checked on the method's default, the STE fine-tune (both data orders); the "
              "bit-plane fine-tune row is the ablation at the same 40 epochs.", ""]
    return "\n".join(lines)


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    if rows:
        ax.axhline(100 * rows[0]["float"], ls="--", lw=0.8, color="grey", label="float")
    for r in rows:
        ax.scatter(r["nonzero_kib"], 100 * r["golden"], color="tab:blue")
        ax.annotate(r["label"], (r["nonzero_kib"], 100 * r["golden"]), fontsize=6, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("model size: bits of the non-zero weights (KiB, log scale)")
    ax.set_ylabel("golden top-1 accuracy on the eval half (%)")
    ax.set_title("ResNet-20 / CIFAR-10: accuracy against model size, every method")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def run(o: MethodsOptions) -> dict:
    chosen = configs_named(o.keys or KEYS)
    t0 = time.perf_counter()
    acc = AccuracyOptions(out=o.out, data_dir=o.data_dir, eval_limit=o.eval_limit, train_limit=o.train_limit,
                          rescore=o.rescore)
    ev = load_dataset("cifar10", "eval", o.data_dir, o.eval_limit)
    rows = []
    for c in chosen:
        result = run_config(c, acc, ev)
        rows.append(_row(result, _rtl_check(c.key, Path(result["artifact"]), o, ev)))
    gl = goals({r["key"]: r for r in rows})
    doc = {"images": len(ev), "options": {**asdict(o), "out": str(o.out),
                                          "data_dir": None if o.data_dir is None else str(o.data_dir)},
           "rows": rows, "goals": gl, "seconds": time.perf_counter() - t0}
    write_record(o.out, "methods", doc, _markdown(rows, gl, len(ev)), lambda path: _plot(rows, path))
    return doc
