"""The torch fake-quant network: the captured graph with row-wise weight quantizers and per-tensor
activation quantizers, using the same encoders as the exporter and the golden model.

Each op mirrors its integer counterpart in the golden model: MAC layers quantize weights row by row
(`w_hat = scale_r * v_r`, v from `formats.quantize_values`), apply BN and ReLU in float and quantize
their output; a residual add quantizes each input to the output scale before adding (the golden
model's two roundings); pools average in float and quantize. The two agree to one output LSB per op
(the remaining difference is the 16-bit multiplier and the integer bias rounding). Gradients pass
straight through every rounding, so the same network trains (QAT) in later methods.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..formats import ActFormat, RowFormat, normalize, quantize_activation, quantize_values, round_half_away
from .graph import QNode, capture


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward q, backward identity."""
    return x + (q - x).detach()


def key(name: str) -> str:
    return name.replace(".", "__")


class ActQuant(nn.Module):
    """Per-tensor activation quantizer; identity until a format is set or while disabled."""

    def __init__(self) -> None:
        super().__init__()
        self.fmt: ActFormat | None = None
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fmt is None or not self.enabled:
            return x
        return ste(x, quantize_activation(x, self.fmt) * self.fmt.scale)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        assert self.fmt is not None
        return quantize_activation(x, self.fmt)


class QuantMac(nn.Module):
    """Conv2d / Linear with folded-in BN and ReLU, row-wise weight formats and scales."""

    def __init__(self, node: QNode) -> None:
        super().__init__()
        m = node.module
        self.kind = node.kind
        self.attrs = dict(node.attrs)
        self.weight = nn.Parameter(m.weight.detach().clone())
        self.bias = None if m.bias is None else nn.Parameter(m.bias.detach().clone())
        self.bn = copy.deepcopy(node.bn) if node.bn is not None else None
        self.relu = node.relu
        rows = self.weight.shape[0]
        self.register_buffer("scale", torch.ones(rows))
        self.formats: list[RowFormat] = []
        self.quantize_weights = True

    @property
    def rows(self) -> int:
        return self.weight.shape[0]

    def set_formats(self, formats: Sequence[RowFormat], scales: np.ndarray) -> None:
        if len(formats) != self.rows or len(scales) != self.rows:
            raise ValueError("one format and one scale per row")
        self.formats = list(formats)
        self.scale.copy_(torch.as_tensor(np.asarray(scales, np.float32)))

    def _groups(self) -> dict[RowFormat, torch.Tensor]:
        groups: dict[RowFormat, list[int]] = {}
        for r, f in enumerate(self.formats):
            groups.setdefault(f, []).append(r)
        return {f: torch.tensor(rows) for f, rows in groups.items()}

    def weight_values(self) -> torch.Tensor:
        """Integer values v [R, K] (as float) of the current weights, formats and scales."""
        w = self.weight.detach().reshape(self.rows, -1)
        v = torch.zeros_like(w)
        for f, rows in self._groups().items():
            v[rows] = quantize_values(w[rows], self.scale[rows, None], f)
        return v

    def quantized_weight(self) -> torch.Tensor:
        if not self.formats or not self.quantize_weights:
            return self.weight
        w = self.weight.reshape(self.rows, -1)
        w_hat = torch.zeros_like(w)
        for f, rows in self._groups().items():
            s = self.scale[rows, None]
            w_hat[rows] = s * quantize_values(w[rows], s, f)
        return ste(self.weight, w_hat.reshape(self.weight.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.quantized_weight()
        if self.kind == "conv":
            y = F.conv2d(x, w, self.bias, self.attrs["stride"], self.attrs["padding"])
        else:
            y = F.linear(x, w, self.bias)
        if self.bn is not None:
            y = self.bn(y)
        return F.relu(y) if self.relu else y


class QuantNet(nn.Module):
    """Fake-quant executable of a captured graph. `quantized=False` runs it in float."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        model = copy.deepcopy(model).eval()
        self.nodes, self.output = capture(model)
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(c, 1, 1))
        self.macs = nn.ModuleDict()
        self.other = nn.ModuleDict()
        self.acts = nn.ModuleDict({"input": ActQuant()})
        for node in self.nodes:
            if node.kind in ("conv", "linear"):
                self.macs[key(node.name)] = QuantMac(node)
            elif node.module is not None:
                self.other[key(node.name)] = node.module
            if node.kind not in ("maxpool", "shortcut", "flatten"):  # these keep their input's codes
                self.acts[key(node.name)] = ActQuant()
        self.by_name = {n.name: n for n in self.nodes}
        self.eval()

    # -- configuration -------------------------------------------------------------------------
    def set_quantized(self, on: bool) -> None:
        for a in self.acts.values():
            a.enabled = on
        for m in self.macs.values():
            m.quantize_weights = on

    def mac(self, name: str) -> QuantMac:
        return self.macs[key(name)]

    def act(self, name: str) -> ActQuant | None:
        return self.acts[key(name)] if key(name) in self.acts else None

    def tensor_format(self, name: str) -> ActFormat:
        """Format of the integer tensor an op produces (pass-through ops inherit their input's)."""
        while (a := self.act(name)) is None:
            name = self.by_name[name].inputs[0]
        assert a.fmt is not None, f"tensor '{name}' is not calibrated"
        return a.fmt

    # -- execution -----------------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return self.acts["input"](normalize(images, self.mean, self.std))

    def node_forward(self, node: QNode, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """One op on (dequantized) inputs; the output is dequantized too."""
        k, x = key(node.name), xs[0]
        if node.kind in ("conv", "linear"):
            y = self.macs[k](x)
        elif node.kind == "add":
            q = self.acts[k]
            if q.fmt is not None and q.enabled:
                # Each input rounded to the output scale, then added and clamped: the golden add.
                s = q.fmt.scale
                summed = round_half_away(xs[0] / s) + round_half_away(xs[1] / s)
                return ste(xs[0] + xs[1], torch.clip(summed, q.fmt.lo, q.fmt.hi) * s)
            y = x + xs[1]
            y = F.relu(y) if node.relu else y
        elif node.kind == "global_avgpool":
            y = x.mean(dim=(2, 3), keepdim=True)
        elif node.kind == "flatten":
            return torch.flatten(x, 1)
        else:  # maxpool, avgpool, shortcut: their float modules
            y = self.other[k](x)
        q = self.acts[k] if k in self.acts else None
        return q(y) if q is not None else y

    def forward(self, images: torch.Tensor, keep: bool = False):
        values = {"input": self.preprocess(images)}
        for node in self.nodes:
            values[node.name] = self.node_forward(node, [values[i] for i in node.inputs])
        return values if keep else values[self.output]
