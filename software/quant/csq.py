"""CSQ: bit-level continuous sparsification for mixed precision (Xiao et al., DAC 2023, arXiv 2212.02770;
parameterization after lawsonX/BSQ-CS, notes/algorithms.md section 10).

Every MAC layer's weight is a sum of n signed bit planes,

    W = s_r * sum_b 2^b / (2^n - 1) * g_b * (sigmoid(beta P_b) - sigmoid(beta N_b)),

with positive / negative bit latents P, N, one bit-selection gate per plane and layer (per row with
`per_row=True`), and a temperature beta annealed until the sigmoids are steps. A budget-aware
regulariser on the gates, whose sign follows the gap between the current and the target model size,
prunes planes while the model is too large and lets pruned planes grow back while it is too small.
At the end the gates and bits are binarised; what remains is an exact integer model written back as
FIXED-b rows (b = span of the kept planes + 1 sign bit), so the exporter's encoder returns exactly
the trained bit planes' integers.

Interpretations of what the paper leaves open ([I] in notes/algorithms.md; docs/methods/csq.md):
  I1 bits count the sign: an exported row uses b = (highest - lowest kept non-zero plane + 1) + 1
     bits; a gated-off plane inside the kept span still costs its bit (FIXED-b cannot skip one).
  I2 the budget is the weight-count-weighted average of those bits over all MAC layers (model
     size), and the regulariser weights each gate by its layer's (row's) weight count.
  I3 start (deviation from the code, `init="rounded"`): the latents are +-`latent_init` at the
     digits of a signed-digit expansion, d_b = q_b - 2 q_(b+1) in {-1, 0, 1} with q_b = round(x / 2^b)
     (x = w / step clipped below 1.5 * 2^(n-1)), whose LSB step puts the MSE-optimal scale of FIXED-
     round(target) at the plane where that many bits begin. Dropping low planes then rounds instead of
     truncating, and the top planes alone are an MSE-optimal low-precision quantizer. The code's start
     (`init="binary"`: binary expansion of round(|W| / max|W| * (2^n - 1)), here with latents +-L)
     truncates toward zero when LSB planes go: 25.7 % on ResNet-20 after 4 epochs vs 87.1 % rounded.
     The row scale s_r (per row, the paper's is per layer) is learned, log-parameterised. Bit values are
     divided by 2 sigmoid(beta L) - 1 and gates by sigmoid(beta_g m_0), the values of an initial set
     bit and gate, so the start is exactly the n-bit model at any temperature and annealing does not
     rescale the layers (their frozen BN statistics would not follow); both divisors reach 1.
  I4 gates are deterministic continuous-sparsification gates g = sigmoid(beta_g m) (Savarese et al.),
     not the code's per-epoch Bernoulli samples: short schedules cannot afford the sampling noise.
     All gates start on (m = `gate_init`); beta_g is annealed over the search phase.
  I5 two phases: a search phase (`search_frac` of the steps) trains bits, gates and scales with the
     regulariser; then the gates are thresholded at 0 (g >= 0.5) and the budget is enforced exactly
     by dropping the least confident boundary plane (smallest gate logit) until the size fits, and
     the bits fine-tune with fixed precision (the code's `ft` phase) while beta keeps rising.
  I6 lambda_eff = reg * (bits_now - target) / target, bits_now from the thresholded gates (I1, I2).
  I7 Adam (`latent_lr`, cosine decay) for latents and scales (it moves every plane, MSB included,
     at the same speed: 0.01 sent the loss from 2 to 20 in ResNet-20's first epoch, 0.003 does not),
     Adam (`gate_lr`, constant) for gate logits; BN affine parameters and activation scales train
     as in quant/qat.py (SGD, LSQ, frozen BN statistics), and the loss is qat.py's distillation
     loss from the float teacher.
  I8 at least one plane stays on per layer (row): FIXED-2 is the floor; a row whose kept planes are
     all zero exports as zeros in FIXED-2.
  I9 `finetune="ste"` (deviation from the code's `ft` phase): the search phase is the first
     `search_frac` of the epochs, with both temperatures annealed to `beta_final` over it; then the
     gates freeze (budget enforced), the binarised model is written back as FIXED-b rows and the
     rest of the epochs fine-tune it like any other method (quant/qat.py: STE on the weights, LSQ
     activation scales), at exactly the searched precisions and with the searched row scales (an
     MSE refit at every epoch start moved them and raised the loss each time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import RowmixError
from ..formats import RowFormat, Scheme, round_half_away
from .methods import Calib, Method
from .qat import TrainConfig, augment, kd_loss, rank_world
from .qat import train as qat_train
from .scales import weight_scales


def binary_digits(w: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The code's start: signed n-bit binary expansion of round(w / max|w_r| * (2^n - 1)).
    Dropping low planes truncates toward zero."""
    amax = w.abs().amax(1)
    step = torch.where(amax > 0, amax, torch.ones_like(amax)) / (2**n - 1)
    q = round_half_away(w / step[:, None]).long()
    return torch.stack([torch.sign(q) * ((q.abs() >> b) & 1) for b in range(n)]), step


