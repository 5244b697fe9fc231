"""CIFAR-10 ResNet-20/56 (He et al. 2016, CIFAR variant) as pytorch_resnet_cifar10 trained them.

Parameter names match the pretrained state dicts (`conv1`, `bn1`, `layer2.0.conv1`, ..., `linear`),
so `../shared/data/cifar10/resnet{20,56}.npz` (or the original `.th` files) load unchanged. The
option-A shortcut is its own module so that torch.fx keeps it as one `shortcut` op of the artifact.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RowmixError


class OptionAShortcut(nn.Module):
    """x[:, :, ::stride, ::stride], zero-padded with `pad` channels on each side (no parameters)."""

    def __init__(self, stride: int, pad: int) -> None:
        super().__init__()
        self.stride, self.pad = stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inplanes != planes:
            self.shortcut = OptionAShortcut(stride, planes // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, inplanes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(self.pool(x), 1))


DEPTHS = {"resnet20": 3, "resnet56": 9}


def load_pretrained_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from the NumPy conversion (`.npz`) or an original pickle-free `.th` load."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: torch.from_numpy(z[k].copy()) for k in z.files}
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RowmixError(f"{path}: pretrained weights not found") from None
    except (ValueError, OSError, RuntimeError, zipfile.BadZipFile, EOFError) as e:
        raise RowmixError(f"{path}: cannot read pretrained weights ({str(e).splitlines()[0]})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise RowmixError(f"{path}: no state dict inside")
    return {k.removeprefix("module."): v for k, v in state.items()}


def cifar_resnet(name: str, weights: Path | None) -> CifarResNet:
    model = CifarResNet(DEPTHS[name])
    if weights is not None:
        state = load_pretrained_state(weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise RowmixError(f"{weights}: does not fit {name}: {str(e).splitlines()[1].strip()}") from None
    return model.eval()
