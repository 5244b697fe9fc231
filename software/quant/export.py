"""Export a calibrated fake-quant network to an artifact: codes, row tables, folded BN, multipliers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import __version__
from ..artifact import (
    Add,
    Artifact,
    AvgPool,
    Flatten,
    GlobalAvgPool,
    InputSpec,
    MacLayer,
    MaxPool,
    Op,
    RowTable,
    Shortcut,
    TensorSpec,
)
from ..errors import RowmixError
from ..formats import (
    ActFormat,
    FoldError,
    MultiplierError,
    RequantSpec,
    bn_affine,
    fold_rows,
    negate_values,
    padded_length,
    quantize_multiplier,
)
from .qnet import QuantMac, QuantNet


def _tensor(fmt: ActFormat, shape: tuple[int, ...]) -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in shape), fmt.bits, fmt.signed, float(fmt.scale))


def _affine(mac: QuantMac) -> tuple[np.ndarray, np.ndarray]:
    bias = None if mac.bias is None else mac.bias.detach().double().numpy()
    if mac.bn is None:
        return np.ones(mac.rows), (np.zeros(mac.rows) if bias is None else bias)
    bn = mac.bn
    return bn_affine(bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy(),
                     bn.running_mean.double().numpy(), bn.running_var.double().numpy(), bn.eps, bias)


def _mac_layer(name: str, kind: str, src: str, mac: QuantMac, s_in: float, out: TensorSpec,
               requant: RequantSpec, sensitivity: np.ndarray | None) -> MacLayer:
    rows, k = mac.rows, mac.weight[0].numel()
    gain, offset = _affine(mac)
    scale = mac.scale.numpy().astype(np.float64)
    try:
        folded = fold_rows(scale, s_in, out.scale, gain, offset, requant)
    except (FoldError, MultiplierError) as e:
        raise RowmixError(f"layer '{name}': cannot fold batch norm / requantization: {e}") from None
    values = negate_values(mac.weight_values().numpy().astype(np.int64), folded.negated)
    table = RowTable(
        scheme=tuple(str(f.scheme) for f in mac.formats),
        bits=np.array([f.bits for f in mac.formats], np.int64),
        scale=scale,
        m0=folded.m0,
        n=folded.n,
        bias=folded.bias,
        negated=folded.negated,
        sensitivity=np.full(rows, np.nan) if sensitivity is None else np.asarray(sensitivity, np.float64),
    )
    k_pad = padded_length(k, 2)
    groups, codes = MacLayer.pack_values(values, table, k_pad)
    a = mac.attrs
    return MacLayer(
        name=name, op=kind, input=src, out=out, k=k, k_pad=k_pad,
        kernel=a.get("kernel", (1, 1)), stride=a.get("stride", (1, 1)), padding=a.get("padding", (0, 0)),
        rows=table, row_groups=groups, codes=codes, bias=folded.bias.astype(np.int32),
    )


def _multiplier(name: str, m: float, requant: RequantSpec) -> tuple[int, int]:
    try:
        return quantize_multiplier(m, requant)
    except MultiplierError as e:
        raise RowmixError(f"op '{name}': {e}") from None


@torch.no_grad()
def export(
    qnet: QuantNet,
    shapes: dict[str, tuple[int, ...]],
    *,
    model: dict[str, Any],
    method: dict[str, Any],
    ratio: dict[str, Any] | None,
    requant: RequantSpec,
    sensitivity: dict[str, np.ndarray] | None = None,
) -> Artifact:
    """Build the artifact of a calibrated QuantNet; `shapes` gives each tensor's shape (no batch)."""
    specs = {"input": _tensor(qnet.tensor_format("input"), shapes["input"])}
    ops: list[Op] = []
    for node in qnet.nodes:
        name, src = node.name, node.inputs[0]
        s_in = specs[src].scale
        if node.kind in ("maxpool", "shortcut", "flatten"):
            out = TensorSpec(tuple(shapes[name]), specs[src].bits, specs[src].signed, s_in)
        else:
            out = _tensor(qnet.tensor_format(name), shapes[name])
        if node.kind in ("conv", "linear"):
            op: Op = _mac_layer(name, node.kind, src, qnet.mac(name), s_in, out, requant,
                                (sensitivity or {}).get(name))
        elif node.kind == "add":
            b = node.inputs[1]
            (m0a, na), (m0b, nb) = (_multiplier(name, specs[x].scale / out.scale, requant) for x in (src, b))
            op = Add(name, (src, b), out, (m0a, m0b), (na, nb))
        elif node.kind == "shortcut":
            op = Shortcut(name, src, out, node.attrs["stride"], (node.attrs["pad"], node.attrs["pad"]))
        elif node.kind == "maxpool":
            op = MaxPool(name, src, out, node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"])
        elif node.kind == "avgpool":
            kh, kw = node.attrs["kernel"]
            m0, n = _multiplier(name, s_in / (out.scale * kh * kw), requant)
            op = AvgPool(name, src, out, node.attrs["kernel"], node.attrs["stride"], m0, n)
        elif node.kind == "global_avgpool":
            _, h, w = specs[src].shape
            m0, n = _multiplier(name, s_in / (out.scale * h * w), requant)
            op = GlobalAvgPool(name, src, out, m0, n)
        else:
            op = Flatten(name, src, out)
        ops.append(op)
        specs[name] = out
    inp = specs["input"]
    return Artifact(
        model=model,
        method=method,
        requant=requant,
        ratio=ratio,
        input=InputSpec(inp.shape, tuple(qnet.mean.flatten().tolist()), tuple(qnet.std.flatten().tolist()), inp),
        ops=tuple(ops),
        output=qnet.output,
        num_classes=int(specs[qnet.output].shape[0]),
        rowmix_version=__version__,
    )
