"""The checker: RTL outputs against the golden model, element by element, exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Mismatch:
    layer: str
    row: int  # output channel
    image: int  # index in the simulated image list
    pixel: tuple[int, ...]  # (y, x) of the output pixel; () for linear layers
    expected: int
    actual: int
    count: int  # mismatching elements in this layer
    examples: tuple = ()  # the first few (image, pixel, row, expected, actual)

    def __str__(self) -> str:
        where = f"pixel (y={self.pixel[0]}, x={self.pixel[1]})" if self.pixel else "vector"
        return (f"layer '{self.layer}', row {self.row}, image {self.image}, {where}: expected {self.expected}, "
                f"got {self.actual} ({self.count} mismatching elements in the layer)")

    def to_json(self) -> dict:
        return asdict(self)


def first_mismatch(layer: str, expected: np.ndarray, actual: np.ndarray, image_offset: int = 0) -> Mismatch | None:
    """Compare [N, OH, OW, R] (or [N, R]) channel-last tensors; None when they are equal."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise ValueError(f"layer '{layer}': RTL output shape {actual.shape} differs from {expected.shape}")
    bad = np.argwhere(expected != actual)
    if not len(bad):
        return None
    idx = tuple(int(i) for i in bad[0])
    examples = tuple((image_offset + int(b[0]), tuple(int(i) for i in b[1:-1]), int(b[-1]), int(expected[tuple(b)]),
                      int(actual[tuple(b)])) for b in bad[:8])
    return Mismatch(layer, idx[-1], image_offset + idx[0], idx[1:-1], int(expected[idx]), int(actual[idx]), len(bad),
                    examples)
