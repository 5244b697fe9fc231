"""Golden-model throughput against PyTorch float inference of the same network, same machine, same
images, same batch size, measured in one run: the ratio is what the golden model's speed goal is
stated in (integer golden at least half as fast as float torch)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .. import golden
from ..artifact import Artifact
from ..formats import normalize


@dataclass(frozen=True)
class SpeedResult:
    network: str
    images: int
    batch_size: int
    torch_seconds: float
    golden_seconds: float
    torch_images_per_s: float
    golden_images_per_s: float
    ratio: float  # golden throughput / torch throughput (>= 0.5 is the goal)
    torch_threads: int

    def to_json(self) -> dict:
        return asdict(self)


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: caches, thread pools, BLAS buffers
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(network: str, model: nn.Module, art: Artifact, images: np.ndarray, batch_size: int = 64,
            repeats: int = 3) -> SpeedResult:
    """Best-of-`repeats` wall time of both engines on the same images, alternating them."""
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    c = len(art.input.mean)
    mean = torch.tensor(art.input.mean, dtype=torch.float32).reshape(c, 1, 1)
    std = torch.tensor(art.input.std, dtype=torch.float32).reshape(c, 1, 1)
    model = model.eval()

    @torch.no_grad()
    def run_torch() -> None:
        for i in range(0, len(x), batch_size):
            model(normalize(x[i : i + batch_size], mean, std))

    def run_golden() -> None:
        golden.run(art, images, batch_size=batch_size)

    t_torch = _best_of(run_torch, repeats)
    t_golden = _best_of(run_golden, repeats)
    n = len(images)
    return SpeedResult(network, n, batch_size, t_torch, t_golden, n / t_torch, n / t_golden,
                       t_torch / t_golden, torch.get_num_threads())
