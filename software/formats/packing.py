"""Packing of container codes into bytes (DESIGN section 3): row-major [rows][k_pad], 4-bit codes two
per byte with element 2j in bits 3..0 and 2j+1 in bits 7..4, 8-bit codes one per byte."""

from __future__ import annotations

import numpy as np


def padded_length(k: int, align: int) -> int:
    return -(-k // align) * align


def pack(codes: np.ndarray, container_bits: int, k_pad: int) -> np.ndarray:
    """[rows, K] codes -> [rows, k_pad * container_bits / 8] bytes, zero codes in the padding."""
    codes = np.asarray(codes, dtype=np.uint8)
    rows, k = codes.shape
    if k_pad < k or (container_bits == 4 and k_pad % 2):
        raise ValueError(f"k_pad={k_pad} cannot hold K={k} {container_bits}-bit codes")
    padded = np.zeros((rows, k_pad), dtype=np.uint8)
    padded[:, :k] = codes
    if container_bits == 8:
        return padded
    if container_bits != 4:
        raise ValueError(f"unsupported container width {container_bits}")
    if (padded > 0xF).any():
        raise ValueError("4-bit codes must be < 16")
    return padded[:, 0::2] | (padded[:, 1::2] << 4)


def unpack(packed: np.ndarray, container_bits: int, k_pad: int) -> np.ndarray:
    """Inverse of `pack`: [rows, bytes] -> [rows, k_pad] codes (padding included)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if container_bits == 8:
        return packed[:, :k_pad].copy()
    if container_bits != 4:
        raise ValueError(f"unsupported container width {container_bits}")
    out = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = packed & 0xF
    out[:, 1::2] = packed >> 4
    return out[:, :k_pad]


def packed_width(container_bits: int, k_pad: int) -> int:
    return k_pad * container_bits // 8
