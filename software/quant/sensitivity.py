"""Per-row Hessian sensitivity for RMSMP-style precision assignment (notes/algorithms.md 7b).

Hutchinson's estimator of each row's Hessian-block trace, all rows of all layers at once:
`tr(H_rr) = E[z_r^T (H z)_r]` for Rademacher z, one Hessian-vector product (double backprop) per
sample for the whole network. Seeded, batched over calibration images, model in eval mode (BN uses
its running statistics), so the ranking is deterministic."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..formats import FIXED4, quantize_values
from .qnet import QuantNet
from .scales import weight_scales


def hutchinson_row_traces(qnet: QuantNet, images: np.ndarray, labels: np.ndarray, *, samples: int = 32,
                          batch: int = 128, batches: int = 2, seed: int = 0,
                          progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Mean diagonal curvature tr(H_rr) / K of every row of every MAC layer (float network)."""
    was_training = qnet.training
    qnet.eval()
    qnet.set_quantized(False)
    names = [n.name for n in qnet.nodes if n.kind in ("conv", "linear")]
    params = [qnet.mac(n).weight for n in names]
    gen = torch.Generator().manual_seed(seed)
    traces = [torch.zeros(p.shape[0], dtype=torch.float64) for p in params]
    n_batches = max(1, min(batches, -(-len(images) // batch)))
    done = 0
    try:
        for b in range(n_batches):
            x = torch.from_numpy(images[b * batch : (b + 1) * batch])
            y = torch.from_numpy(labels[b * batch : (b + 1) * batch])
            loss = F.cross_entropy(qnet(x), y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            for _ in range(samples):
                zs = [torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1 for p in params]
                hz = torch.autograd.grad(grads, params, grad_outputs=zs, retain_graph=True)
                for t, z, h in zip(traces, zs, hz):
                    t += (z * h).reshape(z.shape[0], -1).sum(dim=1).double()
                done += 1
                if progress is not None:
                    progress(done)
    finally:
        qnet.set_quantized(True)
        qnet.train(was_training)
    total = n_batches * samples
    return {n: (t / total / p[0].numel()).numpy() for n, t, p in zip(names, traces, params)}


def rmsmp_scores(qnet: QuantNet, traces: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """score_r = (tr(H_rr) / K) * ||w_r - Q_F4(w_r)||^2: the expected loss increase of quantizing the
    row to 4 bits (HAWQ-v2's Omega, per row)."""
    scores = {}
    for name, t in traces.items():
        w = qnet.mac(name).weight.detach().reshape(len(t), -1).numpy()
        s = weight_scales(w, FIXED4)
        err = ((w - s[:, None] * quantize_values(w, s[:, None], FIXED4)) ** 2).sum(axis=1)
        scores[name] = np.maximum(t, 0) * err
    return scores
