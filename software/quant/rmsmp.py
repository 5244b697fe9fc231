"""RMSMP: row-wise mixed schemes and multiple precisions (Chang et al., ICCV 2021), with ILMPQ
(FIXED-4 / FIXED-8 rows only) and MSQ (SP2-4 / FIXED-4 rows only) as presets.

Assignment, the same ratio in every layer: the rows with the largest Hessian sensitivity score
(per-row Hutchinson trace times the 4-bit quantization error, notes/algorithms.md 5.3 and 7b)
become FIXED-8; of the rest, the rows that lose least from SP2's non-uniform levels (smallest
distortion gap MSE_SP2 - MSE_FIXED4 at each scheme's MSE-optimal scale: the shape criterion of
notes 3.3; `split="variance"` is the paper-literal lowest-variance rule) become SP2-4, the others
FIXED-4. During QAT the rows are reassigned every `reassign_every` epochs and frozen for the last
20 % of the epochs; a row that changes format gets a fresh MSE-optimal scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats import FIXED4, SP2_4, quantize_values
from .methods import Calib, Method, Ratio, split_rows
from .scales import weight_scales

RANKINGS = ("hessian", "random", "variance")
SPLITS = ("shape", "variance")


def distortion_gap(w: np.ndarray) -> np.ndarray:
    """MSE*_SP2(w_r) - MSE*_FIXED4(w_r) per row, each at its MSE-optimal scale."""
    gaps = []
    for fmt in (SP2_4, FIXED4):
        s = weight_scales(w, fmt)[:, None]
        gaps.append(((w - s * quantize_values(w, s, fmt)) ** 2).mean(axis=1))
    return gaps[0] - gaps[1]


@dataclass(frozen=True)
class RMSMP(Method):
    ratio: Ratio = Ratio(65, 30, 5)
    name: str = "rmsmp"
    ranking: str = "hessian"
    split: str = "shape"
    samples: int = 32  # Hutchinson samples per calibration batch
    batches: int = 2
    batch: int = 128
    seed: int = 0
    reassign_every: int = 0  # epochs between reassignments during QAT (0: assign once)
    freeze_frac: float = 0.8

    def __post_init__(self) -> None:
        from ..errors import RowmixError

        if self.ranking not in RANKINGS or self.split not in SPLITS:
            raise RowmixError(f"{self.name}: ranking must be one of {RANKINGS}, split one of {SPLITS}")

    def params(self) -> dict[str, Any]:
        return {"ratio": str(self.ratio), "ranking": self.ranking, "split": self.split,
                "hutchinson_samples": self.samples, "calibration_batches": self.batches, "seed": self.seed,
                "reassign_every": self.reassign_every}

    def _f8_scores(self, qnet, calib: Calib | None) -> dict[str, np.ndarray]:
        names = [n.name for n in qnet.nodes if n.kind in ("conv", "linear")]
        weights = {n: qnet.mac(n).weight.detach().reshape(qnet.mac(n).rows, -1).numpy() for n in names}
        if self.ranking == "variance":
            return {n: w.var(axis=1) for n, w in weights.items()}
        if self.ranking == "random":
            rng = np.random.default_rng(self.seed)
            return {n: rng.random(len(w)) for n, w in weights.items()}
        from ..errors import RowmixError
        from .sensitivity import hutchinson_row_traces, rmsmp_scores

        if calib is None or calib.labels is None:
            raise RowmixError(f"{self.name}: Hessian ranking needs labelled calibration data")
        traces = hutchinson_row_traces(qnet, calib.images, calib.labels, samples=self.samples,
                                       batch=self.batch, batches=self.batches, seed=self.seed)
        return rmsmp_scores(qnet, traces)

    def assign(self, qnet, calib: Calib | None) -> None:
        import torch

        for name, score in self._f8_scores(qnet, calib).items():
            mac = qnet.mac(name)
            w = mac.weight.detach().reshape(mac.rows, -1).numpy()
            sp2 = distortion_gap(w) if self.split == "shape" else w.var(axis=1)
            mac.set_formats(split_rows(self.ratio, score, sp2))
            mac.sensitivity.copy_(torch.as_tensor(score, dtype=torch.float32))

    def on_epoch(self, epoch: int, epochs: int, qnet, calib: Calib | None) -> None:
        if not self.reassign_every or epoch == 0 or epoch % self.reassign_every or epoch >= self.freeze_frac * epochs:
            return
        before = {n.name: list(qnet.mac(n.name).formats) for n in qnet.nodes if n.kind in ("conv", "linear")}
        self.assign(qnet, calib)
        changed = {n: [r for r, (a, b) in enumerate(zip(f, qnet.mac(n).formats)) if a != b] for n, f in before.items()}
        self.init_scales(qnet, changed)
