"""Activation formats from calibration data.

Statistics come from the float network; every quantized tensor then gets its format: the signed
network input (8-bit by default; range scale, no clipping), A-bit hidden tensors (unsigned after a
fused ReLU, signed otherwise) with MSE-optimal scales, pooled tensors with a derived scale (at least
8 bits by default, the input's full range onto the output's), and signed 12-bit logits (range
scale, one common scale for all rows).

Why the input and pooled widths are options: an array whose lanes take 4-bit activations (5-bit
operands, the board arrays) runs a whole network only when every tensor a MAC layer reads fits
them: a signed 5-bit input ([-15, 15]) and pooled tensors at the hidden width.

Why 12-bit logits: with the 16-bit requant multiplier (relative error <= 2^-16), a 16-bit output
can miss the real-valued result by up to 0.5 LSB from M0 alone, so golden and fake-quant logits
drift 2-4 LSB apart; at 12 bits the multiplier error stays below 0.04 LSB and the one-LSB contract
holds, while argmax ties stay rare (0.05 % of CIFAR-10 images with ResNet-20 W8A8; 8-bit logits
tie on 0.35 %).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..formats import ActFormat
from .qnet import QuantNet
from .scales import activation_scale, range_scale

INPUT_BITS = 8
POOL_BITS = 8
LOGIT_BITS = 12


@dataclass
class TensorStats:
    shape: tuple[int, ...]
    max_abs: float
    samples: np.ndarray


@torch.no_grad()
def collect(
    qnet: QuantNet,
    images: np.ndarray,
    batch_size: int = 256,
    max_samples: int = 1 << 18,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, TensorStats], dict[str, tuple[int, ...]]]:
    """Float-mode statistics of every tensor that gets its own activation format, and the shape
    (without batch) of every tensor."""
    qnet.set_quantized(False)
    gen = torch.Generator().manual_seed(seed)
    names = ["input"] + [n.name for n in qnet.nodes if qnet.act(n.name) is not None]
    per_batch = max(1, max_samples // max(1, -(-len(images) // batch_size)))
    shapes, maxes, samples = {}, dict.fromkeys(names, 0.0), {n: [] for n in names}
    try:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start : start + batch_size])
            values = qnet(x, keep=True)
            values["input"] = qnet.preprocess(x)
            shapes.update((k, tuple(v.shape[1:])) for k, v in values.items())
            for name in names:
                t = values[name]
                flat = t.reshape(-1)
                maxes[name] = max(maxes[name], float(flat.abs().max()))
                idx = torch.randint(len(flat), (min(per_batch, len(flat)),), generator=gen)
                samples[name].append(flat[idx].numpy())
            if progress is not None:
                progress(start + len(x))
    finally:
        qnet.set_quantized(True)
    return {n: TensorStats(shapes[n], maxes[n], np.concatenate(samples[n])) for n in names}, shapes


def set_activation_formats(qnet: QuantNet, stats: dict[str, TensorStats], act_bits: int,
                           scale_of=activation_scale, *, input_bits: int = INPUT_BITS,
                           pool_bits: int = POOL_BITS) -> None:
    """`scale_of(samples, bits, signed)` picks hidden tensors' scales (the method's choice)."""
    qnet.acts["input"].fmt = ActFormat(input_bits, True, range_scale(stats["input"].max_abs, input_bits, True))
    for node in qnet.nodes:
        q = qnet.act(node.name)
        if q is None:
            continue
        st = stats[node.name]
        if node.name == qnet.output:
            q.fmt = ActFormat(LOGIT_BITS, True, range_scale(st.max_abs, LOGIT_BITS, True))
        elif node.kind in ("avgpool", "global_avgpool"):
            src = qnet.tensor_format(node.inputs[0])
            bits = max(src.bits, pool_bits)
            probe = ActFormat(bits, src.signed, 1.0)
            q.fmt = ActFormat(bits, src.signed, float(np.float32(src.scale * src.hi / probe.hi)))
        else:
            signed = not node.relu
            q.fmt = ActFormat(act_bits, signed, scale_of(st.samples, act_bits, signed))
