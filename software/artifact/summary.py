"""What `rowmix inspect` shows: per-layer shapes, row formats and sizes of an artifact."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..formats import GROUPS
from .spec import Artifact, MacLayer


def compression(layers: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Compression against float32 from (integer values [R, K], row bits [R]) per layer, as pruning
    papers count it: 32 N_total / sum_rows(b_r nnz_r), nnz = non-zero values (weights that are zero,
    pruned or rounded, need no storage). `ratio_with_bitmap` adds the sparse index a real format
    needs, as a 1-bit-per-weight map (N_total bits); `ratio_dense` stores every weight at its row's
    bits (what the packed codes hold)."""
    n_total = stored = dense = nnz = 0
    for values, bits in layers:
        b = np.asarray(bits, np.int64)
        v = np.asarray(values).reshape(len(b), -1)
        row_nnz = (v != 0).sum(axis=1)
        n_total += v.size
        nnz += int(row_nnz.sum())
        stored += int((b * row_nnz).sum())
        dense += int(b.sum()) * v.shape[1]
    return {"ratio": 32 * n_total / max(1, stored), "ratio_with_bitmap": 32 * n_total / (stored + n_total),
            "ratio_dense": 32 * n_total / max(1, dense), "avg_bits": stored / max(1, nnz),
            "zero_share": 1 - nnz / max(1, n_total), "weights": n_total}


def layer_summary(layer: MacLayer) -> dict[str, Any]:
    formats = Counter(str(layer.rows.format(r)) for r in range(layer.r))
    packed = sum(int(layer.codes[g].nbytes) for g in GROUPS)
    weight_bits = int(layer.rows.bits.sum()) * layer.k
    return {
        "name": layer.name,
        "op": layer.op,
        "R": layer.r,
        "K": layer.k,
        "k_pad": layer.k_pad,
        "kernel": list(layer.kernel),
        "stride": list(layer.stride),
        "rows_per_group": {g: len(layer.row_groups[g]) for g in GROUPS},
        "rows_per_format": dict(sorted(formats.items())),
        "negated_rows": int(layer.rows.negated.sum()),
        "act_in_bits": None,  # filled by summarize (needs the graph)
        "act_out_bits": layer.out.bits,
        "weights": layer.r * layer.k,
        "weight_bits": weight_bits,
        "packed_bytes": packed,
        "macs_per_image": layer.r * layer.k * int(np.prod(layer.out.shape[1:])),
    }


def summarize(art: Artifact) -> dict[str, Any]:
    layers = []
    for layer in art.mac_layers:
        s = layer_summary(layer)
        s["act_in_bits"] = art.tensors[layer.input].bits
        layers.append(s)
    rows = Counter()
    for s in layers:
        rows.update(s["rows_per_group"])
    total_rows = sum(rows.values())
    weights = sum(s["weights"] for s in layers)
    comp = compression((layer.values, layer.rows.bits) for layer in art.mac_layers)
    return {
        "model": dict(art.model),
        "method": dict(art.method),
        "requant": {"mode": art.requant.mode, "m_bits": art.requant.m_bits},
        "target_ratio": None if art.ratio is None else dict(art.ratio),
        "achieved_ratio": {g: round(100 * rows[g] / total_rows, 2) for g in GROUPS},
        "input": {"shape": list(art.input.shape), "bits": art.input.tensor.bits, "scale": art.input.tensor.scale},
        "layers": layers,
        "ops": [{"name": op.name, "op": op.op, "inputs": list(op.inputs), "shape": list(op.out.shape),
                 "bits": op.out.bits, "signed": op.out.signed} for op in art.ops],
        "totals": {
            "mac_layers": len(layers),
            "rows": total_rows,
            "weights": weights,
            "average_weight_bits": round(sum(s["weight_bits"] for s in layers) / weights, 4),
            "sparsity": round(comp["zero_share"], 4),
            "compression": round(comp["ratio"], 2),  # against float32: bits of the non-zero weights
            "compression_dense": round(comp["ratio_dense"], 2),  # every weight at its row's bits
            "packed_bytes": sum(s["packed_bytes"] for s in layers),
            "bias_bytes": 4 * total_rows,
            "macs_per_image": sum(s["macs_per_image"] for s in layers),
        },
    }
