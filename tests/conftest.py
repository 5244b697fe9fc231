"""Shared fixtures: the built-in digits model, its data, and artifacts of each first-front-end method
(built once per session; tests that change an artifact work on a copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rowmix.artifact import read_artifact, write_artifact
from rowmix.data import default_cifar10_dir, load_dataset
from rowmix.models import build_model
from rowmix.quant import make_method, quantize

DIGITS_CONFIGS = {
    "mixed": ("mixed", 4, 4),  # 65:30:5, W4/8 A4
    "fixed8": ("fixed", 8, 8),
    "fixed4": ("fixed", 4, 4),
    "sp2": ("sp2", 4, 4),
}


@pytest.fixture(scope="session")
def digits_model():
    return build_model("digits")


@pytest.fixture(scope="session")
def digits_tune():
    return load_dataset("digits", "tune")


@pytest.fixture(scope="session")
def digits_eval():
    return load_dataset("digits", "eval")


@pytest.fixture(scope="session")
def digits_artifacts(tmp_path_factory, digits_model, digits_tune):
    """name -> (artifact directory, Artifact, QuantNet) for every DIGITS_CONFIGS entry."""
    model, info = digits_model
    root = tmp_path_factory.mktemp("digits-artifacts")
    out = {}
    for name, (method, bits, act_bits) in DIGITS_CONFIGS.items():
        q = quantize(model, info, make_method(method, bits, "65:30:5"), digits_tune.images, digits_tune.mean,
                     digits_tune.std, act_bits=act_bits)
        path = write_artifact(q.artifact, root / name)
        out[name] = (path, read_artifact(path), q.qnet)
    return out


@pytest.fixture
def artifact_copy(tmp_path, digits_artifacts):
    """A writable copy of the mixed digits artifact."""
    dst = tmp_path / "art"
    shutil.copytree(digits_artifacts["mixed"][0], dst)
    return dst


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    d = default_cifar10_dir()
    if d is None:
        pytest.skip("CIFAR-10 data (../shared/data/cifar10) not present")
    return d
