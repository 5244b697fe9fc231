"""The golden model: the artifact's integer network run on whole datasets in batches."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from ..artifact import Add, Artifact, AvgPool, Flatten, GlobalAvgPool, MacLayer, MaxPool, Shortcut
from . import ops


@dataclass(frozen=True)
class GoldenResult:
    predictions: np.ndarray  # int64 [N], argmax of the logits (lowest index on ties)
    logits: np.ndarray  # int32 [N, classes], the output op's requantized codes
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # kept op outputs, NCHW / NF, int32
    accumulators: dict[str, np.ndarray] = field(default_factory=dict)  # kept MAC accumulators, int64


def _nchw(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def forward(
    art: Artifact, u: np.ndarray, keep: Collection[str] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the integer graph on quantized inputs u [N, H, W, C] (or [N, F]).

    Returns the output codes and the kept tensors / MAC accumulators (channels-first, like torch).
    Intermediate tensors are dropped as soon as no later op reads them."""
    last_use = {}
    for i, op in enumerate(art.ops):
        for src in op.inputs:
            last_use[src] = i
    values = {art.input.name: u}
    tensors, accs = {}, {}
    if art.input.name in keep:
        tensors[art.input.name] = _nchw(u)
    spec = art.requant
    for i, op in enumerate(art.ops):
        x = values[op.inputs[0]]
        if isinstance(op, MacLayer):
            acc = ops.mac_accumulate(op, x, art.tensors[op.input])
            y = ops.mac_output(op, acc, spec)
            if op.name in keep:
                accs[op.name] = _nchw(acc)
        elif isinstance(op, Add):
            y = ops.residual_add(op, x, values[op.inputs[1]], spec)
        elif isinstance(op, Shortcut):
            y = ops.shortcut(op, x)
        elif isinstance(op, MaxPool):
            y = ops.maxpool(op, x, art.tensors[op.input])
        elif isinstance(op, AvgPool):
            y = ops.avgpool(op, x, spec)
        elif isinstance(op, GlobalAvgPool):
            y = ops.global_avgpool(op, x, spec)
        elif isinstance(op, Flatten):
            y = ops.flatten(x)
        else:  # pragma: no cover - the artifact loader admits no other op
            raise TypeError(op)
        values[op.name] = y
        if op.name in keep:
            tensors[op.name] = _nchw(y)
        for src in op.inputs:
            if last_use[src] == i and src != art.output:
                values.pop(src, None)
    return values[art.output], tensors, accs


def run(
    art: Artifact,
    images: np.ndarray,
    *,
    batch_size: int = 256,
    keep: Collection[str] | bool = False,
    progress: Callable[[int], None] | None = None,
) -> GoldenResult:
    """Score float images [N, C, H, W] (raw range, before normalisation) through the integer network.

    `keep=True` keeps every op's output and every MAC accumulator (memory grows with N); a collection
    keeps only the named ones. `progress(k)` is called after each batch with the images done so far.
    """
    names = {art.input.name, *(op.name for op in art.ops)} if keep is True else set(keep or ())
    logits, tensors, accs = [], {}, {}
    for start in range(0, len(images), batch_size):
        u = ops.quantize_input(images[start : start + batch_size], art.input)
        out, kept, kept_acc = forward(art, u, names)
        logits.append(out.reshape(len(u), -1))
        for store, new in ((tensors, kept), (accs, kept_acc)):
            for k, v in new.items():
                store.setdefault(k, []).append(v)
        if progress is not None:
            progress(start + len(u))
    z = np.concatenate(logits) if logits else np.zeros((0, art.num_classes), np.int32)
    return GoldenResult(
        predictions=z.argmax(axis=1),
        logits=z,
        tensors={k: np.concatenate(v) for k, v in tensors.items()},
        accumulators={k: np.concatenate(v) for k, v in accs.items()},
    )


def accuracy(result: GoldenResult, labels: np.ndarray) -> float:
    return float((result.predictions == np.asarray(labels)).mean()) if len(labels) else float("nan")
