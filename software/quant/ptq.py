"""Post-training quantization with the first front end's methods, and fake-quant from an artifact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..artifact import Artifact, MacLayer
from ..errors import RowmixError
from ..formats import DEFAULT_REQUANT, RequantSpec, negate_values
from ..models import ModelInfo
from .calibrate import collect, set_activation_formats
from .export import export
from .methods import Method, Mixed
from .qnet import QuantNet
from .scales import weight_scales


@dataclass(frozen=True)
class Quantized:
    qnet: QuantNet
    artifact: Artifact


def assign_and_scale(qnet: QuantNet, method: Method) -> None:
    """Row formats from the method, then the MSE-optimal scale of every row for its format."""
    for node in qnet.nodes:
        if node.kind not in ("conv", "linear"):
            continue
        mac = qnet.mac(node.name)
        w = mac.weight.detach().reshape(mac.rows, -1).numpy()
        formats = method.assign(node.name, w)
        scales = np.ones(mac.rows, np.float32)
        for f in set(formats):
            rows = [r for r, g in enumerate(formats) if g == f]
            scales[rows] = weight_scales(w[rows], f)
        mac.set_formats(formats, scales)


def quantize(
    model: nn.Module,
    info: ModelInfo,
    method: Method,
    calib_images: np.ndarray,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    act_bits: int = 8,
    requant: RequantSpec = DEFAULT_REQUANT,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> Quantized:
    if act_bits not in (4, 8):
        raise RowmixError(f"--act-bits must be 4 or 8, got {act_bits}")
    if len(calib_images) == 0:
        raise RowmixError("no calibration images")
    qnet = QuantNet(model, mean, std)
    stats, shapes = collect(qnet, calib_images, batch_size, progress=progress)
    set_activation_formats(qnet, stats, act_bits)
    assign_and_scale(qnet, method)
    ratio = method.ratio.to_json() if isinstance(method, Mixed) else None
    art = export(
        qnet, shapes,
        model={"name": info.name, "weights_sha256": info.weights_sha256},
        method={"name": method.name, "params": {**method.params(), "act_bits": act_bits,
                                                 "calibration_images": int(len(calib_images))}},
        ratio=ratio, requant=requant,
    )
    return Quantized(qnet, art)


@torch.no_grad()
def fakequant_from_artifact(model: nn.Module, art: Artifact) -> QuantNet:
    """The torch fake-quant network started from the artifact's own codes and scales, in deploy mode.

    Weights become `scale_r * v_r` (negation undone: BN comes from the float model), so the shared
    encoder returns exactly the exported codes; activation formats are the artifact's; BN is folded
    with integer-snapped biases as in the export, so only the 16-bit multiplier separates it from
    the golden model."""
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
    qnet.set_deploy(True)
    return qnet
