"""Datasets: scikit-learn's digits (bundled, the default) and the real CIFAR-10 test set.

Every dataset has two fixed halves: `tune` (training, calibration, fine-tuning) and `eval` (every
reported accuracy). Images are float32 [N, C, H, W] in [0, 1]; normalisation by the dataset's mean and
std happens in the model's preprocessing (formats.normalize), identically in torch and NumPy.
"""

from .cifar10 import CIFAR10_MEAN, CIFAR10_STD, default_cifar10_dir, load_cifar10
from .dataset import SPLITS, Dataset, load_dataset
from .digits import DIGITS_MEAN, DIGITS_STD, load_digits

__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "default_cifar10_dir", "load_cifar10",
    "SPLITS", "Dataset", "load_dataset",
    "DIGITS_MEAN", "DIGITS_STD", "load_digits",
]
