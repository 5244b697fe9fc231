"""Golden-model throughput against PyTorch float inference of the same network, same machine, same
images, same batch size, measured in one run: the ratio is what the golden model's speed goal is
stated in (integer golden at least half as fast as float torch)."""

from __future__ import annotations

import time
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
    batch_sizes: tuple[int, ...]
    torch_images_per_s: dict[int, float]  # per batch size, best of the repeats
    golden_images_per_s: dict[int, float]
    best_torch: float
    best_golden: float
    ratio: float  # best golden throughput / best torch throughput (>= 0.5 is the goal)
    torch_threads: int

    def to_json(self) -> dict:
        return asdict(self)


def measure(network: str, model: nn.Module, art: Artifact, images: np.ndarray,
            batch_sizes: tuple[int, ...] = (64, 256), repeats: int = 5) -> SpeedResult:
    """Throughput of both engines on the same images at each batch size, best of `repeats` timed runs
    after an untimed warm-up. Each engine's runs are consecutive: torch's OpenMP workers spin for a
    while after each parallel region, which would slow whatever runs right after them."""
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    c = len(art.input.mean)
    mean = torch.tensor(art.input.mean, dtype=torch.float32).reshape(c, 1, 1)
    std = torch.tensor(art.input.std, dtype=torch.float32).reshape(c, 1, 1)
    model = model.eval()

    @torch.no_grad()
    def run_torch(bs: int) -> None:
        for i in range(0, len(x), bs):
            model(normalize(x[i : i + bs], mean, std))

    def run_golden(bs: int) -> None:
        golden.run(art, images, batch_size=bs)

    best: dict[tuple[str, int], float] = {}
    for bs in batch_sizes:
        for name, fn in (("torch", run_torch), ("golden", run_golden)):
            fn(bs)  # warm-up: caches, thread pools, BLAS buffers, the other engine's spinning threads
            for _ in range(repeats):
                t = time.perf_counter()
                fn(bs)
                best[name, bs] = min(best.get((name, bs), float("inf")), time.perf_counter() - t)
    n = len(images)
    t_ips = {bs: n / best["torch", bs] for bs in batch_sizes}
    g_ips = {bs: n / best["golden", bs] for bs in batch_sizes}
    bt, bg = max(t_ips.values()), max(g_ips.values())
    return SpeedResult(network, n, tuple(batch_sizes), t_ips, g_ips, bt, bg, bg / bt, torch.get_num_threads())
