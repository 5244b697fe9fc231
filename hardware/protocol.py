"""The host side of the layer engine's streams, in NumPy: configuration words for one layer,
activation beats, output decoding. The simulator's driver and the board host use these same
functions, so what they send is what the engine was tested with.

Configuration stream (32-bit words, `last` on the final word):
  header  MAGIC, S (= K_hw / t_k steps), R, tiles SP2, tiles FIXED4, tiles FIXED8,
          lo | hi << 16 (output clamp, 16-bit two's complement each), flags (bit 0: activation offset)
  rows    per group with rows, tile by tile, lane by lane: bias, M0 | n << 16, channel | valid << 16
  codes   per group, tile by tile, step by step, lane by lane: the lane's t_k codes (code j at bits
          j*b .. j*b+b-1, b = 4 or 8), little-endian 32-bit words
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..artifact import MacLayer, TensorSpec
from ..errors import RowmixError
from ..formats import CONTAINER_BITS, GROUPS, RequantSpec
from .config import CODE_BITS, ArrayConfig
from .engine import ACT_BEAT_BITS, CHANNEL_BITS, MAGIC, words_per_slice


@dataclass(frozen=True)
class LayerPlan:
    """How one MAC layer maps onto an array: steps, tiles per group, clamp, offset flag."""

    name: str
    k: int
    k_hw: int  # K padded to a multiple of t_k
    steps: int
    r: int
    rows: dict[str, int]  # rows of the layer per group
    tiles: dict[str, int]
    lo: int
    hi: int
    offset: bool  # unsigned 8-bit activations: lanes see a - 128, biases absorb 128 * sum(w)


def plan_layer(layer: MacLayer, src: TensorSpec, cfg: ArrayConfig, requant: RequantSpec) -> LayerPlan:
    where = f"layer '{layer.name}'"
    if (requant.mode, requant.m_bits) != ("single", 16):
        raise RowmixError(f"{where}: the array implements single-rounding 16-bit requantization, the "
                          f"artifact uses {requant.mode}/{requant.m_bits}")
    f = src.fmt
    if cfg.act_bits == 8:
        if f.bits > 8 or (f.signed and f.lo < -128):
            raise RowmixError(f"{where}: {f.bits}-bit activations exceed the array's 8-bit lanes")
        offset = not f.signed and f.hi > 127
    else:
        if not ((not f.signed and f.hi <= 15) or (f.signed and f.lo >= -15 and f.hi <= 15)):
            fix = ("quantize with --input-bits 5" if layer.input == "input"
                   else "quantize with --pool-bits 4" if f.bits > 4 else "")
            raise RowmixError(f"{where}: {'signed' if f.signed else 'unsigned'} {f.bits}-bit activations "
                              f"from '{layer.input}' do not fit the array's 4-bit lanes (act_bits=4)"
                              + (f"; {fix} to fit them" if fix else ""))
        offset = False
    o = layer.out.fmt
    if o.bits > cfg.out_bits:
        raise RowmixError(f"{where}: {o.bits}-bit outputs exceed the array's {cfg.out_bits}-bit output")
    if layer.r > cfg.max_rows or layer.r >= 1 << CHANNEL_BITS:
        raise RowmixError(f"{where}: {layer.r} output channels exceed the array's max_rows={cfg.max_rows}")
    k_hw = -(-layer.k // cfg.t_k) * cfg.t_k
    if k_hw > cfg.max_k:
        raise RowmixError(f"{where}: K={layer.k} exceeds the array's max_k={cfg.max_k}")
    rows = {g: len(layer.row_groups[g]) for g in GROUPS}
    tiles = {}
    for g in GROUPS:
        lanes = cfg.groups[g].rows
        if rows[g] and not lanes:
            raise RowmixError(f"{where}: {rows[g]} {g} rows but the array has no {g} lanes")
        tiles[g] = -(-rows[g] // lanes) if lanes else 0
        if tiles[g] > cfg.max_tiles(g):
            raise RowmixError(f"{where}: {rows[g]} {g} rows exceed the {g} group's capacity of "
                              f"{cfg.group_max_rows(g)} rows per layer")
    return LayerPlan(layer.name, layer.k, k_hw, k_hw // cfg.t_k, layer.r, rows, tiles, o.lo, o.hi, offset)


def accumulator_range(layer: MacLayer, src: TensorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the least and greatest value of bias + W u over every input the layer's activation
    format allows. The array's accumulators and its bias add wrap at `acc_bits`, so its result equals
    the golden model's (which does not wrap) exactly when this final value fits; partial sums may wrap
    on the way. The activation offset does not change it (lanes see u - 128, the bias gains 128 sum(w)),
    and the bias table entry is one of these values (u = 0, or u = 128 with the offset)."""
    w = layer.values.astype(np.int64)  # [R, K]
    f = src.fmt
    bias = layer.rows.bias.astype(np.int64)
    return (bias + np.minimum(w * f.lo, w * f.hi).sum(axis=1),
            bias + np.maximum(w * f.lo, w * f.hi).sum(axis=1))


