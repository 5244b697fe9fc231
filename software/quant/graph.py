"""torch.fx capture of a float model into the op list of the artifact graph.

Supported: Conv2d (groups 1) and Linear, each optionally followed by BatchNorm and ReLU (folded into
the layer), residual `+` (optionally followed by ReLU), max / average / global-average pooling,
flatten, and ResNet option-A shortcuts. Anything else is reported with the node that uses it, so a
user learns at once which part of their model rowmix cannot run.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import RowmixError
from ..models.resnet_cifar import OptionAShortcut


class CaptureError(RowmixError):
    pass


@dataclass
class QNode:
    """One op of the integer graph, with the float modules it was made from."""

    name: str
    kind: str  # conv | linear | add | shortcut | maxpool | avgpool | global_avgpool | flatten
    inputs: list[str]
    module: nn.Module | None = None  # Conv2d / Linear / pooling / shortcut module
    bn: nn.Module | None = None
    relu: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, OptionAShortcut) or super().is_leaf_module(m, qualname)


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


_RELU_FUNCS = {F.relu, torch.relu}
_ADD_FUNCS = {operator.add, operator.iadd, torch.add}
_FLATTEN_FUNCS = {torch.flatten}


def capture(model: nn.Module) -> tuple[list[QNode], str]:
    """Trace `model` and return its ops in execution order plus the name of the output op."""
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for untraceable Python control flow
        raise CaptureError(f"torch.fx cannot trace the model: {type(e).__name__}: {e}") from None
    modules = dict(model.named_modules())
    nodes: list[QNode] = []
    alias: dict[fx.Node, str] = {}  # fx node -> name of the QNode holding its value
    by_name: dict[str, QNode] = {}
    out_name: str | None = None

    def src(n: Any, where: fx.Node) -> str:
        if not isinstance(n, fx.Node) or n not in alias:
            raise CaptureError(f"node '{where.name}' ({where.format_node()}): input {n!r} is not a tensor rowmix tracks")
        return alias[n]

    def fn_name(fx_node: fx.Node, base: str) -> str:
        """`layer1.0.add` for an add inside module layer1.0; numbered if the scope has several."""
        stack = fx_node.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack.values()))[0] if stack else ""
        name = f"{scope}.{base}" if scope else base
        unique, i = name, 1
        while unique in by_name:
            unique, i = f"{name}_{i}", i + 1
        return unique

    def add_node(fx_node: fx.Node, q: QNode) -> None:
        nodes.append(q)
        by_name[q.name] = q
        alias[fx_node] = q.name

    def fuse(fx_node: fx.Node, what: str) -> QNode | None:
        """The QNode `fx_node`'s input comes from, if `what` (bn / relu) can fold into it."""
        prev = fx_node.args[0] if fx_node.args else None
        if not isinstance(prev, fx.Node) or prev not in alias:
            return None
        q = by_name[alias[prev]]
        if len(prev.users) != 1 or q.relu or alias[prev] != q.name:
            return None
        if what == "bn" and (q.kind not in ("conv", "linear") or q.bn is not None):
            return None
        if what == "relu" and q.kind not in ("conv", "linear", "add"):
            return None
        return q

    for n in graph.nodes:
        if n.op == "placeholder":
            if alias:
                raise CaptureError(f"model takes more than one input ('{n.name}')")
            alias[n] = "input"
        elif n.op == "output":
            out_name = src(n.args[0], n)
        elif n.op == "call_module":
            m = modules[n.target]
            name = str(n.target)
            if isinstance(m, nn.Conv2d):
                if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
                    raise CaptureError(f"conv '{name}': only groups=1, dilation=1, numeric zero padding are supported")
                add_node(n, QNode(name, "conv", [src(n.args[0], n)], module=m, attrs={
                    "kernel": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding)}))
            elif isinstance(m, nn.Linear):
                add_node(n, QNode(name, "linear", [src(n.args[0], n)], module=m))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                q = fuse(n, "bn")
                if q is None:
                    raise CaptureError(f"batch norm '{name}' must directly follow a conv or linear layer whose output nothing else reads")
                q.bn = m
                alias[n] = q.name
            elif isinstance(m, nn.ReLU):
                q = fuse(n, "relu")
                if q is None:
                    raise CaptureError(f"ReLU '{name}' must directly follow a conv, linear or add")
                q.relu = True
                alias[n] = q.name
            elif isinstance(m, (nn.Identity, nn.Dropout)):
                alias[n] = src(n.args[0], n)
            elif isinstance(m, OptionAShortcut):
                add_node(n, QNode(name, "shortcut", [src(n.args[0], n)], module=m, attrs={"stride": m.stride, "pad": m.pad}))
            elif isinstance(m, nn.MaxPool2d):
                if _pair(m.dilation) != (1, 1) or m.ceil_mode:
                    raise CaptureError(f"max pool '{name}': dilation and ceil_mode are not supported")
                add_node(n, QNode(name, "maxpool", [src(n.args[0], n)], module=m, attrs={
                    "kernel": _pair(m.kernel_size), "stride": _pair(m.stride or m.kernel_size), "padding": _pair(m.padding)}))
            elif isinstance(m, nn.AvgPool2d):
                if _pair(m.padding) != (0, 0) or m.ceil_mode:
                    raise CaptureError(f"average pool '{name}': padding and ceil_mode are not supported")
                add_node(n, QNode(name, "avgpool", [src(n.args[0], n)], module=m, attrs={
                    "kernel": _pair(m.kernel_size), "stride": _pair(m.stride or m.kernel_size)}))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                if _pair(m.output_size) != (1, 1):
                    raise CaptureError(f"adaptive pool '{name}': only output size 1 (global average) is supported")
                add_node(n, QNode(name, "global_avgpool", [src(n.args[0], n)], module=m))
            elif isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise CaptureError(f"flatten '{name}': only start_dim=1, end_dim=-1 is supported")
                add_node(n, QNode(name, "flatten", [src(n.args[0], n)]))
            else:
                raise CaptureError(f"module '{name}' ({type(m).__name__}) is not supported")
        elif n.op in ("call_function", "call_method"):
            fn = n.target
            if fn in _RELU_FUNCS or fn == "relu" or fn == "relu_":
                q = fuse(n, "relu")
                if q is None:
                    raise CaptureError(f"relu '{n.name}' must directly follow a conv, linear or add")
                q.relu = True
                alias[n] = q.name
            elif fn in _ADD_FUNCS or fn in ("add", "add_"):
                if len(n.args) != 2 or n.kwargs:
                    raise CaptureError(f"add '{n.name}': only `a + b` of two tensors is supported")
                add_node(n, QNode(fn_name(n, "add"), "add", [src(n.args[0], n), src(n.args[1], n)]))
            elif fn in _FLATTEN_FUNCS or fn == "flatten":
                start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
                if start != 1:
                    raise CaptureError(f"flatten '{n.name}': only flatten(x, 1) is supported")
                add_node(n, QNode(fn_name(n, "flatten"), "flatten", [src(n.args[0], n)]))
            else:
                raise CaptureError(f"operation '{n.name}' ({getattr(fn, '__name__', fn)}) is not supported")
        else:
            raise CaptureError(f"node '{n.name}' ({n.op}) is not supported")
    if out_name is None or out_name == "input":
        raise CaptureError("model has no output op")
    return nodes, out_name
