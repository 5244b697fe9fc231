"""The baseline a user would pick instead of rowmix: Brevitas per-channel fixed-point quantization
of the same float network, on the same data, with the same QAT recipe.

Every Conv2d / Linear becomes a Brevitas QuantConv2d / QuantLinear with per-output-channel float
weight scales (`Int8WeightPerChannelFloat` at `w_bits`) and a per-tensor input quantizer: signed
8-bit for the first layer (the normalised image, as in rowmix), unsigned `a_bits` for the others
(their inputs are post-ReLU). Batch norm stays a float layer with frozen statistics and the residual
adds are not quantized: both favour Brevitas against rowmix's integer-only graph. Activation scales
are calibrated on the calibration images (`calibration_mode`), then QAT uses rowmix's own loop pieces
(augmentation, distillation loss, cosine SGD, gradient clipping) so only the quantizer differs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..evaluate import torch_predictions
from ..quant.qat import TrainConfig, augment, kd_loss


@dataclass(frozen=True)
class BrevitasResult:
    accuracy: float
    seconds: float
    weight_bits: int
    act_bits: int
    weights: int

    @property
    def model_bytes(self) -> int:
        return math.ceil(self.weights * self.weight_bits / 8)


def _quant_copy(model: nn.Module, w_bits: int, a_bits: int) -> nn.Module:
    import copy

    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias, Uint8ActPerTensorFloat

    model = copy.deepcopy(model)
    first = True
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        act = dict(input_quant=Int8ActPerTensorFloat, input_bit_width=8) if first else \
            dict(input_quant=Uint8ActPerTensorFloat, input_bit_width=a_bits)
        common = dict(weight_quant=Int8WeightPerChannelFloat, weight_bit_width=w_bits, bias_quant=Int32Bias,
                      return_quant_tensor=False, **act)
        if isinstance(mod, nn.Conv2d):
            new = qnn.QuantConv2d(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                                  bias=mod.bias is not None, **common)
        else:
            new = qnn.QuantLinear(mod.in_features, mod.out_features, bias=mod.bias is not None, **common)
        new.load_state_dict(mod.state_dict(), strict=False)
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        setattr(parent, name.rpartition(".")[2], new)
        first = False
    return model


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def brevitas_run(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], w_bits: int, a_bits: int,
                 calib: np.ndarray, eval_images: np.ndarray, eval_labels: np.ndarray, cfg: TrainConfig,
                 train_images: np.ndarray | None = None, train_labels: np.ndarray | None = None,
                 progress: Callable[[int, int], None] | None = None) -> BrevitasResult:
    """Calibrate (and with cfg.epochs > 0 train) a Brevitas copy of `model`; its eval accuracy."""
    from brevitas.graph.calibrate import calibration_mode

    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    c = len(mean)
    m_t = torch.tensor(mean, dtype=torch.float32).reshape(1, c, 1, 1)
    s_t = torch.tensor(std, dtype=torch.float32).reshape(1, c, 1, 1)
    teacher = model.eval()
    qmodel = _quant_copy(model, w_bits, a_bits).eval()
    with torch.no_grad(), calibration_mode(qmodel):
        for i in range(0, len(calib), 128):
            qmodel((torch.from_numpy(calib[i : i + 128]) - m_t) / s_t)
    if cfg.epochs > 0 and train_images is not None and train_labels is not None:
        params = [p for p in qmodel.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        steps = len(train_images) // cfg.batch
        total = cfg.epochs * steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        x_all, y_all = torch.from_numpy(train_images), torch.from_numpy(train_labels)
        for epoch in range(cfg.epochs):
            gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            perm = torch.randperm(len(train_images), generator=gen)
            qmodel.train()
            _freeze_bn(qmodel)
            for step in range(steps):
                idx = perm[step * cfg.batch : (step + 1) * cfg.batch]
                x = augment(x_all[idx], gen) if cfg.augment else x_all[idx]
                x = (x - m_t) / s_t
                with torch.no_grad():
                    t_logits = teacher(x)
                loss = kd_loss(qmodel(x), t_logits, y_all[idx], cfg.kd_alpha, cfg.kd_temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad:
                    nn.utils.clip_grad_norm_(params, cfg.clip_grad)
                opt.step()
                sched.step()
                if progress is not None:
                    progress(epoch * steps + step + 1, total)
        qmodel.eval()
    seconds = time.perf_counter() - t0
    pred = torch_predictions(lambda x: qmodel((x - m_t) / s_t), eval_images)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return BrevitasResult(float((pred == eval_labels).mean()), seconds, w_bits, a_bits, weights)
