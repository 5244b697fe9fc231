"""DPQ-like: dynamic pseudo-mean mixed precision for pruned networks (Pei et al., Machine Learning
113, 2024; notes/algorithms.md 8). Only the abstract is available, so everything below the level of
"prune, pick a bit width per layer from the weight distribution, two-term scales, partial activation
quantization" is an interpretation [I] (docs/methods/dpq.md lists them).

Per MAC layer l, with a magnitude-pruning mask M_l fixed in `assign`:
  mu_l = mean |w| over surviving weights ("pseudo-mean"), r_l = max |w| / mu_l over the same weights,
  b_l  = clip(ceil(log2 r_l) + b0, b_min, b_max)   (every row of the layer is FIXED-b_l),
recomputed at the start of every QAT epoch and once more after training ("dynamic"); each row's
scale is its MSE-optimal scale snapped to 2^e1 + 2^e2 (the "two-bit scaling factor"). Pruned
weights get a zero gradient (so SGD with momentum never moves them) and are re-zeroed after
training; they are code 0 in the dense artifact. Random-parameter clipping (RPC): while training,
each hidden activation element is quantized with probability p_t, p_t ramping linearly from p0 to 1
over the first `rpc_ramp` share of the epochs; evaluation always quantizes every element."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..artifact.summary import compression
from ..errors import RowmixError
from ..formats import RowFormat, Scheme, quantize_values
from .methods import Calib, Method
from .qnet import key
from .scales import weight_scales

SNAP_DEPTH = 12  # e1 - e2 <= 12: finer second terms change the scale by < 0.025 %


def pseudo_mean_bits(w: np.ndarray, mask: np.ndarray, b0: int, b_min: int, b_max: int) -> int:
    """b = clip(ceil(log2(max|w| / mean|w|)) + b0, b_min, b_max) over the surviving weights: a
    heavy-tailed layer (large max / mean) needs more levels to keep its small weights off zero."""
    kept = np.abs(np.asarray(w, np.float64)[np.asarray(mask, bool)])
    mu = kept.mean() if kept.size else 0.0
    if mu <= 0:
        return b_min
    ratio = max(1.0, kept.max() / mu)
    return int(np.clip(math.ceil(math.log2(ratio)) + b0, b_min, b_max))


def two_power_candidates(s: np.ndarray) -> np.ndarray:
    """Per row, every 2^e1 + 2^e2 (e1 - SNAP_DEPTH <= e2 <= e1) in [2^(f-1), 2^(f+2)], f =
    floor(log2 s): the scales around s whose multiplier is a two-term shift-add. [R, C] float64."""
    f = np.floor(np.log2(s))[:, None]
    cands = [np.exp2(f + d) + np.exp2(f + d - k) for d in (-1, 0, 1) for k in range(SNAP_DEPTH + 1)]
    return np.concatenate(cands, axis=1)


def snapped_scales(w: np.ndarray, fmt: RowFormat) -> np.ndarray:
    """The MSE-optimal row scales of `w` [R, K] snapped to the two-term candidate with the lowest
    quantization MSE (the error the scale exists to minimise, not the distance to the optimum)."""
    w = np.asarray(w, np.float64)
    s = weight_scales(w, fmt).astype(np.float64)
    cands = two_power_candidates(s)
    q = quantize_values(w[:, None, :], cands[:, :, None], fmt)
    err = ((w[:, None, :] - cands[:, :, None] * q) ** 2).sum(axis=2)
    best = cands[np.arange(len(w)), err.argmin(axis=1)]
    best = np.where(np.abs(w).max(axis=1) > 0, best, 1.0)  # all-zero rows keep scale 1 (= 2^-1 + 2^-1)
    return best.astype(np.float32)


def is_two_power_sum(x: np.ndarray) -> np.ndarray:
    """True where a positive float32 is exactly 2^e1 + 2^e2 (its 24-bit significand has <= 2 set bits)."""
    x = np.asarray(x, np.float32)
    frac, _ = np.frexp(x.astype(np.float64))
    mant = (frac * (1 << 24)).astype(np.int64)  # exact: a float32 significand has 24 bits
    ones = np.vectorize(lambda m: bin(int(m)).count("1"))(mant) if mant.size else mant
    return (x > 0) & (ones <= 2)


@dataclass(frozen=True)
class DPQ(Method):
    """DPQ-like method (interpretations [I], docs/methods/dpq.md): per-layer magnitude pruning
    [I: unstructured, the same share in every pruned layer, one shot before QAT; first conv and last
    linear kept dense unless `prune_first_last`], pseudo-mean bit rule [I: mean and max of the
    surviving |w| per layer], per-row [I] MSE-optimal scales snapped to 2^e1 + 2^e2 [I: "two-bit
    scaling factor"], RPC as a random per-element share of quantized activations [I], compression
    counted as 32 N / sum(b nnz) [I]."""

    sparsity: float = 0.55
    b0: int = 2
    b_min: int = 2
    b_max: int = 8
    rpc_p0: float = 0.5
    rpc_ramp: float = 0.5  # share of the epochs over which p_t reaches 1
    prune_first_last: bool = False
    seed: int = 0  # tie-breaking among equal magnitudes
    name: str = "dpq"
    # per-run state (masks, achieved numbers): not part of the method's identity
    state: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise RowmixError(f"dpq: sparsity must be in [0, 1), got {self.sparsity}")
        if not 2 <= self.b_min <= self.b_max <= 8:
            raise RowmixError(f"dpq: need 2 <= b_min <= b_max <= 8, got {self.b_min}..{self.b_max}")
        if not 0 < self.rpc_p0 <= 1 or not 0 <= self.rpc_ramp <= 1:
            raise RowmixError(f"dpq: rpc_p0 must be in (0, 1] and rpc_ramp in [0, 1], got {self.rpc_p0}, "
                              f"{self.rpc_ramp}")

    def params(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "b0": self.b0, "b_min": self.b_min, "b_max": self.b_max,
                "rpc_p0": self.rpc_p0, "rpc_ramp": self.rpc_ramp, "prune_first_last": self.prune_first_last,
                "seed": self.seed, "pruning": "magnitude, per layer, one shot", "scales": "per row, 2^e1 + 2^e2",
                **self.state.get("achieved", {})}

    # -- pruning and bits ----------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Layer name -> {0, 1} float mask shaped like the weight (1 = kept)."""
        return self.state.setdefault("masks", {})

    def _mac_names(self, qnet) -> list[str]:
        return [n.name for n in qnet.nodes if n.kind in ("conv", "linear")]

    def magnitude_mask(self, w: torch.Tensor) -> torch.Tensor:
        """Exactly round(sparsity * n) smallest-|w| weights pruned; equal magnitudes are ordered by a
        seeded random permutation, so the achieved share is the setting to one weight."""
        flat = w.detach().abs().reshape(-1)
        n_prune = int(round(self.sparsity * flat.numel()))
        gen = torch.Generator().manual_seed(self.seed)
        perm = torch.randperm(flat.numel(), generator=gen)
        order = perm[torch.argsort(flat[perm], stable=True)]
        mask = torch.ones_like(flat)
        mask[order[:n_prune]] = 0.0
        return mask.reshape(w.shape)

    def layer_bits(self, qnet, name: str) -> int:
        mac = qnet.mac(name)
        return pseudo_mean_bits(mac.weight.detach().numpy(), self.masks[name].numpy() > 0, self.b0, self.b_min,
                                self.b_max)

    def _set_bits(self, qnet) -> list[str]:
        """Every layer to FIXED-b_l by the pseudo-mean rule; returns the layers whose bits changed."""
        changed = []
        for name in self._mac_names(qnet):
            mac = qnet.mac(name)
            fmt = RowFormat(Scheme.FIXED, self.layer_bits(qnet, name))
            if mac.formats != [fmt] * mac.rows:
                changed.append(name)
                mac.set_formats([fmt] * mac.rows)
        return changed

    def assign(self, qnet, calib: Calib | None) -> None:
        """Prune (zero the weights, mask their gradients), then the first bit widths."""
        names = self._mac_names(qnet)
        self.masks.clear()
        self.state["pruned"] = names if self.prune_first_last else names[1:-1]
        for name in names:
            mac = qnet.mac(name)
            mask = self.magnitude_mask(mac.weight) if name in self.state["pruned"] else torch.ones_like(mac.weight)
            self.masks[name] = mask
            with torch.no_grad():
                mac.weight.mul_(mask)
            mac.weight.register_hook(lambda g, m=mask: g * m)
        self._set_bits(qnet)

    # -- scales --------------------------------------------------------------------------------
    def weight_scales(self, w: np.ndarray, fmt: RowFormat) -> np.ndarray:
        """Two-term power-of-two scales; the default `init_scales` (also the QAT loop's per-epoch
        refit) calls this, so every refit stays a sum of two powers of two."""
        return snapped_scales(w, fmt)

    # -- training hooks ------------------------------------------------------------------------
    def rpc_share(self, epoch: int, epochs: int) -> float:
        """p_t = min(1, p0 + (1 - p0) t / (rpc_ramp T)): partial activation quantization early, all
        of it by the end of the ramp so the last epochs train the deployed network."""
        ramp = self.rpc_ramp * epochs
        if ramp <= 0:
            return 1.0
        return float(min(1.0, self.rpc_p0 + (1 - self.rpc_p0) * epoch / ramp))

    def hidden_acts(self, qnet) -> list:
        """Activation quantizers RPC applies to: all but the network input and the logits."""
        fixed = {"input", key(qnet.output)}
        return [a for k, a in qnet.acts.items() if k not in fixed]

    def on_epoch(self, epoch: int, epochs: int, qnet, calib: Calib | None) -> None:
        """Dynamic bits from the current weights (fresh scales where they changed) and the RPC share."""
        changed = self._set_bits(qnet)
        if changed:
            self.init_scales(qnet, {n: list(range(qnet.mac(n).rows)) for n in changed})
        share = self.rpc_share(epoch, epochs)
        for a in self.hidden_acts(qnet):
            a.train_share = share

    def post(self, qnet, calib: Calib | None) -> None:
        """Re-zero pruned weights (defensive), final bits and two-term scales from the trained weights,
        full activation quantization, and the achieved sparsity and compression for `params`."""
        with torch.no_grad():
            for name, mask in self.masks.items():
                qnet.mac(name).weight.mul_(mask)
        self._set_bits(qnet)
        self.init_scales(qnet)
        for a in self.hidden_acts(qnet):
            a.train_share = 1.0
        self.state["achieved"] = self.achieved(qnet)

    def achieved(self, qnet) -> dict[str, Any]:
        """Sparsity of the masks (overall and over the pruned layers) and `compression` of the
        network as it will be exported, recorded with the method's parameters."""

        def zero_share(masks: list[torch.Tensor]) -> float:
            return 1 - sum(int(m.sum()) for m in masks) / max(1, sum(m.numel() for m in masks))

        names = self._mac_names(qnet)
        comp = compression((qnet.mac(n).weight_values().numpy(), [f.bits for f in qnet.mac(n).formats])
                           for n in names)
        return {"achieved_sparsity": zero_share(list(self.masks.values())),
                "achieved_sparsity_pruned_layers": zero_share([self.masks[n] for n in self.state["pruned"]]),
                "layer_bits": {n: qnet.mac(n).formats[0].bits for n in names},
                "compression": round(comp["ratio"], 3), "compression_with_bitmap": round(comp["ratio_with_bitmap"], 3),
                "avg_bits": round(comp["avg_bits"], 3)}
