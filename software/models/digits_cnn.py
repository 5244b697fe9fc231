"""The built-in default network: a small residual CNN for scikit-learn's 8x8 digits.

Three 3x3 conv layers with BN at 8x8 (one residual add), a 2x2 max pool, a fourth conv at 4x4, global
average pooling and a linear classifier: every op kind the artifact graph has, in about 4k weights
and 215k MACs per image (width 12: W4A4 row-wise mixed loses under a point; width 8 loses four, and
width 16 doubles the RTL simulation time of the default flow). It trains in a few seconds on a CPU,
deterministically, and is cached by its training recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import DIGITS_MEAN, DIGITS_STD, load_digits
from ..formats import normalize

RECIPE = {"model": "digits-cnn-v2", "width": 12, "epochs": 40, "batch": 64, "lr": 3e-3, "weight_decay": 1e-4, "seed": 0}


class DigitsNet(nn.Module):
    def __init__(self, width: int = 12, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(2)
        self.conv4 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(2 * width)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(y)) + x)
        x = F.relu(self.bn4(self.conv4(self.pool(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


def cache_dir() -> Path:
    return Path(os.environ.get("ROWMIX_CACHE", Path.home() / ".cache" / "rowmix"))


def _normalized(images: np.ndarray) -> torch.Tensor:
    mean = torch.tensor(DIGITS_MEAN).reshape(1, 1, 1)
    std = torch.tensor(DIGITS_STD).reshape(1, 1, 1)
    return normalize(torch.from_numpy(images), mean, std)


def train_digits(recipe: dict = RECIPE) -> DigitsNet:
    """Train on the tune half with Adam and a cosine schedule; seeded, so reruns give the same net."""
    torch.manual_seed(recipe["seed"])
    ds = load_digits("tune")
    x, y = _normalized(ds.images), torch.from_numpy(ds.labels)
    model = DigitsNet(recipe["width"])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    steps = recipe["epochs"] * -(-len(x) // recipe["batch"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(recipe["seed"])
    model.train()
    for _ in range(recipe["epochs"]):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), recipe["batch"]):
            idx = perm[i : i + recipe["batch"]]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def digits_cnn(cache: Path | None = None) -> DigitsNet:
    """The trained default model, from the cache when its recipe was trained before."""
    key = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]
    path = (cache or cache_dir()) / f"{RECIPE['model']}-{key}.npz"
    model = DigitsNet(RECIPE["width"])
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            model.load_state_dict({k: torch.from_numpy(z[k].copy()) for k in z.files})
        return model.eval()
    model = train_digits()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}.npz")
    np.savez(tmp, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    os.replace(tmp, path)
    return model
