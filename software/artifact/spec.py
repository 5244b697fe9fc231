"""The artifact as Python objects: the integer network every later stage reads.

Frozen dataclasses mirror manifest.json op for op; MAC layers also carry their packed codes and biases
from weights.npz. Shapes exclude the batch axis: [C, H, W] for feature maps, [F] for vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from ..formats import (
    CONTAINER_BITS,
    GROUPS,
    ActFormat,
    RequantSpec,
    RowFormat,
    codes_to_values,
    pack,
    unpack,
    values_to_codes,
)

FORMAT = "rowmix-artifact"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TensorSpec:
    """An integer activation tensor: shape (no batch axis) and its activation format."""

    shape: tuple[int, ...]
    bits: int
    signed: bool
    scale: float

    @property
    def fmt(self) -> ActFormat:
        return ActFormat(self.bits, self.signed, self.scale)

    @property
    def relu(self) -> bool:
        """An unsigned tensor is produced with a fused ReLU (its clamp starts at 0)."""
        return not self.signed


@dataclass(frozen=True)
class InputSpec:
    """Preprocessing of the float image: `(x - mean) / std` per channel, then signed quantization."""

    shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    tensor: TensorSpec
    name: str = "input"


@dataclass(frozen=True)
class RowTable:
    """Per-row parameters of one MAC layer, columnar (index = output channel)."""

    scheme: tuple[str, ...]
    bits: np.ndarray
    scale: np.ndarray
    m0: np.ndarray
    n: np.ndarray
    bias: np.ndarray
    negated: np.ndarray
    sensitivity: np.ndarray  # NaN where the method gives none

    def __len__(self) -> int:
        return len(self.scheme)

    def format(self, r: int) -> RowFormat:
        return RowFormat(self.scheme[r], int(self.bits[r]))

    @cached_property
    def qmax(self) -> np.ndarray:
        """Largest legal |v| of every row."""
        return np.array([self.format(r).qmax for r in range(len(self))], dtype=np.int64)

    @cached_property
    def group(self) -> tuple[str, ...]:
        return tuple(self.format(r).group for r in range(len(self)))


@dataclass(frozen=True)
class MacLayer:
    """A conv (K order c_in, kh, kw) or linear layer with row-wise formats."""

    name: str
    op: Literal["conv", "linear"]
    input: str
    out: TensorSpec
    k: int
    k_pad: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    rows: RowTable
    row_groups: Mapping[str, tuple[int, ...]]
    codes: Mapping[str, np.ndarray]  # packed, per storage group, [len(group), bytes]
    bias: np.ndarray  # int32 [R], as stored in weights.npz

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)

    @property
    def r(self) -> int:
        return len(self.rows)

    @cached_property
    def group_codes(self) -> dict[str, np.ndarray]:
        """Unpacked container codes per group, [len(group), k_pad] (padding included)."""
        return {g: unpack(self.codes[g], CONTAINER_BITS[g], self.k_pad) for g in GROUPS}

    @cached_property
    def values(self) -> np.ndarray:
        """Integer weight values [R, K] in output-channel order (negation already applied)."""
        v = np.zeros((self.r, self.k), dtype=np.int64)
        for g in GROUPS:
            rows = list(self.row_groups[g])
            if rows:
                v[rows] = codes_to_values(self.group_codes[g][:, : self.k], g)
        return v

    @staticmethod
    def pack_values(values: np.ndarray, rows: RowTable, k_pad: int) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
        """Split [R, K] integer values into the three storage groups: (row_groups, packed codes)."""
        groups = {g: tuple(r for r in range(len(rows)) if rows.group[r] == g) for g in GROUPS}
        packed = {}
        for g, members in groups.items():
            codes = np.zeros((len(members), values.shape[1]), dtype=np.uint8)
            for i, r in enumerate(members):
                codes[i] = values_to_codes(values[r], rows.format(r))
            packed[g] = pack(codes, CONTAINER_BITS[g], k_pad)
        return groups, packed


@dataclass(frozen=True)
class Add:
    name: str
    inputs: tuple[str, str]
    out: TensorSpec
    m0: tuple[int, int]
    n: tuple[int, int]
    op: str = field(default="add", init=False)


@dataclass(frozen=True)
class Shortcut:
    """ResNet option A: spatial subsampling by `stride`, then zero channels around the input's."""

    name: str
    input: str
    out: TensorSpec
    stride: int
    pad_channels: tuple[int, int]
    op: str = field(default="shortcut", init=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True)
class MaxPool:
    name: str
    input: str
    out: TensorSpec
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    op: str = field(default="maxpool", init=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True)
class AvgPool:
    name: str
    input: str
    out: TensorSpec
    kernel: tuple[int, int]
    stride: tuple[int, int]
    m0: int
    n: int
    op: str = field(default="avgpool", init=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True)
class GlobalAvgPool:
    name: str
    input: str
    out: TensorSpec
    m0: int
    n: int
    op: str = field(default="global_avgpool", init=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True)
class Flatten:
    name: str
    input: str
    out: TensorSpec
    op: str = field(default="flatten", init=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


Op = MacLayer | Add | Shortcut | MaxPool | AvgPool | GlobalAvgPool | Flatten


@dataclass(frozen=True)
class Artifact:
    """A quantized integer network: what the front end exports and every later stage consumes."""

    model: Mapping[str, Any]
    method: Mapping[str, Any]
    requant: RequantSpec
    ratio: Mapping[str, Any] | None
    input: InputSpec
    ops: tuple[Op, ...]
    output: str
    num_classes: int
    rowmix_version: str = "0"

    @cached_property
    def tensors(self) -> dict[str, TensorSpec]:
        specs = {self.input.name: self.input.tensor}
        specs.update((op.name, op.out) for op in self.ops)
        return specs

    @property
    def mac_layers(self) -> tuple[MacLayer, ...]:
        return tuple(op for op in self.ops if isinstance(op, MacLayer))

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)
