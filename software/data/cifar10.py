"""The real CIFAR-10 test set (`test.npz`, see ../shared/data/cifar10/SOURCE.md).

10,000 images sorted by label; the canonical split of SOURCE.md: tune = perm[:5000] (calibration,
fine-tuning), eval = perm[5000:] (every reported accuracy). Normalisation uses the statistics the
pretrained ResNets were trained with (pytorch_resnet_cifar10's trainer: ImageNet mean/std), with
which ResNet-20 scores 91.73 % on all 10,000 images.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import RowmixError
from .dataset import Dataset, split_indices

CIFAR10_MEAN = (0.485, 0.456, 0.406)
CIFAR10_STD = (0.229, 0.224, 0.225)
CIFAR10_TUNE = 5000


def default_cifar10_dir() -> Path | None:
    """`$ROWMIX_CIFAR10_DIR`, else `../shared/data/cifar10` beside this checkout, if it exists."""
    env = os.environ.get("ROWMIX_CIFAR10_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10")
    candidates.append(Path.cwd() / ".." / "shared" / "data" / "cifar10")
    for c in candidates:
        if (c / "test.npz").is_file():
            return c.resolve()
    return None


def resolve_dir(data_dir: str | Path | None) -> Path:
    d = Path(data_dir) if data_dir is not None else default_cifar10_dir()
    if d is None:
        raise RowmixError("CIFAR-10 data not found: pass --data-dir DIR (holding test.npz) or set ROWMIX_CIFAR10_DIR")
    return d


def load_cifar10(split: str = "eval", data_dir: str | Path | None = None) -> Dataset:
    path = resolve_dir(data_dir) / "test.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except FileNotFoundError:
        raise RowmixError(f"{path}: file not found (expected the CIFAR-10 test set)") from None
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise RowmixError(f"{path}: not a CIFAR-10 npz with 'images' and 'labels' ({e})") from None
    if images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise RowmixError(f"{path}: 'images' must be uint8 [N, 32, 32, 3] and 'labels' [N], got "
                          f"{images.dtype}{list(images.shape)} and {list(labels.shape)}")
    idx = split_indices(len(labels), CIFAR10_TUNE, split)
    x = images[idx].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return Dataset("cifar10", split, x, labels[idx].astype(np.int64), CIFAR10_MEAN, CIFAR10_STD, 10)
