"""Accuracy of one artifact on a dataset: golden model, and where the float model is available, the
float network and the torch fake-quant network started from the artifact's codes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import golden
from .artifact import Artifact
from .console import err, progress
from .data import Dataset
from .formats import normalize
from .models import MODELS, build_model, weights_sha256
from .quant import fakequant_from_artifact


@dataclass(frozen=True)
class Evaluation:
    dataset: str
    split: str
    images: int
    accuracy: float  # golden (integer) model
    float_accuracy: float | None
    fakequant_accuracy: float | None
    golden_vs_fakequant_agreement: float | None  # share of images with equal predictions
    golden_seconds: float
    golden_images_per_second: float
    note: str | None = None
    golden_predictions: list[int] | None = None
    fakequant_predictions: list[int] | None = None

    def to_json(self, predictions: bool = False) -> dict:
        d = asdict(self)
        if not predictions:
            d.pop("golden_predictions")
            d.pop("fakequant_predictions")
        return d


@torch.no_grad()
def torch_predictions(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, batch: int = 256) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    return torch.cat([fn(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)]).numpy()


def float_predictions(model: torch.nn.Module, images: np.ndarray, mean, std) -> np.ndarray:
    """The float model's predictions on raw images (it expects them normalised)."""
    c = len(mean)
    m = torch.tensor(mean, dtype=torch.float32).reshape(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).reshape(c, 1, 1)
    return torch_predictions(lambda x: model(normalize(x, m, s)), images)


def float_model_for(art: Artifact, data_dir: str | Path | None):
    """The float model the artifact was quantized from, or (None, reason) if it cannot be rebuilt."""
    name = art.model.get("name")
    if name not in MODELS:
        return None, f"model '{name}' is not built in; float and fake-quant accuracy need it"
    model, info = build_model(name, data_dir)
    want = art.model.get("weights_sha256")
    if want and want != info.weights_sha256:
        return None, f"the float weights of '{name}' on this machine differ from the artifact's (sha256)"
    return model, None


def evaluate(art: Artifact, ds: Dataset, data_dir: str | Path | None = None, batch_size: int = 64) -> Evaluation:
    with progress(f"golden {ds.name}/{ds.split}", len(ds)) as update:
        t = time.perf_counter()
        g = golden.run(art, ds.images, batch_size=batch_size, progress=update)
        seconds = time.perf_counter() - t
    acc = golden.accuracy(g, ds.labels)
    model, note = float_model_for(art, data_dir)
    f_acc = fq_acc = agree = None
    if model is not None:
        err.print(f"[dim]float and fake-quant on {len(ds)} images[/dim]")
        p_float = float_predictions(model, ds.images, art.input.mean, art.input.std)
        p_fq = torch_predictions(fakequant_from_artifact(model, art), ds.images)
        f_acc = float((p_float == ds.labels).mean())
        fq_acc = float((p_fq == ds.labels).mean())
        agree = float((p_fq == g.predictions).mean())
    return Evaluation(ds.name, ds.split, len(ds), acc, f_acc, fq_acc, agree, seconds,
                      len(ds) / seconds if seconds > 0 else float("inf"), note,
                      g.predictions.tolist(), None if model is None else p_fq.tolist())


__all__ = ["Evaluation", "evaluate", "float_model_for", "float_predictions", "torch_predictions", "weights_sha256"]
