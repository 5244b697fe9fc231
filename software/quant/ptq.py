"""The quantization pipeline shared by every method, and fake-quant from an artifact.

capture -> activation statistics -> activation formats (method.activation_scale) -> row formats
(method.assign) -> row scales (method.init_scales) -> optional QAT (method.on_epoch each epoch) ->
method.post -> export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..artifact import Add, Artifact, MacLayer
from ..errors import RowmixError
from ..formats import DEFAULT_REQUANT, RequantSpec, add_code_table, negate_values
from ..models import ModelInfo
from .calibrate import INPUT_BITS, POOL_BITS, collect, set_activation_formats
from .export import export
from .methods import Calib, Method
from .qat import TrainConfig
from .qnet import QuantNet, key


@dataclass(frozen=True)
class Quantized:
    qnet: QuantNet
    artifact: Artifact
    history: tuple = ()


def quantize(
    model: nn.Module,
    info: ModelInfo,
    method: Method,
    calib_images: np.ndarray,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    act_bits: int = 8,
    input_bits: int = INPUT_BITS,
    pool_bits: int = POOL_BITS,
    requant: RequantSpec = DEFAULT_REQUANT,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
    calib_labels: np.ndarray | None = None,
    train_config: TrainConfig | None = None,
    train_images: np.ndarray | None = None,
    train_labels: np.ndarray | None = None,
    train_progress: Callable[[int, int, float], None] | None = None,
) -> Quantized:
    if act_bits not in (4, 8):
        raise RowmixError(f"--act-bits must be 4 or 8, got {act_bits}")
    if not 2 <= input_bits <= 8:
        raise RowmixError(f"--input-bits must be 2..8, got {input_bits}")
    if not act_bits <= pool_bits <= 8:
        raise RowmixError(f"--pool-bits must be {act_bits}..8 (at least the activation bits), got {pool_bits}")
    if len(calib_images) == 0:
        raise RowmixError("no calibration images")
    qnet = QuantNet(model, mean, std)
    stats, shapes = collect(qnet, calib_images, batch_size, progress=progress)
    set_activation_formats(qnet, stats, act_bits, method.activation_scale, input_bits=input_bits,
                           pool_bits=pool_bits)
    calib = Calib(calib_images, calib_labels)
    method.assign(qnet, calib)
    method.init_scales(qnet)
    history: list = []
    if train_config is not None and train_config.epochs > 0:
        if train_images is None or train_labels is None:
            raise RowmixError("QAT needs training images and labels")
        history = method.train(qnet, model, train_images, train_labels, train_config, calib, train_progress)
    method.post(qnet, calib)
    sensitivity = {k.replace("__", "."): m.sensitivity.numpy() for k, m in qnet.macs.items()
                   if not torch.isnan(m.sensitivity).all()}
    params = {**method.params(), **qnet.notes, "act_bits": act_bits, "input_bits": input_bits,
              "pool_bits": pool_bits, "calibration_images": int(len(calib_images))}
    if train_config is not None and train_config.epochs > 0:
        params["qat"] = train_config.to_json()
    art = export(
        qnet, shapes,
        model={"name": info.name, "weights_sha256": info.weights_sha256},
        method={"name": method.name, "params": params},
        ratio=method.ratio_json, requant=requant, sensitivity=sensitivity,
    )
    return Quantized(qnet, art, tuple(history))


@torch.no_grad()
def fakequant_from_artifact(model: nn.Module, art: Artifact) -> QuantNet:
    """The torch fake-quant network of an artifact, in deploy mode: everything comes from the artifact.

    Weights become `scale_r * v_r` (negation undone), so the shared encoder returns exactly the
    exported codes; activation formats are the artifact's; each row's gain and offset are rebuilt
    from its multiplier and integer bias (gain = +-(M0 / 2^n) s_out / (s_in scale), offset =
    bias_int |gain| s_in scale), so trained or re-estimated batch norms need no float model. It
    differs from the golden model only by float arithmetic (rounding ties). The float model gives
    the graph and the shapes. Residual adds round with their exported multipliers too."""
    qnet = QuantNet(model, art.input.mean, art.input.std)
    qnet.acts["input"].fmt = art.input.tensor.fmt
    for op in art.ops:
        q = qnet.act(op.name)
        if q is not None:
            q.fmt = op.out.fmt
        if isinstance(op, MacLayer):
            mac = qnet.mac(op.name)
            if mac.rows != op.r or mac.weight[0].numel() != op.k:
                raise RowmixError(f"layer '{op.name}': the float model's shape differs from the artifact's")
            v = negate_values(op.values, op.rows.negated).astype(np.float32)
            s = op.rows.scale.astype(np.float32)
            mac.weight.copy_(torch.from_numpy(s[:, None] * v).reshape(mac.weight.shape))
            mac.set_formats([op.rows.format(r) for r in range(op.r)], s)
            s_in, s_out = art.tensors[op.input].scale, op.out.scale
            sign = np.where(op.rows.negated, -1.0, 1.0)
            mult = np.ldexp(op.rows.m0.astype(np.float64), -op.rows.n)
            gain = sign * mult * s_out / (s_in * op.rows.scale)
            offset = op.rows.bias * mult * s_out
            mac.folded = (torch.from_numpy(gain.astype(np.float32)), torch.from_numpy(offset.astype(np.float32)))
        elif isinstance(op, Add):  # the add's rounding from its multipliers: a float scale ratio within
            # 2^-16 of a rounding tie otherwise flips every element with that code (seen in a CSQ run)
            a, b = (art.tensors[i] for i in op.inputs)
            o = op.out.fmt
            table = torch.from_numpy(add_code_table((a.fmt.lo, a.fmt.hi), (b.fmt.lo, b.fmt.hi), op.m0, op.n,
                                                    (o.lo, o.hi), art.requant))
            qnet.add_tables[key(op.name)] = (table, (a.scale, a.fmt.lo), (b.scale, b.fmt.lo))
    qnet.set_deploy(True)
    return qnet
