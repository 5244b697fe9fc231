"""`rowmix bench golden`: golden-model speed against float torch, and accuracy (float, fake-quant,
golden) of the first front end's methods on digits and on ResNet-20 / CIFAR-10 (eval half)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..artifact import replace_dir
from ..console import err
from ..data import load_dataset
from ..errors import RowmixError
from ..evaluate import evaluate
from ..models import CifarResNet, ModelInfo, build_model, weights_sha256
from ..quant import make_method, quantize
from .golden_speed import measure

# (method, bits, act_bits): the configurations of the foundation benchmark table.
CONFIGS = (("fixed", 8, 8), ("fixed", 4, 4), ("sp2", 4, 4), ("mixed", 4, 4))
RATIO = "65:30:5"


@dataclass(frozen=True)
class BenchOptions:
    out: Path
    data_dir: Path | None = None
    cifar: bool = True
    cifar_calib: int = 1000
    speed_images: int = 1024
    batch_sizes: tuple[int, ...] = (64, 256)
    repeats: int = 5


def _label(method: str, bits: int, act_bits: int) -> str:
    if method == "mixed":
        return f"mixed {RATIO} W4/8A{act_bits}"
    if method == "sp2":
        return f"sp2 W4A{act_bits}"
    return f"fixed W{bits}A{act_bits}"


def accuracy_rows(model_name: str, data: str, opts: BenchOptions, calib_limit: int | None) -> list[dict]:
    model, info = build_model(model_name, opts.data_dir)
    tune = load_dataset(data, "tune", opts.data_dir, calib_limit)
    ev = load_dataset(data, "eval", opts.data_dir)
    rows = []
    for method, bits, act_bits in CONFIGS:
        err.print(f"[bold]{model_name}[/bold]: {_label(method, bits, act_bits)}")
        q = quantize(model, info, make_method(method, bits, RATIO), tune.images, tune.mean, tune.std, act_bits=act_bits)
        e = evaluate(q.artifact, ev, opts.data_dir)
        rows.append({"network": model_name, "config": _label(method, bits, act_bits), "method": method,
                     "bits": bits, "act_bits": act_bits, **e.to_json()})
    return rows


def random_resnet20(seed: int = 0) -> tuple[torch.nn.Module, ModelInfo]:
    """A CIFAR-style ResNet-20 with random weights (the speed benchmark needs no data)."""
    torch.manual_seed(seed)
    model = CifarResNet(3).eval()
    return model, ModelInfo("resnet20-random", "random", weights_sha256(model))


def speed_rows(opts: BenchOptions) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    digits, info = build_model("digits")
    ds = load_dataset("digits", "all")
    n = 4 * opts.speed_images  # digits images are 16x smaller than CIFAR's
    images = np.concatenate([ds.images] * -(-n // len(ds)))[:n]
    q = quantize(digits, info, make_method("mixed", 4, RATIO), ds.images[:512], ds.mean, ds.std, act_bits=4)
    rows.append(measure("digits CNN (mixed W4A4)", digits, q.artifact, images, opts.batch_sizes, opts.repeats))
    r20, info = random_resnet20()
    cifar = rng.random((opts.speed_images, 3, 32, 32), dtype=np.float32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    q = quantize(r20, info, make_method("mixed", 4, RATIO), cifar[:128], mean, std, act_bits=4)
    rows.append(measure("ResNet-20 shape, random weights (mixed W4A4)", r20, q.artifact, cifar, opts.batch_sizes,
                        opts.repeats))
    return [r.to_json() for r in rows]


def _markdown(speed: list[dict], acc: list[dict], notes: list[str]) -> str:
    lines = ["# Golden model benchmark", "", "## Speed: integer golden vs float PyTorch (same images, one run)", "",
             "Images per second, best of the timed repeats per batch size; the ratio compares each",
             "engine at its own best batch size.", "",
             "| network | images | batch | torch img/s | golden img/s | golden / torch |", "|---|---|---|---|---|---|"]
    for s in speed:
        for bs in s["batch_sizes"]:
            t, g = s["torch_images_per_s"][bs], s["golden_images_per_s"][bs]
            lines.append(f"| {s['network']} | {s['images']} | {bs} | {t:.0f} | {g:.0f} | {g / t:.2f} |")
        lines.append(f"| {s['network']} | {s['images']} | best | {s['best_torch']:.0f} | {s['best_golden']:.0f} | "
                     f"**{s['ratio']:.2f}** |")
    lines += ["", f"Goal: golden / torch >= 0.5 on both networks. torch uses {speed[0]['torch_threads']} threads "
              "(MKL-DNN), the golden model one BLAS thread per batch on a thread per core.", "",
              "## Accuracy (eval half; float measured in the same run)", "",
              "| network | config | images | float | fake-quant | golden | golden = fake-quant predictions |",
              "|---|---|---|---|---|---|---|"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    for a in acc:
        lines.append(f"| {a['network']} | {a['config']} | {a['images']} | {pct(a['float_accuracy'])} | "
                     f"{pct(a['fakequant_accuracy'])} | {pct(a['accuracy'])} | {pct(a['golden_vs_fakequant_agreement'])} |")
    lines += ["", "Post-training quantization only (no fine-tuning): MSE-optimal per-row scales, activation",
              "scales from calibration (digits: the tune half; CIFAR-10: the first 1000 tune images).", ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _plot(acc: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = sorted({a["network"] for a in acc})
    fig, axes = plt.subplots(1, len(nets), figsize=(6 * len(nets), 4), squeeze=False)
    for ax, net in zip(axes[0], nets):
        rows = [a for a in acc if a["network"] == net]
        x = np.arange(len(rows))
        for i, (key, label) in enumerate((("float_accuracy", "float"), ("fakequant_accuracy", "fake-quant"), ("accuracy", "golden"))):
            ax.bar(x + (i - 1) * 0.27, [100 * (r[key] or 0) for r in rows], 0.27, label=label)
        ax.set_xticks(x, [r["config"] for r in rows], rotation=20, ha="right", fontsize=8)
        lo = min(100 * r["accuracy"] for r in rows)
        ax.set_ylim(max(0, lo - 8), 100)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(net)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(opts: BenchOptions) -> dict:
    notes = []
    speed = speed_rows(opts)
    acc = accuracy_rows("digits", "digits", opts, None)
    if opts.cifar:
        try:
            acc += accuracy_rows("resnet20", "cifar10", opts, opts.cifar_calib)
        except RowmixError as e:
            notes.append(f"ResNet-20 rows skipped: {e}")
    else:
        notes.append("ResNet-20 rows skipped (--no-cifar)")
    result = {"speed": speed, "accuracy": acc, "notes": notes}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = opts.out.with_name(f".{opts.out.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "golden_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    (tmp / "golden_bench.md").write_text(_markdown(speed, acc, notes))
    _plot(acc, tmp / "golden_accuracy.png")
    replace_dir(tmp, opts.out.resolve())
    return result
