"""The `rowmix` command line: one entry point for every stage (DESIGN section 1).

Errors in the user's input (RowmixError, including ArtifactError) become one line on stderr and exit
code 2, never a traceback; everything long shows a rich progress bar on stderr, so `--json` output on
stdout stays machine-readable.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass as _dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import __version__
from .console import err
from .errors import RowmixError

app = typer.Typer(
    help="Row-wise mixed-scheme quantization, bit-exact golden model and FPGA MAC arrays.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks: ratios measured side by side in one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


class RequantChoice(str, Enum):
    single16 = "single16"
    single31 = "single31"
    tflite_double = "tflite_double"


DataDir = Annotated[Optional[Path], typer.Option(help="Directory with CIFAR-10 test.npz and the ResNet weights "
                                                     "(default: $ROWMIX_CIFAR10_DIR or ../shared/data/cifar10).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
InputBits = Annotated[int, typer.Option(help="Bits of the signed network input (2..8); 5 fits arrays with 4-bit "
                                             "activation lanes, such as the full board arrays.")]
PoolBits = Annotated[int, typer.Option(help="Bits of average-pooled tensors (at least --act-bits; 8 by default); "
                                            "--pool-bits 4 fits arrays with 4-bit activation lanes.")]


def _version(value: bool) -> None:
    if value:
        print(f"rowmix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    pass


def _requant(choice: RequantChoice):
    from .formats import RequantSpec

    return {"single16": RequantSpec("single", 16), "single31": RequantSpec("single", 31),
            "tflite_double": RequantSpec("tflite_double", 31)}[choice.value]


def _ratio(ratio: str, ratio_from: Optional[Path], board: Optional[str], act_bits: int):
    """The row ratio: from --ratio, or from a resource model (rowmix bench hardware) for a board."""
    from .quant import Ratio

    if ratio_from is None:
        return Ratio.parse(ratio)
    from .hardware.resources import ratio_string, read_resource_model

    if board is None:
        raise RowmixError("--ratio-from needs --board (icebreaker, ulx3s-85f or pynq-z2)")
    r = read_resource_model(ratio_from, board, act_bits if act_bits in (4, 8) else None)
    return Ratio.parse(ratio_string(r), source=f"{r['source']} ({ratio_from})")


@_dataclass(frozen=True)
class QuantizeOptions:
    """Everything `quantize` (and `flow`) pass to the pipeline."""

    model: str = "digits"
    data: Optional[str] = None
    data_dir: Optional[Path] = None
    method: str = "mixed"
    bits: int = 8
    ratio: str = "65:30:5"
    ratio_from: Optional[Path] = None
    board: Optional[str] = None
    act_bits: Optional[int] = None  # None: 4 for the RMSMP family, else 8
    input_bits: int = 8
    pool_bits: int = 8
    calib: Optional[int] = None
    requant: RequantChoice = RequantChoice.single16
    weights: Optional[Path] = None
    epochs: int = 0
    batch: int = 128
    lr: float = 0.03
    kd_alpha: float = 0.9
    checkpoint: Optional[Path] = None
    ranking: str = "hessian"
    split: str = "shape"
    hutchinson_samples: int = 32
    reassign_every: int = 0
    seed: int = 0
    usp: bool = True
    sparsity: float = 0.55
    target_bits: float = 3.0
    per_row: bool = False
    csq_finetune: str = "ste"


def _quantize_to(out: Path, o: "QuantizeOptions"):
    """Shared by `quantize` and `flow`: build, calibrate, (train), export, write atomically."""
    from .artifact import write_artifact
    from .console import progress_bars
    from .data import load_dataset
    from .models import MODELS, build_model
    from .quant import METHODS, TrainConfig, make_method, quantize
    from .quant.qat import init_distributed, rank_world

    if o.model not in MODELS:
        raise RowmixError(f"unknown model {o.model!r} (known: {', '.join(MODELS)})")
    if o.method not in METHODS:
        raise RowmixError(f"unknown method {o.method!r} (known: {', '.join(METHODS)})")
    options = {}
    if o.method in ("rmsmp", "ilmpq", "msq"):
        options = dict(ranking=o.ranking, split=o.split, samples=o.hutchinson_samples,
                       reassign_every=o.reassign_every, seed=o.seed)
    elif o.method == "qmse":
        options = dict(usp=o.usp)
    elif o.method == "bitsplit":
        options = dict(seed=o.seed)
    elif o.method == "dpq":
        options = dict(sparsity=o.sparsity, seed=o.seed)
    elif o.method == "csq":
        options = dict(target_bits=o.target_bits, per_row=o.per_row, finetune=o.csq_finetune, seed=o.seed)
    act_bits = o.act_bits if o.act_bits is not None else (4 if o.method in ("rmsmp", "ilmpq", "msq", "csq") else 8)
    m = make_method(o.method, o.bits, _ratio(o.ratio, o.ratio_from, o.board, act_bits), **options)
    data = o.data or MODELS[o.model]
    calib = o.calib if o.calib is not None else (1000 if data == "cifar10" else None)
    distributed = init_distributed()
    rank, _ = rank_world()
    model, info = build_model(o.model, o.data_dir, o.weights)
    tune_all = load_dataset(data, "tune", o.data_dir)
    tune = load_dataset(data, "tune", o.data_dir, calib)
    train_cfg = None
    if o.epochs > 0:
        train_cfg = TrainConfig(epochs=o.epochs, batch=o.batch, lr=o.lr, kd_alpha=o.kd_alpha, seed=o.seed,
                                checkpoint=None if o.checkpoint is None else str(o.checkpoint))
    bars = [(f"calibrating on {len(tune)} {data} images", len(tune))]
    if o.epochs > 0:
        bars.append((f"QAT, {o.epochs} epochs on {len(tune_all)} images", o.epochs * (len(tune_all) // o.batch)))
    with progress_bars(*bars) as updates:
        update, train_update = updates[0], updates[-1]
        q = quantize(model, info, m, tune.images, tune.mean, tune.std, act_bits=act_bits,
                     input_bits=o.input_bits, pool_bits=o.pool_bits,
                     requant=_requant(o.requant), progress=update if rank == 0 else None, calib_labels=tune.labels,
                     train_config=train_cfg, train_images=tune_all.images, train_labels=tune_all.labels,
                     train_progress=lambda step, total, loss: train_update(step))
    if distributed and rank != 0:
        return None, q.artifact
    return write_artifact(q.artifact, out), q.artifact


@app.command()
def quantize(
    out: Annotated[Path, typer.Option(help="Artifact directory to write (replaced atomically).")],
    model: Annotated[str, typer.Option(help="Built-in model: digits, resnet20, resnet56.")] = "digits",
    method: Annotated[str, typer.Option(help="fixed, sp2, mixed (variance-ranked rows), rmsmp (Hessian-ranked "
                                              "SP2/FIXED4/FIXED8 rows), ilmpq (FIXED4/FIXED8), msq (SP2/FIXED4), "
                                              "qmse (MSE-optimal FIXED-b + BN re-estimation), bitsplit (Bit-Split "
                                              "and stitching PTQ), dpq (pruning + pseudo-mean bits, needs --epochs), "
                                              "csq (learned bits per layer, needs --epochs).")] = "mixed",
    bits: Annotated[int, typer.Option(help="Weight bits of methods fixed and qmse (2..8) and bitsplit (3..8; first "
                                           "and last layers 8).")] = 8,
    ratio: Annotated[str, typer.Option(help="Row shares SP2:FIXED4:FIXED8 in percent (mixed, rmsmp, ilmpq, msq).")] = "65:30:5",
    ratio_from: Annotated[Optional[Path], typer.Option(help="Take the ratio from a resource model "
                                                            "(rowmix bench hardware) for --board.")] = None,
    board: Annotated[Optional[str], typer.Option(help="Board of --ratio-from: icebreaker, ulx3s-85f, pynq-z2.")] = None,
    act_bits: Annotated[Optional[int], typer.Option(help="Activation bits inside the network (4 or 8; default 4 for "
                                                         "rmsmp / ilmpq / msq / csq, else 8).")] = None,
    input_bits: InputBits = 8,
    pool_bits: PoolBits = 8,
    data: Annotated[Optional[str], typer.Option(help="Calibration dataset (default: the model's own).")] = None,
    data_dir: DataDir = None,
    calib: Annotated[Optional[int], typer.Option(help="Calibration images from the tune half (default: all for "
                                                       "digits, 1000 for CIFAR-10).")] = None,
    requant: Annotated[RequantChoice, typer.Option(help="Requantization: single16 (FPGA default), single31 "
                                                         "(TFLite single rounding), tflite_double.")] = RequantChoice.single16,
    weights: Annotated[Optional[Path], typer.Option(help="Pretrained ResNet weights (.npz or .th) instead of "
                                                          "DATA_DIR/<model>.npz.")] = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs on the tune half (0: post-training only).")] = 0,
    batch: Annotated[int, typer.Option(help="QAT batch (global, split over torchrun processes).")] = 128,
    lr: Annotated[float, typer.Option(help="QAT learning rate (SGD, cosine schedule).")] = 0.03,
    kd_alpha: Annotated[float, typer.Option(help="Share of the distillation loss from the float model.")] = 0.9,
    checkpoint: Annotated[Optional[Path], typer.Option(help="QAT checkpoint file: saved every epoch, resumed from "
                                                            "when it exists.")] = None,
    ranking: Annotated[str, typer.Option(help="rmsmp row ranking for FIXED-8: hessian, random or variance.")] = "hessian",
    split: Annotated[str, typer.Option(help="rmsmp SP2 vs FIXED-4 split: shape (distortion gap) or variance.")] = "shape",
    hutchinson_samples: Annotated[int, typer.Option(help="Hutchinson samples per calibration batch.")] = 32,
    reassign_every: Annotated[int, typer.Option(help="Reassign rmsmp rows every N QAT epochs (0: never).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the Hessian probes, QAT shuffling and augmentation.")] = 0,
    usp: Annotated[bool, typer.Option(help="qmse: re-estimate batch-norm statistics (USP).")] = True,
    sparsity: Annotated[float, typer.Option(help="dpq: share of each hidden layer's weights pruned by magnitude.")] = 0.55,
    target_bits: Annotated[float, typer.Option(help="csq: average weight bits of the result (sign included).")] = 3.0,
    per_row: Annotated[bool, typer.Option(help="csq: learn bits per row instead of per layer.")] = False,
    csq_finetune: Annotated[str, typer.Option(help="csq: after the search, fine-tune with STE QAT on the FIXED-b "
                                                   "rows (ste) or the bit planes (planes).")] = "ste",
    json_out: Json = False,
) -> None:
    """Quantize a model row by row (post-training or QAT) and export the artifact (manifest.json + weights.npz)."""
    from .artifact import summarize

    o = QuantizeOptions(model, data, data_dir, method, bits, ratio, ratio_from, board, act_bits, input_bits,
                        pool_bits, calib, requant,
                        weights, epochs, batch, lr, kd_alpha, checkpoint, ranking, split, hutchinson_samples,
                        reassign_every, seed, usp, sparsity, target_bits, per_row, csq_finetune)
    path, art = _quantize_to(out, o)
    if path is None:  # a non-zero torchrun rank: rank 0 writes the artifact
        return
    s = summarize(art)
    if json_out:
        print(json.dumps({"artifact": str(path), **s["totals"], "achieved_ratio": s["achieved_ratio"]}))
    else:
        t = s["totals"]
        err.print(f"wrote [bold]{path}[/bold]: {t['mac_layers']} MAC layers, {t['rows']} rows, "
                  f"rows SP2/FIXED4/FIXED8 = {s['achieved_ratio']}, {t['average_weight_bits']:.2f} weight bits on "
                  f"average, {t['packed_bytes']} packed bytes")


@app.command()
def inspect(artifact: Annotated[Path, typer.Argument(help="Artifact directory.")], json_out: Json = False) -> None:
    """Summarise an artifact: per-layer R, K, rows per scheme and bits, sizes, checksums."""
    from .artifact import read_artifact, summarize

    art = read_artifact(artifact)
    s = summarize(art)
    if json_out:
        print(json.dumps(s, indent=1))
        return
    t = Table(title=f"{artifact} ({art.method['name']}, model {art.model.get('name')})")
    for col in ("layer", "op", "R", "K", "SP2", "FIXED4", "FIXED8", "act in/out", "packed B"):
        t.add_column(col, justify="right" if col not in ("layer", "op") else "left")
    for l in s["layers"]:
        g = l["rows_per_group"]
        t.add_row(l["name"], l["op"], str(l["R"]), str(l["K"]), str(g["SP2"]), str(g["FIXED4"]), str(g["FIXED8"]),
                  f"{l['act_in_bits']}/{l['act_out_bits']}", str(l["packed_bytes"]))
    err.print(t)
    tot = s["totals"]
    err.print(f"rows {tot['rows']}, achieved ratio {s['achieved_ratio']}, target {s['target_ratio']}, "
              f"{tot['average_weight_bits']:.3f} weight bits on average, {tot['packed_bytes']} packed bytes, "
              f"{tot['macs_per_image']} MACs per image, {100 * tot['sparsity']:.1f} % zero weights, compression "
              f"against float32 {tot['compression']:.2f}x (non-zero weights) / {tot['compression_dense']:.2f}x (dense)")


@app.command()
def golden(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory.")],
    data: Annotated[Optional[str], typer.Option(help="digits or cifar10 (default: the artifact model's dataset).")] = None,
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="tune, eval or all.")] = "eval",
    limit: Annotated[Optional[int], typer.Option(help="Score only the first N images of the split.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per golden-model batch.")] = 64,
    json_out: Json = False,
) -> None:
    """Run the bit-exact integer golden model on a dataset; report its accuracy beside float and fake-quant."""
    from .artifact import read_artifact
    from .data import load_dataset
    from .evaluate import evaluate
    from .models import MODELS

    art = read_artifact(artifact)
    data = data or MODELS.get(art.model.get("name", ""), None)
    if data is None:
        raise RowmixError("--data is required: the artifact's model is not built in")
    ds = load_dataset(data, split, data_dir, limit)
    if tuple(ds.images.shape[1:]) != art.input.shape:
        raise RowmixError(f"{data} images are {list(ds.images.shape[1:])}, the artifact expects {list(art.input.shape)}")
    e = evaluate(art, ds, data_dir, batch_size)
    if json_out:
        print(json.dumps({"artifact": str(artifact), **e.to_json()}))
        return
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    err.print(f"{e.images} {data}/{split} images: golden {pct(e.accuracy)}, float {pct(e.float_accuracy)}, "
              f"fake-quant {pct(e.fakequant_accuracy)}, golden = fake-quant on {pct(e.golden_vs_fakequant_agreement)}"
              f" ({e.golden_images_per_second:.0f} images/s)" + (f"; {e.note}" if e.note else ""))


class TargetChoice(str, Enum):
    generic = "generic"
    ice40 = "ice40"
    ecp5 = "ecp5"
    xc7 = "xc7"


@app.command()
def generate(
    artifact: Annotated[Optional[Path], typer.Argument(help="Artifact directory (omit with --config for a bare array).")] = None,
    out: Annotated[Path, typer.Option(help="Output directory (replaced atomically).")] = Path("runs/rtl"),
    target: Annotated[Optional[TargetChoice], typer.Option(help="generic (inferred *), ice40 (SB_MAC16), ecp5, xc7; "
                                                                 "default: the config's, else generic.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Array configuration JSON (default: sized from the artifact).")] = None,
    json_out: Json = False,
) -> None:
    """Generate the mixed-precision MAC array: Verilog, per-layer configuration streams, cycle and resource estimate."""
    import dataclasses

    from .artifact import read_artifact
    from .hardware.config import ArrayConfig
    from .hardware.generate import default_config, generate as gen

    if artifact is None and config is None:
        raise RowmixError("give an ARTIFACT, or --config ARRAY.json for a bare array")
    art = read_artifact(artifact) if artifact is not None else None
    if config is not None:
        cfg = ArrayConfig.load(config)
        if target is not None:
            cfg = dataclasses.replace(cfg, target=target.value)
    else:
        cfg = default_config(art, target.value if target else "generic")
    est = gen(art, cfg, out)
    if json_out:
        print(json.dumps({"out": str(out), **est}))
        return
    lanes = " ".join(f"{g}:{v['rows']}x{cfg.t_k} {v['kind']}" for g, v in cfg.to_json()["groups"].items())
    err.print(f"wrote [bold]{out}[/bold]: {cfg.target} array, {cfg.macs_per_cycle} MACs/cycle ({lanes})")
    if "per_image" in est:
        p = est["per_image"]
        err.print(f"per image: {p['cycles']} cycles, ideal {p['ideal_cycles']}, utilisation {100 * p['utilisation']:.1f} %, "
                  f"{est['resources']['dsp']} DSPs, {est['resources']['memory_bits']} memory bits")


class SimulatorChoice(str, Enum):
    icarus = "icarus"
    verilator = "verilator"


def _images(art, data: Optional[str], data_dir: Optional[Path], split: str, limit: Optional[int]):
    from .data import load_dataset
    from .models import MODELS

    data = data or MODELS.get(art.model.get("name", ""), None)
    if data is None:
        raise RowmixError("--data is required: the artifact's model is not built in")
    ds = load_dataset(data, split, data_dir, limit)
    if tuple(ds.images.shape[1:]) != art.input.shape:
        raise RowmixError(f"{data} images are {list(ds.images.shape[1:])}, the artifact expects {list(art.input.shape)}")
    return ds


def _simulate(artifact: Path, rtl: Path, ds, simulator: str, workers: int):
    from .sim import simulate

    err.print(f"simulating {len(ds)} images on {simulator} ({workers} processes)")
    return simulate(artifact, rtl, ds.images, ds.labels, simulator=simulator, workers=workers)


@app.command("simulate")
def simulate_cmd(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory.")],
    rtl: Annotated[Path, typer.Option(help="Directory written by `rowmix generate` for this artifact.")],
    simulator: Annotated[SimulatorChoice, typer.Option(help="icarus (default) or verilator.")] = SimulatorChoice.icarus,
    data: Annotated[Optional[str], typer.Option(help="digits or cifar10 (default: the artifact model's).")] = None,
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="tune, eval or all.")] = "eval",
    limit: Annotated[Optional[int], typer.Option(help="Simulate only the first N images.")] = None,
    workers: Annotated[int, typer.Option(help="Simulator processes in parallel.")] = 2,
    json_out: Json = False,
) -> None:
    """Run the generated Verilog under cocotb on real images; every MAC layer is checked bit for bit
    against the golden model. Exits with code 1 on the first mismatch (named by layer, row, image, pixel)."""
    from . import golden
    from .artifact import read_artifact

    art = read_artifact(artifact)
    ds = _images(art, data, data_dir, split, limit)
    r = _simulate(artifact, rtl, ds, simulator.value, workers)
    g = golden.run(art, ds.images)
    out = {"images": r.images, "mismatches": r.mismatches, "first_mismatch": r.first_mismatch,
           "rtl_accuracy": r.rtl_accuracy, "golden_accuracy": golden.accuracy(g, ds.labels),
           "golden_vs_rtl_agreement": int((g.predictions[: r.images] == r.rtl_predictions).sum()),
           "cycles": r.cycles, "model_cycles": r.model_cycles, "ideal_cycles": r.ideal_cycles,
           "utilisation": r.utilisation, "macs": r.macs, "sim_seconds": r.sim_seconds, "simulator": r.simulator,
           "layers": r.layers}
    if json_out:
        print(json.dumps(out))
    else:
        err.print(f"{r.images} images on {r.simulator}: {'bit-exact' if not r.mismatches else 'MISMATCH'}; RTL accuracy "
                  f"{100 * r.rtl_accuracy:.2f} %, golden {100 * out['golden_accuracy']:.2f} %; {r.cycles} cycles "
                  f"(model {r.model_cycles}, ideal {r.ideal_cycles}, utilisation {100 * r.utilisation:.1f} %); "
                  f"{r.sim_seconds:.1f} s")
    if r.mismatches:
        err.print(f"[bold red]mismatch:[/bold red] {r.first_mismatch}")
        raise typer.Exit(1)


@app.command()
def compare(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory.")],
    rtl: Annotated[Optional[Path], typer.Option(help="Generated RTL directory; without it the RTL column is empty.")] = None,
    simulator: Annotated[SimulatorChoice, typer.Option(help="icarus or verilator.")] = SimulatorChoice.icarus,
    data: Annotated[Optional[str], typer.Option(help="digits or cifar10 (default: the artifact model's).")] = None,
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="tune, eval or all.")] = "eval",
    limit: Annotated[Optional[int], typer.Option(help="Compare on the first N images only.")] = None,
    workers: Annotated[int, typer.Option(help="Simulator processes in parallel.")] = 2,
    json_out: Json = False,
) -> None:
    """Float, fake-quant, golden and RTL accuracy side by side on the same images, with agreement counts."""
    import numpy as np

    from .artifact import read_artifact
    from .evaluate import evaluate

    art = read_artifact(artifact)
    ds = _images(art, data, data_dir, split, limit)
    e = evaluate(art, ds, data_dir)
    r = _simulate(artifact, rtl, ds, simulator.value, workers) if rtl is not None else None
    g = np.array(e.golden_predictions)
    out = {
        "images": len(ds), "float_accuracy": e.float_accuracy, "fakequant_accuracy": e.fakequant_accuracy,
        "golden_accuracy": e.accuracy, "rtl_accuracy": None if r is None else r.rtl_accuracy,
        "mismatches": None if r is None else r.mismatches,
        "agreement": {
            "golden_vs_rtl": None if r is None else int((g == np.array(r.rtl_predictions)).sum()),
            "golden_vs_fakequant": None if e.fakequant_predictions is None else int((g == np.array(e.fakequant_predictions)).sum()),
        },
    }
    if json_out:
        print(json.dumps(out))
        return
    t = Table(title=f"{artifact}: {len(ds)} {ds.name}/{split} images")
    for col in ("float", "fake-quant", "golden", "RTL", "golden = RTL", "golden = fake-quant"):
        t.add_column(col, justify="right")
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    cnt = lambda v: "n/a" if v is None else f"{v}/{len(ds)}"  # noqa: E731
    t.add_row(pct(out["float_accuracy"]), pct(out["fakequant_accuracy"]), pct(out["golden_accuracy"]),
              pct(out["rtl_accuracy"]), cnt(out["agreement"]["golden_vs_rtl"]), cnt(out["agreement"]["golden_vs_fakequant"]))
    err.print(t)
    if r is not None and r.mismatches:
        err.print(f"[bold red]mismatch:[/bold red] {r.first_mismatch}")
        raise typer.Exit(1)


@app.command("build")
def build_cmd(
    artifact: Annotated[Optional[Path], typer.Argument(help="Artifact the bitstream must run (its layers are checked "
                                                            "against the array; omit with --config).")] = None,
    board: Annotated[str, typer.Option(help="icebreaker (iCE40UP5K), ulx3s-85f (ECP5): bitstream; pynq-z2 (XC7Z020): "
                                             "Vivado TCL + XDC and a Yosys resource estimate.")] = "icebreaker",
    out: Annotated[Path, typer.Option(help="Build directory (replaced atomically): bitstream, report.json, build.json.")] = Path("runs/build"),
    config: Annotated[Optional[Path], typer.Option(help="Array configuration JSON (default: the board's full array, "
                                                        "rowmix.boards.arrays).")] = None,
    design: Annotated[str, typer.Option(help="Without --config: mixed (SP2 LUT lanes + DSPs), or a fixed-point-only "
                                             "baseline: dsp-only, dsp+mul, dsp+booth.")] = "mixed",
    baud: Annotated[int, typer.Option(help="UART baud rate of the host link.")] = 115200,
    freq_mhz: Annotated[Optional[float], typer.Option(help="Core clock from the PLL (default: the board oscillator).")] = None,
    seed: Annotated[int, typer.Option(help="nextpnr placement seed.")] = 1,
    time_limit: Annotated[Optional[float], typer.Option(help="Minutes: stop the tools (an error, nothing written) if "
                                                              "the build is still running then.")] = None,
    json_out: Json = False,
) -> None:
    """Build a real bitstream with YoWASP Yosys + nextpnr (PyPI, no vendor tools): the array behind the
    UART host link on the board; writes build.json (LUT/FF/DSP/BRAM use, Fmax, MACs/cycle, peak MAC/s)."""
    from .artifact import read_artifact
    from .boards.build import BuildOptions, build_board
    from .boards.platforms import board_spec
    from .hardware.config import ArrayConfig
    from .hardware.generate import default_config
    from .hardware.protocol import plan_layer

    if board == "pynq-z2":
        spec = None
    else:
        spec = board_spec(board)
    from .boards.arrays import PLANS, board_array

    art = read_artifact(artifact) if artifact is not None else None
    target = "xc7" if spec is None else spec.target
    if config is not None:
        cfg = ArrayConfig.load(config)
    elif board in PLANS:
        cfg = board_array(board, design)
    elif art is not None:
        cfg = default_config(art, target)
    else:
        raise RowmixError(f"give an ARTIFACT or --config ARRAY.json (board {board} has no built-in array)")
    if cfg.target != target:
        import dataclasses

        cfg = dataclasses.replace(cfg, target=target)
    if art is not None:
        for op in art.mac_layers:
            plan_layer(op, art.tensors[op.input], cfg, art.requant)  # a clear error if a layer cannot run on it
    if spec is None:
        from .boards.vivado import write_pynq_project

        r = write_pynq_project(cfg, out, baud)
        if json_out:
            print(json.dumps(r))
            return
        res = " ".join(f"{k} {v['used']:g}/{v['available']}" for k, v in r["resources"].items())
        err.print(f"wrote [bold]{out / r['vivado_tcl']}[/bold] and {r['xdc']} for Vivado; ESTIMATE (Yosys "
                  f"synth_xilinx, before place and route): {res}; {r['macs_per_cycle']} MACs/cycle")
        return
    err.print(f"building {board} ({cfg.macs_per_cycle} MACs/cycle) with YoWASP Yosys + nextpnr ...")
    r = build_board(cfg, out, BuildOptions(board, baud, None if freq_mhz is None else freq_mhz * 1e6, seed, time_limit))
    if json_out:
        print(json.dumps(r))
    else:
        res = " ".join(f"{k} {v['used']}/{v['available']}" for k, v in r["resources"].items())
        err.print(f"wrote [bold]{out / r['bitstream']}[/bold]: {res}; Fmax {r['fmax_mhz']:.1f} MHz at a "
                  f"{r['clock_mhz']:.1f} MHz clock ({'met' if r['timing_met'] else 'NOT met'}), {r['macs_per_cycle']} "
                  f"MACs/cycle, peak {r['peak_macs_per_s'] / 1e6:.0f} MMAC/s ({r['seconds']:.0f} s)")
    if not r["timing_met"]:  # the files are written (for the report), but this bitstream is not safe to program
        raise RowmixError(f"{board}: timing NOT met: Fmax {r['fmax_mhz']:.1f} MHz < clock {r['clock_mhz']:.1f} MHz; "
                          f"do not program {out / r['bitstream']}: rebuild with --freq-mhz {int(r['fmax_mhz'])} or lower")


@app.command("run")
def run_cmd(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory.")],
    port: Annotated[str, typer.Option(help="Serial device of the board's UART, e.g. /dev/ttyUSB1.")],
    rtl: Annotated[Path, typer.Option(help="Directory with the array.json the board's bitstream was built from.")],
    baud: Annotated[int, typer.Option(help="UART baud rate of the bitstream.")] = 115200,
    data: Annotated[Optional[str], typer.Option(help="digits or cifar10 (default: the artifact model's dataset).")] = None,
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="tune, eval or all.")] = "eval",
    limit: Annotated[Optional[int], typer.Option(help="Run only the first N images.")] = 10,
    json_out: Json = False,
) -> None:
    """Run a network on a board through its UART host link; every layer's outputs are checked against
    the golden model (exit code 1 on a mismatch)."""
    from .artifact import read_artifact
    from .boards.host import BoardLink, run_network
    from .boards.serial_port import SerialTransport
    from .console import progress
    from .hardware.config import ArrayConfig

    art = read_artifact(artifact)
    cfg = ArrayConfig.load(rtl / "array.json")
    ds = _images(art, data, data_dir, split, limit)
    transport = SerialTransport(port, baud)
    try:
        with progress(f"{len(ds)} images on the board at {port}", len(ds)) as update:
            r = run_network(BoardLink(transport, cfg), art, ds.images, progress=update)
    finally:
        transport.close()
    import numpy as np

    acc = float(np.mean(np.array(r.predictions) == ds.labels[: len(r.predictions)])) if r.predictions else float("nan")
    result = {"images": len(r.predictions), "board_accuracy": acc, "mismatch": None if r.mismatch is None else str(r.mismatch),
              "layers": r.layers, "seconds": r.seconds}
    if json_out:
        print(json.dumps(result))
    else:
        err.print(f"{len(r.predictions)} images: board accuracy {100 * acc:.2f} %, "
                  + ("bit-exact against golden" if r.mismatch is None else f"MISMATCH: {r.mismatch}"))
    if r.mismatch is not None:
        raise typer.Exit(1)


@app.command()
def flow(
    out: Annotated[Path, typer.Option(help="Run directory (stages are cached in it).")] = Path("runs/flow"),
    model: Annotated[str, typer.Option(help="digits (default), resnet20 or resnet56.")] = "digits",
    data: Annotated[Optional[str], typer.Option(help="The model's dataset (digits or cifar10); checked against the model.")] = None,
    data_dir: DataDir = None,
    method: Annotated[str, typer.Option(help="Quantization method.")] = "mixed",
    ratio: Annotated[Optional[str], typer.Option(help="SP2:FIXED4:FIXED8 row shares (default: the board's, from the "
                                                      "shipped resource model).")] = None,
    board: Annotated[str, typer.Option(help="Board whose resource-model ratio is used.")] = "icebreaker",
    act_bits: Annotated[int, typer.Option(help="Activation bits inside the network.")] = 4,
    input_bits: InputBits = 8,
    pool_bits: PoolBits = 8,
    simulator: Annotated[SimulatorChoice, typer.Option(help="icarus or verilator.")] = SimulatorChoice.icarus,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate the first N eval images only (default: all).")] = None,
    sim_limit: Annotated[Optional[int], typer.Option(help="Simulate the first N of them on the RTL (default: all "
                                                          "for digits, 20 for the ResNets).")] = None,
    workers: Annotated[int, typer.Option(help="Simulator processes in parallel.")] = 2,
) -> None:
    """The main job, end to end: float model, row-wise mixed quantization at the board's ratio, artifact,
    golden model, Verilog, cocotb simulation of the eval images, comparison, DIR/report.html and DIR/summary.json."""
    from .flow import FlowOptions, run_flow
    from .models import MODELS

    if data is not None and MODELS.get(model) != data:
        raise RowmixError(f"model {model!r} runs on {MODELS.get(model)!r}, not {data!r}")
    s = run_flow(FlowOptions(out=out, model=model, data_dir=data_dir, method=method, ratio=ratio, board=board,
                             act_bits=act_bits, input_bits=input_bits, pool_bits=pool_bits, simulator=simulator.value, limit=limit, sim_limit=sim_limit,
                             workers=workers))
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    t = Table(title=f"rowmix flow: {model}, {method} {s['ratio']}, A{act_bits}, {s['images']} eval images "
                    f"({s['rtl_images']} through the RTL)")
    for col in ("float", "fake-quant", "golden", "RTL", "RTL vs golden", "cycles/image", "utilisation"):
        t.add_column(col, justify="right")
    a = s["accuracy"]
    t.add_row(pct(a["float"]), pct(a["fake-quant"]), pct(a["golden"]), pct(a["RTL"]),
              "bit-exact" if s["mismatches"] == 0 else "MISMATCH", str(s["cycles_per_image"]), pct(s["utilisation"]))
    err.print(t)
    print(f"report: {out / 'report.html'}  summary: {out / 'summary.json'}  ({s['seconds']:.0f} s)")
    if s["mismatches"]:
        raise typer.Exit(1)


@bench_app.command("golden")
def bench_golden(
    out: Annotated[Path, typer.Option(help="Directory for golden_bench.{json,md} and the plot.")] = Path("runs/bench/golden"),
    data_dir: DataDir = None,
    cifar: Annotated[bool, typer.Option(help="Include the ResNet-20 / CIFAR-10 accuracy rows.")] = True,
    images: Annotated[int, typer.Option(help="Images per speed measurement.")] = 1024,
    repeats: Annotated[int, typer.Option(help="Timed repeats per engine and batch size (best is kept).")] = 5,
) -> None:
    """Golden-model speed against float PyTorch (ratio, one run) and accuracies of fixed 8 / fixed 4 / sp2 / mixed."""
    from .bench.golden_bench import BenchOptions, run

    result = run(BenchOptions(out=out, data_dir=data_dir, cifar=cifar, speed_images=images, repeats=repeats))
    for s in result["speed"]:
        err.print(f"{s['network']}: golden {s['best_golden']:.0f} img/s, torch {s['best_torch']:.0f} img/s, "
                  f"ratio {s['ratio']:.2f}")
    print(f"results: {out / 'golden_bench.md'}")


@bench_app.command("sim")
def bench_sim(
    out: Annotated[Path, typer.Option(help="Directory for sim_bench.{json,md}.")] = Path("runs/bench/sim"),
    images: Annotated[int, typer.Option(help="Digits images per simulator.")] = 16,
) -> None:
    """RTL simulation speed: Icarus Verilog against Verilator on the same design and images (cycles/s, MACs/s)."""
    from .bench.sim_bench import run

    result = run(out, images)
    for r in result["runs"]:
        err.print(f"{r['simulator']}: {r['cycles_per_s']:.0f} cycles/s, {r['macs_per_s']:.0f} MACs/s "
                  f"(build {r['build_seconds']} s, run {r['run_seconds']} s)")
    print(f"results: {out / 'sim_bench.md'}")


@bench_app.command("hardware")
def bench_hardware(
    out: Annotated[Path, typer.Option(help="Directory for resource_model.json, hardware_bench.md and the plot.")] = Path("runs/bench/hardware"),
    workers: Annotated[int, typer.Option(help="Parallel Yosys runs.")] = 2,
) -> None:
    """Synthesize every lane kind with Yosys for iCE40, ECP5 and Xilinx 7, and write the resource model
    (lane costs, lanes per board, the SP2 : FIXED4 : FIXED8 row ratio that `quantize --ratio-from` reads)."""
    from .bench.hardware_bench import run
    from .console import progress
    from .hardware.resources import unit_specs

    with progress("synthesizing lane units", len(unit_specs())) as update:
        result = run(out, progress=lambda done, total, cost: update(done), workers=workers)
    for g in result.get("goals", []):
        err.print(f"{'pass' if g['pass'] else 'FAIL'}  {g['description']}: {g['measured']} (goal {g['limit']})")
    print(f"results: {out / 'hardware_bench.md'}")


@bench_app.command("boards")
def bench_boards(
    out: Annotated[Path, typer.Option(help="Directory: one build directory per board and design, boards.{json,md,png} "
                                           "(a rerun reuses finished builds).")] = Path("runs/bench/boards"),
    boards: Annotated[str, typer.Option(help="Comma-separated boards.")] = "icebreaker,ulx3s-85f",
    designs: Annotated[str, typer.Option(help="Comma-separated designs: mixed, dsp-only, dsp+mul, dsp+booth.")] =
        "mixed,dsp-only,dsp+mul,dsp+booth",
    seeds: Annotated[int, typer.Option(help="nextpnr placement seeds 1..N per design on iCE40 (best one reported).")] = 3,
    ecp5_seeds: Annotated[int, typer.Option(help="Seeds per design on ECP5 (10+ minutes per build).")] = 1,
    jobs: Annotated[int, typer.Option(help="Builds in parallel (one process and directory each).")] = 2,
    report_only: Annotated[bool, typer.Option("--report-only", help="Write the record from the builds already in "
                                                                    "OUT; build nothing.")] = False,
    time_limit: Annotated[Optional[float], typer.Option(help="Minutes: a build still running then is stopped (its "
                                                              "tools killed) and recorded as failed.")] = None,
) -> None:
    """Build each board's full mixed array and the fixed-point-only baselines (a) DSP-only, (b) DSPs + plain
    LUT multipliers, (c) DSPs + Booth LUT lanes; report MACs/cycle x Fmax and every ratio (slow: minutes
    per iCE40 build, 10+ per ECP5 build)."""
    from .bench.boards_bench import BoardsOptions, run

    opts = BoardsOptions(out=out, boards=tuple(b.strip() for b in boards.split(",") if b.strip()),
                         designs=tuple(d.strip() for d in designs.split(",") if d.strip()), seeds=seeds,
                         ecp5_seeds=ecp5_seeds, jobs=jobs, report_only=report_only,
                         time_limit_min=time_limit)
    doc = run(opts, progress=lambda msg: err.print(f"build {msg}"))
    for g in doc["goals"]:
        err.print(f"{'pass' if g['pass'] else 'FAIL'}  {g['goal']}: {g['measured']} (goal {g['limit']})")
    print(f"results: {out / 'boards.md'}")


@bench_app.command("accuracy")
def bench_accuracy(
    out: Annotated[Path, typer.Option(help="Directory for accuracy.{json,md,png}, artifacts, per-config results "
                                           "and QAT checkpoints (a rerun resumes from them).")] = Path("runs/bench/accuracy"),
    data_dir: DataDir = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs of the trained configurations.")] = 30,
    lr: Annotated[float, typer.Option(help="QAT learning rate.")] = 0.03,
    configs: Annotated[Optional[str], typer.Option(help="Comma-separated configuration keys (default: all; "
                                                        "see docs/benchmarks/accuracy.md).")] = None,
    eval_limit: Annotated[Optional[int], typer.Option(help="Score only the first N eval images.")] = None,
    train_limit: Annotated[Optional[int], typer.Option(help="Train on the first N tune images only.")] = None,
    rescore: Annotated[bool, typer.Option("--rescore", help="Re-evaluate cached artifacts (float, fake-quant, golden) "
                                                          "with the current evaluator, without retraining.")] = False,
) -> None:
    """Float / fake-quant / golden accuracy of QMSE, RMSMP, ILMPQ, MSQ (PTQ and QAT) on ResNet-20/56
    against Brevitas W8A8 / W4A4, with average bits, model size, row shares; table, JSON and plot."""
    from .bench.accuracy_bench import AccuracyOptions, run

    keys = tuple(k.strip() for k in configs.split(",") if k.strip()) if configs else ()
    doc = run(AccuracyOptions(out=out, data_dir=data_dir, epochs=epochs, lr=lr, configs=keys, eval_limit=eval_limit,
                              train_limit=train_limit, rescore=rescore))
    for r in doc["results"]:
        g = "n/a" if r["golden"] is None else f"{100 * r['golden']:.2f} %"
        err.print(f"{r['label']}: float {100 * r['float']:.2f} %, fake-quant {100 * r['fakequant']:.2f} %, golden {g}")
    for g in doc["goals"]:
        err.print(f"{'pass' if g['pass'] else 'FAIL'}  {g['goal']}: {g['measured']}")
    print(f"results: {out / 'accuracy.md'}")


@bench_app.command("methods")
def bench_methods(
    out: Annotated[Path, typer.Option(help="Directory for methods.{json,md,png}; shares the accuracy benchmark's "
                                           "per-configuration results, artifacts and checkpoints.")] = Path("runs/bench/accuracy"),
    data_dir: DataDir = None,
    configs: Annotated[Optional[str], typer.Option(help="Comma-separated configuration keys (default: every "
                                                        "method's row, see docs/benchmarks/methods.md).")] = None,
    rtl_images: Annotated[int, typer.Option(help="Eval images each artifact runs through the RTL.")] = 2,
    simulator: Annotated[SimulatorChoice, typer.Option(help="verilator (default here: ResNet-20 images) or icarus.")] = SimulatorChoice.verilator,
    eval_limit: Annotated[Optional[int], typer.Option(help="Score only the first N eval images.")] = None,
    train_limit: Annotated[Optional[int], typer.Option(help="Train on the first N tune images only.")] = None,
    rescore: Annotated[bool, typer.Option("--rescore", help="Re-evaluate cached artifacts (float, fake-quant, golden) "
                                                          "with the current evaluator, without retraining.")] = False,
) -> None:
    """Every front-end method side by side on ResNet-20 / CIFAR-10 (QMSE + USP, RMSMP, ILMPQ, MSQ,
    Bit-Split, DPQ, CSQ): float / fake-quant / golden accuracy, bits, sparsity, compression, an RTL
    run per artifact; table, JSON and a plot of accuracy against model size."""
    from .bench.methods_bench import KEYS, MethodsOptions, run

    keys = tuple(k.strip() for k in configs.split(",") if k.strip()) if configs else KEYS
    doc = run(MethodsOptions(out=out, data_dir=data_dir, keys=keys, rtl_images=rtl_images, simulator=simulator.value,
                             eval_limit=eval_limit, train_limit=train_limit, rescore=rescore))
    for r in doc["rows"]:
        err.print(f"{r['label']}: float {100 * r['float']:.2f} %, golden {100 * r['golden']:.2f} %, "
                  f"{r['average_weight_bits']:.2f} bits, {r['compression']:.2f}x, RTL "
                  + ("bit-exact" if not r["rtl_mismatches"] else "MISMATCH"))
    for g in doc["goals"]:
        err.print(f"{'pass' if g['pass'] else 'FAIL'}  {g['goal']}: {g['measured']}")
    print(f"results: {out / 'methods.md'}")
    if any(r["rtl_mismatches"] for r in doc["rows"]):
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors -> one line on stderr, exit code 2."""
    try:
        app(args=argv, prog_name="rowmix")
    except RowmixError as e:
        err.print(f"[bold red]rowmix: error:[/bold red] {e}", soft_wrap=True, markup=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
