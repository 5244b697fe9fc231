"""scikit-learn's 8x8 handwritten digits (1,797 images, bundled with scikit-learn, no download).

Split: `perm = numpy.random.default_rng(0).permutation(1797)`; tune = perm[:1257] (70 %, used to
train the float model and to calibrate), eval = perm[1257:] (540 images, the "digits test split").
Pixels 0..16 are scaled to [0, 1]; mean and std below are those of the tune half.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, split_indices

DIGITS_MEAN = (0.3052,)
DIGITS_STD = (0.3759,)
DIGITS_TUNE = 1257


def load_digits(split: str = "eval") -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    idx = split_indices(len(d.target), DIGITS_TUNE, split)
    images = (d.images.astype(np.float32) / np.float32(16.0))[:, None]
    return Dataset("digits", split, images[idx], d.target.astype(np.int64)[idx], DIGITS_MEAN, DIGITS_STD, 10)
