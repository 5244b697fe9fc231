"""The dataset contract shared by every loader, and the name -> loader dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RowmixError

SPLITS = ("tune", "eval", "all")


@dataclass(frozen=True)
class Dataset:
    name: str
    split: str
    images: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    labels: np.ndarray  # int64 [N]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)


def split_indices(n: int, n_tune: int, split: str) -> np.ndarray:
    """The canonical split: `perm = default_rng(0).permutation(n)`, tune = perm[:n_tune], eval = the
    rest (CIFAR-10's SOURCE.md fixes n_tune = 5000; digits uses 1257 of 1797)."""
    if split not in SPLITS:
        raise RowmixError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    perm = np.random.default_rng(0).permutation(n)
    return {"tune": perm[:n_tune], "eval": perm[n_tune:], "all": np.arange(n)}[split]


def limited(ds: Dataset, limit: int | None) -> Dataset:
    if limit is None:
        return ds
    if limit < 1:
        raise RowmixError(f"--limit must be >= 1, got {limit}")
    return Dataset(ds.name, ds.split, ds.images[:limit], ds.labels[:limit], ds.mean, ds.std, ds.num_classes)


def load_dataset(name: str, split: str = "eval", data_dir: str | Path | None = None, limit: int | None = None) -> Dataset:
    from .cifar10 import load_cifar10
    from .digits import load_digits

    if name == "digits":
        ds = load_digits(split)
    elif name == "cifar10":
        ds = load_cifar10(split, data_dir)
    else:
        raise RowmixError(f"unknown dataset {name!r} (known: digits, cifar10)")
    return limited(ds, limit)