def rounded_digits(w: torch.Tensor, n: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed-digit start (I3): d_b = q_b - 2 q_(b+1), q_b = round(x / 2^b), x = w / step clipped below
    1.5 * 2^(n-1), so the planes above any b sum to exactly round(x / 2^b) 2^b: dropping low planes
    rounds instead of truncating. The step puts the MSE-optimal FIXED-`bits` scale at plane n-bits+1:
    the top bits-1 planes alone are that quantizer (clipped at its largest level for bits <= 3)."""
    step = torch.from_numpy(weight_scales(w.numpy(), RowFormat(Scheme.FIXED, bits))).double() / 2 ** (n - bits + 1)
    x = torch.clamp(w / step[:, None], -(1.5 * 2 ** (n - 1) - 0.5), 1.5 * 2 ** (n - 1) - 0.5)
    q = [round_half_away(x / 2**b) for b in range(n)]
    digits = [q[b] - 2 * q[b + 1] for b in range(n - 1)] + [q[n - 1]]
    return torch.stack(digits).long(), step


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


INITS = ("rounded", "binary")
FINETUNES = ("planes", "ste")


class BitPlanes(nn.Module):
    """The bit-plane parameterization of one MAC layer's weight (plugged in via weight_override)."""

    def __init__(self, digits: torch.Tensor, step: torch.Tensor, shape: tuple[int, ...], per_row: bool,
                 latent_init: float, gate_init: float) -> None:
        """`digits` [n, R, K] in {-1, 0, 1} (LSB first) and the value `step` [R] of the LSB plane."""
        super().__init__()
        self.shape = tuple(shape)
        n, rows, k = digits.shape
        L = latent_init
        self.pos = nn.Parameter(torch.where(digits > 0, L, -L).float())
        self.neg = nn.Parameter(torch.where(digits < 0, L, -L).float())
        self.gate = nn.Parameter(torch.full((n, rows if per_row else 1), float(gate_init)))
        self.log_scale = nn.Parameter(torch.zeros(rows))
        self.register_buffer("s0", (step * (2**n - 1)).float())
        self.latent_init, self.gate_init = float(latent_init), float(gate_init)
        exps = 2.0 ** torch.arange(n, dtype=torch.float64) / (2**n - 1)  # e_b, LSB first
        self.register_buffer("exps", exps.float().reshape(n, 1, 1))
        self.register_buffer("kept", torch.ones(n, rows if per_row else 1, dtype=torch.bool))
        self.frozen = False
        self.beta = 1.0
        self.gate_beta = 1.0
        self.k = k

    @property
    def n(self) -> int:
        return self.pos.shape[0]

    def scale(self) -> torch.Tensor:
        return self.s0 * torch.exp(self.log_scale)

    def gates(self) -> torch.Tensor:
        """[n, G] gate values: sigmoids relative to an initial gate's (1 at the start, I3) while
        searching, the frozen 0 / 1 mask afterwards."""
        if self.frozen:
            return self.kept.float()
        return torch.sigmoid(self.gate_beta * self.gate) / _sigmoid(self.gate_beta * self.gate_init)

    def hard_gates(self) -> torch.Tensor:
        return self.kept if self.frozen else self.gate.detach() >= 0

    def forward(self) -> torch.Tensor:
        one = 2 * _sigmoid(self.beta * self.latent_init) - 1  # an initial set bit: exact +-1 at any beta (I3)
        bits = (torch.sigmoid(self.beta * self.pos) - torch.sigmoid(self.beta * self.neg)) / one
        w = (self.exps * self.gates()[:, :, None] * bits).sum(0) * self.scale()[:, None]
        return w.reshape(self.shape)

    def weight_counts(self) -> torch.Tensor:
        """Weights per gate group [G]: the whole layer, or one row."""
        groups = self.gate.shape[1]
        return torch.full((groups,), float(self.k * self.pos.shape[1] // groups))

    def signed_bits(self) -> torch.Tensor:
        """[n, R, K] binarised planes in {-1, 0, 1}: 1{P > 0} - 1{N > 0}."""
        return (self.pos.detach() > 0).long() - (self.neg.detach() > 0).long()

    def _used(self, bits: torch.Tensor) -> torch.Tensor:
        """[n, G] planes that are non-zero somewhere in their gate group."""
        nz = bits != 0
        return nz.any(2).any(1, keepdim=True) if self.gate.shape[1] == 1 else nz.any(2)

    def export(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values [R, K], FIXED bits [R], scales [R]) of the binarised model: bits = span of the used
        planes + 1 sign bit, at least 2; scale_r = s_r * 2^lo / (2^n - 1)."""
        kept = self.hard_gates()
        bits = self.signed_bits() * kept[:, :, None].long()
        used = self._used(bits)
        n = self.n
        idx = torch.arange(n)[:, None]
        lo = torch.where(used.any(0), torch.where(used, idx, n).amin(0), 0)
        hi = torch.where(used.any(0), torch.where(used, idx, -1).amax(0), 0)
        rows = self.pos.shape[1]
        lo_r, hi_r = lo.expand(rows) if lo.numel() == 1 else lo, hi.expand(rows) if hi.numel() == 1 else hi
        q = (bits * (2 ** idx)[:, :, None]).sum(0)
        values = q // (2 ** lo_r)[:, None]
        fixed_bits = torch.clamp(hi_r - lo_r + 2, min=2)
        scales = self.scale().detach().double() * (2.0 ** lo_r) / (2**n - 1)
        return values.numpy(), fixed_bits.numpy(), scales.float().numpy()

    def group_bits(self) -> torch.Tensor:
        """[G] exported-bit upper bound from the thresholded gates: kept span + 1 (I1), floor 2."""
        kept = self.hard_gates()
        idx = torch.arange(self.n)[:, None]
        lo = torch.where(kept, idx, self.n).amin(0)
        hi = torch.where(kept, idx, -1).amax(0)
        return torch.clamp(hi - lo + 2, min=2).float()


def bit_planes(qnet) -> dict[str, BitPlanes]:
    """The bit-plane modules CSQ attached to the MAC layers, by layer key."""
    return {k: m.bitplanes for k, m in qnet.macs.items() if isinstance(getattr(m, "bitplanes", None), BitPlanes)}


def average_bits(planes: dict[str, BitPlanes]) -> float:
    """Model-size-weighted average exported bits from the thresholded gates (I1, I2)."""
    counts = [p.weight_counts() for p in planes.values()]
    total = sum(float(c.sum()) for c in counts)
    return sum(float((c * p.group_bits()).sum()) for c, p in zip(counts, planes.values())) / total


def soft_planes(planes: dict[str, BitPlanes]) -> torch.Tensor:
    """Differentiable model size: weight-count-weighted average of the summed gate values (I2)."""
    counts = [p.weight_counts() for p in planes.values()]
    total = sum(float(c.sum()) for c in counts)
    return sum((c * p.gates().sum(0)).sum() for c, p in zip(counts, planes.values())) / total


def _boundary_candidates(p: BitPlanes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate logit, plane, group) of the lowest and highest kept plane of every group whose kept span
    exceeds one plane: the planes whose removal shrinks the exported precision."""
    kept, idx = p.kept, torch.arange(p.n)[:, None]
    lo = torch.where(kept, idx, p.n).amin(0)
    hi = torch.where(kept, idx, -1).amax(0)
    groups = torch.nonzero(hi > lo).flatten()
    planes = torch.cat([lo[groups], hi[groups]])  # LSB candidates first: they win ties
    groups = torch.cat([groups, groups])
    return p.gate.detach()[planes, groups], planes, groups


def freeze_gates(planes: dict[str, BitPlanes], target: float) -> None:
    """Threshold the gates (g >= 0.5), keep at least one plane per group (I8) and drop the least
    confident boundary plane until the thresholded size meets the budget (I5)."""
    for p in planes.values():
        kept = p.gate.detach() >= 0
        none = ~kept.any(0)
        kept[p.gate.detach().argmax(0)[none], torch.nonzero(none).flatten()] = True
        p.kept.copy_(kept)
        p.frozen = True
    while average_bits(planes) > target + 1e-9:
        best: tuple[tuple[float, float], BitPlanes, int, int] | None = None
        for p in planes.values():
            logits, idx, groups = _boundary_candidates(p)
            if len(logits):
                i = int(torch.argmin(logits))
                rank = (float(logits[i]), -float(p.weight_counts()[0]))  # ties (untrained): largest layer first
                if best is None or rank < best[0]:
                    best = (rank, p, int(idx[i]), int(groups[i]))
        if best is None:
            raise RowmixError(f"csq: the budget of {target:g} bits cannot be met (every layer is at FIXED-2)")
        best[1].kept[best[2], best[3]] = False


def write_back(qnet) -> dict[str, list[int]]:
    """Replace every bit-plane parameterization by the exact quantized layer it encodes: FIXED-b row
    formats, row scales and weights scale_r * v_r; returns the bits of every row by layer key.
    The bit-plane modules stay attached (inert) for inspection."""
    out = {}
    for k, p in bit_planes(qnet).items():
        mac = qnet.macs[k]
        values, bits, scales = p.export()
        with torch.no_grad():
            w = torch.from_numpy(scales[:, None] * values.astype(np.float32))
            mac.weight.copy_(w.reshape(mac.weight.shape))
        mac.set_formats([RowFormat(Scheme.FIXED, int(b)) for b in bits], scales)
        mac.weight_override = None
        if not np.array_equal(mac.weight_values().numpy(), values):
            raise RowmixError(f"csq: layer '{k}' does not re-encode to its bit planes")
        out[k] = [int(b) for b in bits]
    return out


@dataclass(frozen=True)
class CSQ(Method):
    """CSQ: bi-level continuous sparsification of bit values and bit selection under a size budget.

    `target_bits`: average exported weight bits (sign included, weighted by weight count);
    `n`: magnitude planes at the start (bits = planes + 1 <= 8); `per_row`: one gate per row and
    plane (the per-row extension) instead of per layer (the paper); `beta_final`: final temperature of
    bits and gates; `reg`: regulariser strength lambda_0; `latent_init`, `gate_init`: initial |latent|
    and gate logit; `latent_lr`, `gate_lr`: Adam learning rates; `search_frac`: share of the steps
    before the gates freeze; `init`: "rounded" (I3) or "binary" (the code's start); `finetune`:
    "planes" (the code's `ft` phase, I5) or "ste" (I9) after the search; `seed`: data
    order and augmentation (with TrainConfig.seed). Defaults: the ResNet-20 / CIFAR-10 W3A4 runs of
    docs/methods/csq.md."""

    target_bits: float = 3.0
    n: int = 7
    per_row: bool = False
    beta_final: float = 200.0
    reg: float = 10.0
    latent_init: float = 1.0
    gate_init: float = 2.0
    latent_lr: float = 0.003
    gate_lr: float = 0.05
    search_frac: float = 0.3
    init: str = "rounded"
    finetune: str = "ste"
    seed: int = 0
    name: str = "csq"
    resumable = False  # its own training loop keeps no checkpoints
    result: dict = field(default_factory=dict, compare=False, repr=False)  # filled by `post`

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 7:
            raise RowmixError(f"csq: n must be 1..7 magnitude planes (bits = n + 1 <= 8), got {self.n}")
        if not 2 <= self.target_bits <= self.n + 1:
            raise RowmixError(f"csq: target bits must be 2..{self.n + 1} (FIXED-2 .. n + 1 planes), "
                              f"got {self.target_bits:g}")
        if self.beta_final < 1 or not 0 < self.search_frac <= 1 or self.latent_init <= 0:
            raise RowmixError("csq: beta_final >= 1, 0 < search_frac <= 1 and latent_init > 0 are required")
        if self.init not in INITS:
            raise RowmixError(f"csq: init must be one of {INITS}, got {self.init!r}")
        if self.finetune not in FINETUNES:
            raise RowmixError(f"csq: finetune must be one of {FINETUNES}, got {self.finetune!r}")

    def params(self) -> dict[str, Any]:
        keys = ("target_bits", "n", "per_row", "beta_final", "reg", "latent_init", "gate_init", "latent_lr",
                "gate_lr", "search_frac", "init", "finetune", "seed")
        return {**{k: getattr(self, k) for k in keys}, **self.result}

    def assign(self, qnet, calib: Calib | None) -> None:
        """Bit planes from the pretrained weights (I3), all gates on; FIXED-(n+1) placeholders until `post`."""
        for node in qnet.nodes:
            if node.kind in ("conv", "linear"):
                mac = qnet.mac(node.name)
                w = mac.weight.detach().reshape(mac.rows, -1).double()
                if self.init == "rounded":
                    bits = min(self.n + 1, max(2, math.floor(self.target_bits + 0.5)))
                    digits, step = rounded_digits(w, self.n, bits)
                else:
                    digits, step = binary_digits(w, self.n)
                mac.bitplanes = BitPlanes(digits, step, tuple(mac.weight.shape), self.per_row, self.latent_init,
                                          self.gate_init)
                mac.weight_override = mac.bitplanes
                mac.set_formats([RowFormat(Scheme.FIXED, self.n + 1)] * mac.rows)

    def init_scales(self, qnet, rows: dict[str, np.ndarray] | None = None) -> None:
        """Nothing to do: the row scales belong to the bit planes and are written back by `post`."""

    def train(self, qnet, teacher, images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, calib: Calib | None,
              progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
        """The CSQ loop: distillation loss + lambda_eff * soft size, temperatures annealed per step,
        gates frozen (budget enforced) after the search phase; returns the per-epoch history.
        `finetune="ste"` (I9) ends the loop with the search, writes the FIXED-b model back and
        fine-tunes it with quant/qat.py for the remaining epochs."""
        if rank_world()[1] > 1 or cfg.checkpoint:
            raise RowmixError("csq: its training loop runs in one process and keeps no checkpoints")
        planes = bit_planes(qnet)
        if self.finetune == "planes":
            return self._loop(qnet, teacher, images, labels, _Loop(self, qnet, planes, cfg, len(images)), progress)
        search = min(cfg.epochs, max(1, round(self.search_frac * cfg.epochs)))
        loop = _Loop(self, qnet, planes, replace(cfg, epochs=search), len(images), search_only=True)
        history = self._loop(qnet, teacher, images, labels, loop, progress)
        freeze_gates(planes, self.target_bits)
        write_back(qnet)
        for p in planes.values():
            p.requires_grad_(False)
        if cfg.epochs > search:
            offset = loop.total
            ft = replace(cfg, epochs=cfg.epochs - search, refit_scales=False)  # keep the searched row scales
            report = None if progress is None else lambda s, total, loss: progress(offset + s, offset + total, loss)
            tail = qat_train(qnet, teacher, images, labels, ft, self, calib, report)
            history += [{**h, "epoch": h["epoch"] + search, "gates_frozen": True} for h in tail]
        return history

    def _loop(self, qnet, teacher, images: np.ndarray, labels: np.ndarray, loop: _Loop,
              progress: Callable[[int, int, float], None] | None) -> list[dict]:
        x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
        teacher = teacher.eval()
        cfg = loop.cfg
        use_aug = cfg.augment and images.shape[-1] >= 16
        history = []
        for epoch in range(cfg.epochs):
            seed = int(np.random.SeedSequence([self.seed, cfg.seed, epoch]).generate_state(1)[0])
            gen = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(images), generator=gen)
            qnet.train()
            for bn in (m.bn for m in qnet.macs.values() if m.bn is not None):
                bn.eval()  # frozen running statistics, as in quant/qat.py
            running = 0.0
            for step in range(loop.steps_per_epoch):
                idx = perm[step * cfg.batch : (step + 1) * cfg.batch]
                x = augment(x_all[idx], gen) if use_aug else x_all[idx]
                with torch.no_grad():
                    t_logits = teacher((x - qnet.mean) / qnet.std)
                loss = loop.step(x, y_all[idx], t_logits)
                running += loss
                if progress is not None:
                    progress(loop.t, loop.total, loss)
            history.append({"epoch": epoch + 1, "loss": running / loop.steps_per_epoch, **loop.state()})
        qnet.eval()
        qnet.set_learning(False, False)
        return history

    def post(self, qnet, calib: Calib | None) -> None:
        """Freeze the gates if training did not (budget enforced), then write the exact model back
        (unless the STE fine-tune already did and trained it further)."""
        planes = bit_planes(qnet)
        if any(qnet.macs[k].weight_override is not None for k in planes):
            if not all(p.frozen for p in planes.values()):
                freeze_gates(planes, self.target_bits)
            for p in planes.values():
                p.beta = p.gate_beta = self.beta_final
            write_back(qnet)
        bits = {k: [f.bits for f in qnet.macs[k].formats] for k in planes}
        counts = {k: qnet.macs[k].weight[0].numel() for k in bits}
        total = sum(counts[k] * len(b) for k, b in bits.items())
        self.result.clear()
        self.result["achieved_bits"] = round(sum(counts[k] * sum(b) for k, b in bits.items()) / total, 4)
        self.result["layer_bits"] = {k.replace("__", "."): round(float(np.mean(b)), 3) for k, b in bits.items()}


class _Loop:
    """Optimisers, schedules and one training step of the CSQ loop (I5-I7)."""

    def __init__(self, method: CSQ, qnet, planes: dict[str, BitPlanes], cfg: TrainConfig, n_images: int,
                 search_only: bool = False) -> None:
        """`search_only`: every step searches (the gates anneal over all of them and never freeze here)."""
        self.method, self.qnet, self.planes, self.cfg = method, qnet, planes, cfg
        self.steps_per_epoch = max(1, n_images // cfg.batch)
        self.total = max(2, cfg.epochs * self.steps_per_epoch)
        self.search = self.total if search_only else max(2, round(method.search_frac * self.total))
        self.t = 0
        torch.manual_seed(method.seed)
        qnet.set_learning(False, cfg.learn_act_scales)
        self.act_scales = [a.scale for a in qnet.acts.values() if a.scale.requires_grad]
        self.floors = [s.detach().clone() * 0.1 for s in self.act_scales]  # as qat.py: shrink, never vanish
        self.affine = [p for m in qnet.macs.values() for p in ([m.bias] if m.bias is not None else [])
                       + (list(m.bn.parameters()) if m.bn is not None else [])]
        self.sgd = torch.optim.SGD([{"params": self.affine, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
                                    {"params": self.act_scales, "weight_decay": 0.0, "lr": cfg.lr * cfg.scale_lr}],
                                   lr=cfg.lr, momentum=cfg.momentum)
        bits = [q for p in planes.values() for q in (p.pos, p.neg, p.log_scale)]
        self.adam = torch.optim.Adam([{"params": bits, "lr": method.latent_lr},
                                      {"params": [p.gate for p in planes.values()], "lr": method.gate_lr}])
        cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, self.total) / self.total))  # noqa: E731
        self.schedules = [torch.optim.lr_scheduler.LambdaLR(self.sgd, cosine),
                          torch.optim.lr_scheduler.LambdaLR(self.adam, [cosine, lambda s: 1.0])]
        self.lam = 0.0
        self._temperatures()

    def _temperatures(self) -> None:
        """beta = beta_final^(t / (T - 1)) over all steps, beta_g the same over the search phase."""
        bf = self.method.beta_final
        beta = bf ** (min(self.t, self.total - 1) / (self.total - 1))
        gate_beta = bf ** (min(self.t, self.search - 1) / (self.search - 1))
        for p in self.planes.values():
            p.beta, p.gate_beta = beta, gate_beta

    def frozen(self) -> bool:
        return all(p.frozen for p in self.planes.values())

    def step(self, x: torch.Tensor, y: torch.Tensor, t_logits: torch.Tensor) -> float:
        if self.t == self.search and not self.frozen():
            freeze_gates(self.planes, self.method.target_bits)
            self.lam = 0.0
        self._temperatures()
        loss = kd_loss(self.qnet(x), t_logits, y, self.cfg.kd_alpha, self.cfg.kd_temperature)
        total = loss
        if not self.frozen():
            target = self.method.target_bits
            self.lam = self.method.reg * (average_bits(self.planes) - target) / target  # I6
            total = loss + self.lam * soft_planes(self.planes)
        self.sgd.zero_grad(set_to_none=True)
        self.adam.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.clip_grad:
            nn.utils.clip_grad_norm_(self.affine + self.act_scales, self.cfg.clip_grad)
        self.sgd.step()
        self.adam.step()
        for s in self.schedules:
            s.step()
        with torch.no_grad():
            for s, floor in zip(self.act_scales, self.floors):
                torch.maximum(s, floor, out=s)
        self.t += 1
        return float(loss.item())

    def state(self) -> dict[str, Any]:
        p = next(iter(self.planes.values()))
        return {"lr": self.schedules[0].get_last_lr()[0], "beta": p.beta, "gate_beta": p.gate_beta,
                "avg_bits": round(average_bits(self.planes), 4), "lambda": self.lam, "gates_frozen": self.frozen()}