def signed_bits(lo: np.ndarray, hi: np.ndarray) -> int:
    """The least two's complement width holding every value from min(lo) to max(hi)."""
    return (max(-int(lo.min()), int(hi.max()) + 1) - 1).bit_length() + 1


def check_accumulator(layer: MacLayer, src: TensorSpec, cfg: ArrayConfig) -> None:
    lo, hi = accumulator_range(layer, src)
    limit = 1 << (cfg.acc_bits - 1)
    bad = np.flatnonzero((lo < -limit) | (hi >= limit))
    if bad.size:
        r = int(bad[np.argmax(np.maximum(-lo[bad], hi[bad]))])
        need = signed_bits(lo, hi)
        raise RowmixError(f"layer '{layer.name}' row {r}: bias + weights x activations can reach "
                          f"[{lo[r]}, {hi[r]}] for {src.bits}-bit inputs, outside the array's {cfg.acc_bits}-bit "
                          f"accumulator ({bad.size} of {layer.r} rows; the layer needs acc_bits >= {need})")


def _u32(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.int64) & 0xFFFFFFFF).astype(np.uint32)


def config_words(layer: MacLayer, src: TensorSpec, cfg: ArrayConfig, requant: RequantSpec) -> tuple[np.ndarray, LayerPlan]:
    """The configuration stream of one layer (uint32 words) and its plan."""
    p = plan_layer(layer, src, cfg, requant)
    check_accumulator(layer, src, cfg)
    header = [MAGIC, p.steps, p.r, p.tiles["SP2"], p.tiles["FIXED4"], p.tiles["FIXED8"],
              (p.lo & 0xFFFF) | ((p.hi & 0xFFFF) << 16), int(p.offset)]
    words = [np.array(header, np.uint32)]
    rows_t = layer.rows
    values = layer.values  # [R, K], for the offset bias correction
    codes_out = []
    for g in GROUPS:
        lanes = cfg.groups[g].rows
        if not p.tiles[g]:
            continue
        members = np.array(layer.row_groups[g], np.int64)
        n_pad = p.tiles[g] * lanes
        bias = np.zeros(n_pad, np.int64)
        m0 = np.zeros(n_pad, np.int64)
        n = np.ones(n_pad, np.int64)
        chan = np.zeros(n_pad, np.int64)
        valid = np.zeros(n_pad, np.int64)
        bias[: len(members)] = rows_t.bias[members]
        if p.offset:
            bias[: len(members)] += 128 * values[members].sum(axis=1)
        m0[: len(members)] = rows_t.m0[members]
        n[: len(members)] = rows_t.n[members]
        chan[: len(members)] = members
        valid[: len(members)] = 1
        table = np.stack([_u32(bias), _u32(m0 | (n << 16)), _u32(chan | (valid << 16))], axis=1)
        words.append(table.reshape(-1))
        # codes [rows_pad, K_hw] in the group's container width
        cb = CODE_BITS[g]
        assert cb == CONTAINER_BITS[g]
        c = np.zeros((n_pad, p.k_hw), np.uint64)
        c[: len(members), : layer.k] = layer.group_codes[g][:, : layer.k]
        slices = c.reshape(p.tiles[g], lanes, p.steps, cfg.t_k).transpose(0, 2, 1, 3)  # [tile, step, lane, j]
        shifts = (np.arange(cfg.t_k, dtype=np.uint64) * np.uint64(cb))
        wps = words_per_slice(cfg, g)
        parts = []
        for w in range(wps):
            lo_j, hi_j = w * 32 // cb, min(cfg.t_k, (w + 1) * 32 // cb)
            part = (slices[..., lo_j:hi_j] << (shifts[lo_j:hi_j] - np.uint64(w * 32))).sum(axis=-1)
            parts.append(part)
        codes_out.append(np.stack(parts, axis=-1).astype(np.uint32).reshape(-1))
    return np.concatenate(words + codes_out), p


def activation_bytes(vectors: np.ndarray, plan: LayerPlan, cfg: ArrayConfig) -> np.ndarray:
    """Integer activation vectors [P, K] -> stream bytes [P, S, t_k] (8-bit two's complement, K
    zero-padded to K_hw); beat s of pixel p carries element j in bits 8j .. 8j+7."""
    v = np.asarray(vectors, np.int64)
    if v.ndim != 2 or v.shape[1] != plan.k:
        raise ValueError(f"activation vectors must be [P, {plan.k}], got {list(v.shape)}")
    padded = np.zeros((len(v), plan.k_hw), np.int64)
    padded[:, : plan.k] = v
    return (padded & 0xFF).astype(np.uint8).reshape(len(v), plan.steps, cfg.t_k)


def beat_values(bytes_: np.ndarray) -> list[int]:
    """[..., t_k] bytes -> the integer payload of each beat (element j at bits 8j)."""
    flat = bytes_.reshape(-1, bytes_.shape[-1])
    weights = [1 << (ACT_BEAT_BITS * j) for j in range(flat.shape[1])]
    return [sum(int(b) * w for b, w in zip(row, weights)) for row in flat]
