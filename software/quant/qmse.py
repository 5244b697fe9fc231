"""QMSE + USP (Feng et al., 2022): MSE-optimal b-bit scales that weigh rounding and clipping noise
together, then the "update statistical parameters" step: batch-norm statistics re-estimated on
calibration data through the quantized network, no retraining (notes/algorithms.md 9).

Weights: per row, the clip c from a 1000-point grid over (0, max|w|] with the lowest empirical
error (rounding inside, truncation outside), refined by Lloyd iterations. Activations: per tensor,
every edge of a 2048-bin histogram of |x| is a candidate clip; the error is evaluated on the bin
centres. USP: BN layers in training mode with cumulative averaging (momentum None), statistics
reset, one pass of the calibration images through the fake-quant network, no gradients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..formats import ActFormat, RowFormat, Scheme, quantize_values
from .methods import Calib, Method
from .scales import mse_scales

WEIGHT_GRID = 1000
HIST_BINS = 2048


def qmse_weight_scales(w: np.ndarray, fmt: RowFormat) -> np.ndarray:
    w = np.asarray(w, np.float64)
    amax = np.abs(w).max(axis=1)
    safe = np.where(amax > 0, amax, 1.0)
    best_s, best_e = safe / fmt.qmax, np.full(len(w), np.inf)
    fractions = np.arange(1, WEIGHT_GRID + 1) / WEIGHT_GRID
    chunk = max(1, (1 << 22) // max(1, w.size))  # candidates evaluated at once, ~32 MB
    for i in range(0, WEIGHT_GRID, chunk):
        s = safe[:, None] * fractions[None, i : i + chunk] / fmt.qmax  # [R, C]
        q = quantize_values(w[:, None, :], s[:, :, None], fmt)
        e = ((w[:, None, :] - s[:, :, None] * q) ** 2).sum(axis=2)
        j = e.argmin(axis=1)
        e_min = e[np.arange(len(w)), j]
        better = e_min < best_e
        best_s = np.where(better, s[np.arange(len(w)), j], best_s)
        best_e = np.where(better, e_min, best_e)
    # Lloyd refinement from the grid optimum (never worse: mse_scales keeps a row's best)
    refined = mse_scales(w, lambda x, s: quantize_values(x, s, fmt), fmt.qmax)
    e_ref = ((w - refined[:, None] * quantize_values(w, refined[:, None], fmt)) ** 2).sum(axis=1)
    return np.where(amax > 0, np.where(e_ref < best_e, refined, best_s), 1.0).astype(np.float32)


def histogram_scale(samples: np.ndarray, bits: int, signed: bool) -> float:
    fmt = ActFormat(bits, signed, 1.0)
    x = np.abs(np.asarray(samples, np.float64)) if signed else np.maximum(np.asarray(samples, np.float64), 0)
    top = float(x.max()) if x.size else 0.0
    if top <= 0:
        return 1.0
    counts, edges = np.histogram(x, bins=HIST_BINS, range=(0.0, top))
    centres = (edges[:-1] + edges[1:]) / 2
    clips = edges[1:]
    steps = clips / fmt.hi
    q = np.clip(np.floor(centres[None, :] / steps[:, None] + 0.5), 0, fmt.hi)
    err = np.where(centres[None, :] <= clips[:, None], (centres[None, :] - q * steps[:, None]) ** 2,
                   (centres[None, :] - clips[:, None]) ** 2)
    best = int(np.argmin(err @ counts))
    return float(np.float32(steps[best]))


@dataclass(frozen=True)
class QMSE(Method):
    bits: int = 8
    name: str = "qmse"
    usp: bool = True
    batch: int = 64

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits, "usp": self.usp, "weight_grid": WEIGHT_GRID, "histogram_bins": HIST_BINS}

    def activation_scale(self, samples: np.ndarray, bits: int, signed: bool) -> float:
        return histogram_scale(samples, bits, signed)

    def assign_rows(self, layer: str, w: np.ndarray) -> list[RowFormat]:
        return [RowFormat(Scheme.FIXED, self.bits)] * len(w)

    def weight_scales(self, w: np.ndarray, fmt: RowFormat) -> np.ndarray:
        return qmse_weight_scales(w, fmt)

    def post(self, qnet, calib: Calib | None) -> None:
        """USP, kept only when it lowers the calibration loss: the method targets networks whose
        statistics quantization shifts; for a network it barely shifts (ResNet-20 at 8 bits) the
        re-estimated statistics are worse than the pretrained ones (91.5 -> 88.7 % measured)."""
        if not (self.usp and calib is not None):
            return
        if calib.labels is None:
            update_bn_statistics(qnet, calib.images, self.batch)
            qnet.notes["usp"] = "applied"
            return
        before = calibration_loss(qnet, calib)
        saved = {k: v.clone() for k, v in qnet.state_dict().items() if "running_" in k or "num_batches" in k}
        update_bn_statistics(qnet, calib.images, self.batch)
        after = calibration_loss(qnet, calib)
        if after <= before:
            qnet.notes["usp"] = f"applied (calibration loss {before:.4f} -> {after:.4f})"
        else:
            qnet.load_state_dict(saved, strict=False)
            qnet.notes["usp"] = f"rejected (calibration loss {before:.4f} -> {after:.4f})"


@torch.no_grad()
def calibration_loss(qnet, calib: Calib, batch: int = 256) -> float:
    import torch.nn.functional as F

    qnet.eval()
    total = 0.0
    for i in range(0, len(calib.images), batch):
        logits = qnet(torch.from_numpy(calib.images[i : i + batch]))
        total += float(F.cross_entropy(logits, torch.from_numpy(calib.labels[i : i + batch]), reduction="sum"))
    return total / len(calib.images)


@torch.no_grad()
def update_bn_statistics(qnet, images: np.ndarray, batch: int = 64) -> None:
    """USP: re-estimate every BN layer's running mean and variance through the quantized network."""
    bns = [m.bn for m in qnet.macs.values() if m.bn is not None]
    was_training = qnet.training
    saved = [(bn.momentum, bn.training) for bn in bns]
    qnet.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
        bn.train()
    try:
        for i in range(0, len(images), batch):
            qnet(torch.from_numpy(images[i : i + batch]))
    finally:
        for bn, (momentum, training) in zip(bns, saved):
            bn.momentum = momentum
            bn.train(training)
        qnet.train(was_training)
