"""Built-in float models: the digits CNN (default) and the pretrained CIFAR-10 ResNet-20/56."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import RowmixError
from .digits_cnn import DigitsNet, digits_cnn, train_digits
from .resnet_cifar import CifarResNet, OptionAShortcut, cifar_resnet

MODELS = {"digits": "digits", "resnet20": "cifar10", "resnet56": "cifar10"}  # model -> its dataset


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dataset: str
    weights_sha256: str


def weights_sha256(model: nn.Module) -> str:
    """Identity of a float model: sha256 over its state dict, key by key in sorted order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def build_model(name: str, data_dir: str | Path | None = None, weights: str | Path | None = None) -> tuple[nn.Module, ModelInfo]:
    """A float model in eval mode. ResNets load `weights`, else `<data_dir>/<name>.npz`."""
    if name not in MODELS:
        raise RowmixError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    if name == "digits":
        model: nn.Module = digits_cnn()
    else:
        from ..data.cifar10 import resolve_dir

        path = Path(weights) if weights is not None else resolve_dir(data_dir) / f"{name}.npz"
        model = cifar_resnet(name, path)
    return model, ModelInfo(name, MODELS[name], weights_sha256(model))


__all__ = [
    "MODELS", "ModelInfo", "build_model", "weights_sha256",
    "DigitsNet", "digits_cnn", "train_digits", "CifarResNet", "OptionAShortcut", "cifar_resnet",
]
