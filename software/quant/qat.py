"""Quantization-aware training: knowledge distillation from the float model, SGD with a cosine
schedule, learned (LSQ) weight and activation scales, checkpoints and resume, rich progress,
seeded and deterministic on the CPU, and data-parallel over processes with torch
DistributedDataParallel when launched by torchrun (gloo on CPUs).

Batch norm keeps its running statistics frozen (its affine parameters train): the pretrained
statistics are a good estimate, the exported fold needs stable ones, and with no batch statistics
a step on P processes with B / P images each is the same step as on one process with B images."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..errors import RowmixError
from ..formats import RowFormat
from .methods import Calib, Method
from .qnet import QuantNet


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 0
    batch: int = 128  # global batch, split over processes
    lr: float = 0.03  # with clipping: 0.03 beat 0.01 by 0.5 points (ResNet-20 W4A4, 10 epochs)
    momentum: float = 0.9
    weight_decay: float = 0.0  # with frozen BN statistics, decay shrinks what BN no longer rescales
    kd_alpha: float = 0.9  # share of the distillation loss (the rest is cross-entropy)
    kd_temperature: float = 4.0
    augment: bool = True  # random crop (pad 4) and horizontal flip, for image sizes >= 16
    seed: int = 0
    checkpoint: str | None = None  # file to save every epoch and resume from
    learn_act_scales: bool = True  # LSQ on hidden activation scales (input and logits stay fixed)
    learn_weight_scales: bool = False
    refit_scales: bool = True  # refit the row scales (MSE) to the trained weights at every epoch start
    scale_lr: float = 3.0  # learning-rate multiplier of the scales: LSQ's gradient scale and the
    # clipping leave activation scales almost still at 0.1 (x10 gained 0.35 points at 10 epochs)
    clip_grad: float = 1.0  # global gradient-norm clip: at lr 0.01 the first steps of a 4-bit
    # ResNet-20 have gradient norms of 20-50 and unclipped SGD leaves the PTQ optimum for good

    def to_json(self) -> dict:
        return asdict(self)


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> bool:
    """Join the process group torchrun set up (gloo); False when not launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("gloo")
    return True


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random 32x32 (h x w) crop of the image zero-padded by 4."""
    n, c, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4))
    rows = torch.randint(0, 9, (n,), generator=gen)[:, None] + torch.arange(h)[None, :]
    cols = torch.randint(0, 9, (n,), generator=gen)[:, None] + torch.arange(w)[None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """(1 - alpha) cross-entropy + alpha T^2 KL(teacher_T || student_T) (Hinton et al.)."""
    T = temperature
    kd = F.kl_div(F.log_softmax(student / T, 1), F.log_softmax(teacher / T, 1), reduction="batchmean",
                  log_target=True) * T * T
    return (1 - alpha) * F.cross_entropy(student, labels) + alpha * kd


def _formats(qnet: QuantNet) -> dict[str, list[list]]:
    return {k: [[str(f.scheme), f.bits] for f in m.formats] for k, m in qnet.macs.items()}


def _set_formats(qnet: QuantNet, saved: dict[str, list[list]]) -> None:
    for k, fs in saved.items():
        qnet.macs[k].set_formats([RowFormat(s, b) for s, b in fs])


def train(qnet: QuantNet, teacher: nn.Module, images: np.ndarray, labels: np.ndarray, cfg: TrainConfig,
          method: Method, calib: Calib | None = None, progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """Train `qnet` in place; returns the per-epoch history (loss, learning rate)."""
    rank, world = rank_world()
    if cfg.batch % world:
        raise RowmixError(f"the QAT batch ({cfg.batch}) must be divisible by the number of processes ({world})")
    torch.manual_seed(cfg.seed)
    qnet.set_learning(cfg.learn_weight_scales, cfg.learn_act_scales)
    teacher = teacher.eval()
    scale_params = [p for n, p in qnet.named_parameters() if n.endswith("scale") and p.requires_grad]
    floors = [p.detach().clone() * 0.1 for p in scale_params]  # a scale may shrink tenfold, not vanish
    other = [p for n, p in qnet.named_parameters() if not n.endswith("scale")]
    opt = torch.optim.SGD([{"params": other, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
                           {"params": scale_params, "weight_decay": 0.0, "lr": cfg.lr * cfg.scale_lr}],
                          lr=cfg.lr, momentum=cfg.momentum)
    steps_per_epoch = len(images) // cfg.batch
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    model = qnet
    if world > 1:
        model = nn.parallel.DistributedDataParallel(qnet)
    start, history = 0, []
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        _set_formats(qnet, state["formats"])
        qnet.load_state_dict(state["qnet"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, history = state["epoch"], state["history"]
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    mean, std = qnet.mean, qnet.std
    use_aug = cfg.augment and images.shape[-1] >= 16
    for epoch in range(start, cfg.epochs):
        method.on_epoch(epoch, cfg.epochs, qnet, calib)
        if cfg.refit_scales and not cfg.learn_weight_scales and epoch > start:
            method.init_scales(qnet)  # refit the row scales to the trained weights
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # the same on every process
        perm = torch.randperm(len(images), generator=gen)
        qnet.train()
        for bn in (m.bn for m in qnet.macs.values() if m.bn is not None):
            bn.eval()  # frozen running statistics
        running = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch : (step + 1) * cfg.batch]
            x = x_all[idx]
            if use_aug:
                x = augment(x, gen)
            y = y_all[idx]
            per = cfg.batch // world
            x, y = x[rank * per : (rank + 1) * per], y[rank * per : (rank + 1) * per]
            with torch.no_grad():
                t_logits = teacher((x - mean) / std)
            loss = kd_loss(model(x), t_logits, y, cfg.kd_alpha, cfg.kd_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad:
                nn.utils.clip_grad_norm_(qnet.parameters(), cfg.clip_grad)
            opt.step()
            sched.step()
            with torch.no_grad():
                for p, floor in zip(scale_params, floors):
                    torch.maximum(p, floor, out=p)
            running += loss.item()
            if progress is not None and rank == 0:
                progress(epoch * steps_per_epoch + step + 1, total, loss.item())
        history.append({"epoch": epoch + 1, "loss": running / max(1, steps_per_epoch), "lr": sched.get_last_lr()[0]})
        if ckpt is not None and rank == 0:
            state = {"epoch": epoch + 1, "history": history, "formats": _formats(qnet), "qnet": qnet.state_dict(),
                     "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "config": cfg.to_json()}
            tmp = ckpt.with_name(f".{ckpt.name}.tmp")
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, tmp)
            tmp.replace(ckpt)
    qnet.eval()
    qnet.set_learning(False, False)
    return history
