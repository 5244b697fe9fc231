"""The golden model: the artifact's integer network run on whole datasets in batches."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..artifact import Add, Artifact, AvgPool, Flatten, GlobalAvgPool, MacLayer, MaxPool, Shortcut
from . import ops
from .workspace import Workspace


@dataclass(frozen=True)
class GoldenResult:
    predictions: np.ndarray  # int64 [N], argmax of the logits (lowest index on ties)
    logits: np.ndarray  # int32 [N, classes], the output op's requantized codes
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # kept op outputs, NCHW / NF, int32
    accumulators: dict[str, np.ndarray] = field(default_factory=dict)  # kept MAC accumulators, int64


def _nchw(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int32) if x.dtype.kind == "f" else x
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def plans(art: Artifact) -> dict[str, ops.MacPlan]:
    return {op.name: ops.plan(op, art.tensors[op.input], art.requant) for op in art.mac_layers}


def add_tables(art: Artifact) -> dict[str, np.ndarray]:
    return {op.name: ops.add_table(op, *(art.tensors[i] for i in op.inputs), art.requant)
            for op in art.ops if isinstance(op, Add)}


def apply_op(art: Artifact, op, values: dict[str, np.ndarray], mac_plans: dict[str, ops.MacPlan],
             tables: dict[str, np.ndarray], ws: Workspace, acc_out: np.ndarray | None = None) -> np.ndarray:
    """One op of the integer graph on channel-last tensors `values` (by tensor name); the host of
    the RTL simulation calls this for everything that is not a MAC layer."""
    spec, x = art.requant, values[op.inputs[0]]
    if isinstance(op, MacLayer):
        return ops.mac_layer(op, x, mac_plans[op.name], spec, acc_out, ws)
    if isinstance(op, Add):
        a, b = (art.tensors[i] for i in op.inputs)
        return ops.residual_add(op, x, values[op.inputs[1]], a, b, spec, tables.get(op.name), ws)
    if isinstance(op, Shortcut):
        return ops.shortcut(op, x)
    if isinstance(op, MaxPool):
        return ops.maxpool(op, x, art.tensors[op.input])
    if isinstance(op, AvgPool):
        return ops.avgpool(op, x, spec)
    if isinstance(op, GlobalAvgPool):
        return ops.global_avgpool(op, x, spec)
    if isinstance(op, Flatten):
        return ops.flatten(x)
    raise TypeError(op)  # pragma: no cover - the artifact loader admits no other op


def forward(
    art: Artifact,
    u: np.ndarray,
    keep: Collection[str] = (),
    mac_plans: dict[str, ops.MacPlan] | None = None,
    ws: Workspace | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the integer graph on quantized inputs u [N, H, W, C] (or [N, F]).

    Returns the output codes (int32) and the kept tensors (int32) and MAC accumulators (int64),
    channels-first like torch. Intermediate tensors are dropped as soon as no later op reads them."""
    mac_plans = mac_plans or plans(art)
    ws = ws or Workspace()
    last_use = {}
    for i, op in enumerate(art.ops):
        for src in op.inputs:
            last_use[src] = i
    values = {art.input.name: np.asarray(u, np.float32)}
    tensors, accs = {}, {}
    if art.input.name in keep:
        tensors[art.input.name] = _nchw(u)
    tables = add_tables(art)
    for i, op in enumerate(art.ops):
        acc = np.empty(ops._out_shape(op, len(u)), np.int64) if isinstance(op, MacLayer) and op.name in keep else None
        y = apply_op(art, op, values, mac_plans, tables, ws, acc)
        if acc is not None:
            accs[op.name] = _nchw(acc)
        values[op.name] = y
        if op.name in keep:
            tensors[op.name] = _nchw(y)
        for src in op.inputs:
            if last_use[src] == i and src != art.output and src in values:
                dead = values.pop(src)
                if not any(v is dead or v.base is dead for v in values.values()):  # flatten may alias
                    ws.give(dead)  # kept tensors were copied (to int32) above
    return values[art.output].astype(np.int32), tensors, accs


def _blas_threads(n: int):
    """Limit BLAS to n threads while the golden model parallelises over batches itself (the
    element-wise passes are single-threaded in NumPy, so threads over batches use both cores for
    them too). threadpoolctl is optional: without it BLAS keeps its own threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def run(
    art: Artifact,
    images: np.ndarray,
    *,
    batch_size: int = 64,
    keep: Collection[str] | bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> GoldenResult:
    """Score float images [N, C, H, W] (raw range, before normalisation) through the integer network.

    Batches of `batch_size` images run on `workers` threads (default: one per CPU, at most 8).
    `keep=True` keeps every op's output and every MAC accumulator (memory grows with N); a
    collection keeps only the named ones. `progress(k)` is called with the images done so far.
    """
    names = {art.input.name, *(op.name for op in art.ops)} if keep is True else set(keep or ())
    workers = max(1, min(workers or os.cpu_count() or 1, 8))
    mac_plans = plans(art)
    local = threading.local()

    def batch(start: int):
        if not hasattr(local, "ws"):
            local.ws = Workspace()
        u = ops.quantize_input(images[start : start + batch_size], art.input)
        return forward(art, u, names, mac_plans, local.ws)

    logits, tensors, accs, done = [], {}, {}, 0
    starts = range(0, len(images), batch_size)
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(starts) > 1:
            stack.enter_context(_blas_threads(1))
            results = stack.enter_context(ThreadPoolExecutor(workers)).map(batch, starts)
        else:
            results = map(batch, starts)
        for out, kept, kept_acc in results:
            logits.append(out.reshape(len(out), -1))
            for store, new in ((tensors, kept), (accs, kept_acc)):
                for k, v in new.items():
                    store.setdefault(k, []).append(v)
            done += len(out)
            if progress is not None:
                progress(done)
    z = np.concatenate(logits) if logits else np.zeros((0, art.num_classes), np.int32)
    return GoldenResult(
        predictions=z.argmax(axis=1),
        logits=z,
        tensors={k: np.concatenate(v) for k, v in tensors.items()},
        accumulators={k: np.concatenate(v) for k, v in accs.items()},
    )


def accuracy(result: GoldenResult, labels: np.ndarray) -> float:
    return float((result.predictions == np.asarray(labels)).mean()) if len(labels) else float("nan")
