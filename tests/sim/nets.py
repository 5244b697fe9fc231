"""Small random networks for RTL tests: input -> conv -> global average pool -> flatten -> linear,
with random row formats (all three groups), written as real artifacts."""

from __future__ import annotations

import dataclasses

import numpy as np

from rowmix.artifact import Artifact, Flatten, GlobalAvgPool, InputSpec, TensorSpec, write_artifact
from rowmix.formats import RequantSpec, quantize_multiplier

from ..golden.layers import make_layer


def random_network(rng, path, *, c=3, hw=(5, 5), r=9, classes=6, conv_kw=None) -> Artifact:
    conv_kw = {"kernel": (3, 3), "padding": (1, 1), "stride": (1, 1), **(conv_kw or {})}
    conv, src = make_layer(rng, c=c, r=r, hw=hw, in_bits=8, in_signed=True, out_bits=4, **conv_kw)
    conv = dataclasses.replace(conv, name="conv", input="input")
    inp = InputSpec(src.shape, (0.0,) * c, (1.0,) * c, TensorSpec(src.shape, 8, True, 0.1))
    oh, ow = conv.out.shape[1:]
    pooled = TensorSpec((r, 1, 1), 8, False, float(np.float32(conv.out.scale * 15 / 255)))
    m0, n = quantize_multiplier(conv.out.scale / (pooled.scale * oh * ow), RequantSpec())
    gap = GlobalAvgPool("gap", "conv", pooled, m0, n)
    flat = Flatten("flatten", "gap", TensorSpec((r,), 8, False, pooled.scale))
    fc, _ = make_layer(rng, op="linear", c=r, r=classes, in_bits=8, in_signed=False, out_bits=12, out_signed=True)
    fc = dataclasses.replace(fc, name="fc", input="flatten")
    art = Artifact(model={"name": "random"}, method={"name": "random", "params": {}}, requant=RequantSpec(),
                   ratio=None, input=inp, ops=(conv, gap, flat, fc), output="fc", num_classes=classes)
    write_artifact(art, path)
    return art


def random_images(rng, art: Artifact, n: int) -> np.ndarray:
    """Float images whose input codes cover the whole signed 8-bit range (x = u * scale exactly)."""
    u = rng.integers(-127, 128, size=(n, *art.input.shape))
    return (u * np.float32(art.input.tensor.scale)).astype(np.float32)
