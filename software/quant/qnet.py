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
import math
from collections.abc import Callable, Sequence

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


def lsq(u: torch.Tensor, v: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """LSQ straight-through estimator on normalised values u = x / s with codes v: the forward value
    is v; inside [lo, hi] the gradient to u is 1 (so dx passes and ds gets v - u), outside it is 0
    (ds gets the clipped level)."""
    inside = (u >= lo) & (u <= hi)
    return torch.where(inside, u + (v - u).detach(), v.detach())


def grad_scaled(p: torch.Tensor, g: float) -> torch.Tensor:
    """p in the forward pass, gradient multiplied by g (LSQ's step-size gradient scale)."""
    return (p - p * g).detach() + p * g


class ActQuant(nn.Module):
    """Per-tensor activation quantizer with a learnable scale (LSQ); identity until a format is set
    or while disabled. Codes come from the shared encoder (clamp(round_half_away(x / s)))."""

    def __init__(self) -> None:
        super().__init__()
        self.bits: int | None = None
        self.signed = False
        self.scale = nn.Parameter(torch.ones(()), requires_grad=False)
        self.enabled = True
        # Share of elements quantized while training (DPQ's random-parameter clipping: the rest pass
        # through unquantized); evaluation always quantizes every element.
        self.train_share = 1.0

    @property
    def fmt(self) -> ActFormat | None:
        return None if self.bits is None else ActFormat(self.bits, self.signed, float(np.float32(self.scale.item())))

    @fmt.setter
    def fmt(self, f: ActFormat | None) -> None:
        if f is None:
            self.bits = None
            return
        self.bits, self.signed = f.bits, f.signed
        with torch.no_grad():
            self.scale.fill_(float(np.float32(f.scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.fmt
        if f is None or not self.enabled:
            return x
        if not torch.is_grad_enabled():
            return quantize_activation(x, f) * f.scale  # exactly the encoder's values
        if self.training and self.train_share < 1.0:
            keep = torch.rand_like(x) < self.train_share
            return torch.where(keep, self._quantize_train(x, f), x)
        return self._quantize_train(x, f)

    def _quantize_train(self, x: torch.Tensor, f: ActFormat) -> torch.Tensor:
        if not (self.training and self.scale.requires_grad):
            # clipped STE: saturated activations pass no gradient (as LSQ and PACT do)
            q = quantize_activation(x, f) * f.scale
            inside = (x >= f.lo * f.scale) & (x <= f.hi * f.scale)
            return torch.where(inside, ste(x, q), q)
        s = grad_scaled(self.scale, 1.0 / math.sqrt(x[0].numel() * f.hi))
        u = x / s
        v = torch.clip(round_half_away(u), f.lo, f.hi)
        return lsq(u, v, f.lo, f.hi) * s

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        assert self.fmt is not None
        return quantize_activation(x, self.fmt)


class QuantMac(nn.Module):
    """Conv2d / Linear with folded-in BN and ReLU, row-wise weight formats and (learnable) scales.

    `deploy=True` evaluates what the exported integer layer computes: BN folded into each row's
    gain and an offset snapped to the accumulator's integer grid (the artifact's bias_int), so the
    fake-quant network and the golden model differ only by the 16-bit multiplier's rounding."""

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
        self.scale = nn.Parameter(torch.ones(rows), requires_grad=False)
        self.register_buffer("sensitivity", torch.full((rows,), float("nan")))
        self.formats: list[RowFormat] = []
        self.quantize_weights = True
        self.deploy = False
        self.s_in = 1.0  # scale of the input activations (set by QuantNet for deploy mode)
        self.folded: tuple[torch.Tensor, torch.Tensor] | None = None  # (gain, offset) from an artifact
        # A method with its own weight parameterization (CSQ's bit planes) trains through this; it
        # writes plain weights, scales and formats back before export.
        self.weight_override: Callable[[], torch.Tensor] | None = None

    @property
    def rows(self) -> int:
        return self.weight.shape[0]

    def set_formats(self, formats: Sequence[RowFormat], scales: np.ndarray | None = None) -> None:
        if len(formats) != self.rows or (scales is not None and len(scales) != self.rows):
            raise ValueError("one format and one scale per row")
        self.formats = list(formats)
        if scales is not None:
            with torch.no_grad():
                self.scale.copy_(torch.as_tensor(np.asarray(scales, np.float32)))

    def _groups(self) -> dict[RowFormat, torch.Tensor]:
        groups: dict[RowFormat, list[int]] = {}
        for r, f in enumerate(self.formats):
            groups.setdefault(f, []).append(r)
        return {f: torch.tensor(rows) for f, rows in groups.items()}

    def weight_values(self) -> torch.Tensor:
        """Integer values v [R, K] (as float) of the current weights, formats and scales."""
        w = self.weight.detach().reshape(self.rows, -1)
        s = self.scale.detach()
        v = torch.zeros_like(w)
        for f, rows in self._groups().items():
            v[rows] = quantize_values(w[rows], s[rows, None], f)
        return v

    def quantized_weight(self) -> torch.Tensor:
        if self.weight_override is not None:
            return self.weight_override()
        if not self.formats or not self.quantize_weights:
            return self.weight
        w = self.weight.reshape(self.rows, -1)
        learn = self.training and self.scale.requires_grad
        s_all = grad_scaled(self.scale, 1.0 / math.sqrt(w.shape[1] * 8)) if learn else self.scale.detach()
        parts = []
        order = []
        for f, rows in self._groups().items():
            s = s_all[rows, None]
            v = quantize_values(w[rows].detach(), s.detach(), f)
            if learn:  # LSQ: gradients to the weights (inside the range) and to the row scales
                parts.append(lsq(w[rows] / s, v, -f.qmax, f.qmax) * s)
            else:
                parts.append(ste(w[rows], s * v))
            order.append(rows)
        w_hat = torch.cat(parts)[torch.argsort(torch.cat(order))]
        return w_hat.reshape(self.weight.shape)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference BN (and conv bias) as per-row gain and offset."""
        b = self.bias if self.bias is not None else torch.zeros(self.rows)
        if self.bn is None:
            return torch.ones(self.rows), b
        bn = self.bn
        gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return gain, bn.bias + gain * (b - bn.running_mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.quantized_weight()
        conv = (lambda b: F.conv2d(x, w, b, self.attrs["stride"], self.attrs["padding"])) if self.kind == "conv" \
            else (lambda b: F.linear(x, w, b))
        if self.deploy:
            gain, offset = self.folded if self.folded is not None else self.affine()
            step = gain.abs() * self.s_in * self.scale  # real value of one accumulator LSB
            offset = round_half_away(offset / step) * step  # the exported integer bias
            shape = (1, -1, 1, 1) if self.kind == "conv" else (1, -1)
            y = conv(None) * gain.reshape(shape) + offset.reshape(shape)
        else:
            y = conv(self.bias)
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
        self.notes: dict[str, str] = {}  # what methods decided (exported with the method's parameters)
        # Residual adds of an artifact in deploy mode: the integer add itself, a table of output codes
        # [codes of a, codes of b] with each input's (scale, lowest code); see fakequant_from_artifact.
        self.add_tables: dict[str, tuple[torch.Tensor, tuple[float, int], tuple[float, int]]] = {}
        self.eval()

    # -- configuration -------------------------------------------------------------------------
    def set_quantized(self, on: bool) -> None:
        for a in self.acts.values():
            a.enabled = on
        for m in self.macs.values():
            m.quantize_weights = on

    def set_deploy(self, on: bool) -> None:
        """Evaluate BN folded with integer-snapped biases, as the exported artifact computes."""
        for node in self.nodes:
            if node.kind in ("conv", "linear"):
                mac = self.mac(node.name)
                mac.deploy = on
                if on:
                    mac.s_in = self.tensor_format(node.inputs[0]).scale

    def set_learning(self, weights_scales: bool, act_scales: bool) -> None:
        """Which quantizer scales QAT learns (LSQ); the network input and the logits keep theirs."""
        for m in self.macs.values():
            m.scale.requires_grad_(weights_scales)
        # the input and the logits keep their scales; residual adds round with theirs directly
        fixed = {"input", key(self.output)} | {key(n.name) for n in self.nodes if n.kind == "add"}
        for k, a in self.acts.items():
            a.scale.requires_grad_(act_scales and a.bits is not None and k not in fixed)

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
            if k in self.add_tables and q.enabled:  # the exported add's 16-bit multipliers, not the scales
                table, (sa, lo_a), (sb, lo_b) = self.add_tables[k]
                ia = (round_half_away(xs[0] / sa) - lo_a).long()
                ib = (round_half_away(xs[1] / sb) - lo_b).long()
                return table[ia, ib] * q.fmt.scale
            if q.fmt is not None and q.enabled:
                # Each input rounded to the output scale, then added and clamped: the golden add.
                s = q.fmt.scale
                summed = round_half_away(xs[0] / s) + round_half_away(xs[1] / s)
                y, out = xs[0] + xs[1], torch.clip(summed, q.fmt.lo, q.fmt.hi) * s
                if not torch.is_grad_enabled():
                    return out
                # clipped STE: the clamp is also the block's ReLU, and dead units must pass no gradient
                return torch.where((y >= q.fmt.lo * s) & (y <= q.fmt.hi * s), ste(y, out), out)
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
