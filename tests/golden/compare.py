"""Layer-by-layer comparison of the golden model with the torch fake-quant network.

Each op of the fake-quant network is fed the golden model's own (dequantized) inputs, so one
comparison measures one op's arithmetic, not drift accumulated upstream."""

from __future__ import annotations

import numpy as np
import torch

from rowmix import golden
from rowmix.artifact import Artifact
from rowmix.quant import QuantNet


@torch.no_grad()
def layer_differences(art: Artifact, fq: QuantNet, images: np.ndarray) -> dict[str, int]:
    """Largest |golden - fake-quant| output code of every op that requantizes."""
    res = golden.run(art, images, keep=True)
    diffs = {}
    for node in fq.nodes:
        q = fq.act(node.name)
        if q is None:  # flatten / shortcut / maxpool move codes without arithmetic
            continue
        xs = [torch.from_numpy(res.tensors[i].astype(np.float32) * np.float32(art.tensors[i].scale)) for i in node.inputs]
        y = fq.node_forward(node, xs)
        codes = np.rint(y.numpy() / np.float32(q.fmt.scale)).astype(np.int64)
        diffs[node.name] = int(np.abs(codes - res.tensors[node.name]).max())
    return diffs
