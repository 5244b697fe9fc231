"""What `rowmix inspect` shows: per-layer shapes, row formats and sizes of an artifact."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..formats import GROUPS
from .spec import Artifact, MacLayer


def layer_summary(layer: MacLayer) -> dict[str, Any]:
    formats = Counter(str(layer.rows.format(r)) for r in range(layer.r))
    packed = sum(int(layer.codes[g].nbytes) for g in GROUPS)
    weight_bits = int(layer.rows.bits.sum()) * layer.k
    nonzero = np.count_nonzero(layer.values, axis=1)
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
        "nonzero_weights": int(nonzero.sum()),
        "nonzero_weight_bits": int((layer.rows.bits * nonzero).sum()),
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
            "sparsity": round(1 - sum(s["nonzero_weights"] for s in layers) / weights, 4),
            # against float32 weights, as pruning papers count it: bits of the non-zero weights only
            # (`compression`), or of every weight (`compression_dense`, what the packed codes store)
            "compression": round(32 * weights / max(1, sum(s["nonzero_weight_bits"] for s in layers)), 2),
            "compression_dense": round(32 * weights / sum(s["weight_bits"] for s in layers), 2),
            "packed_bytes": sum(s["packed_bytes"] for s in layers),
            "bias_bytes": 4 * total_rows,
            "macs_per_image": sum(s["macs_per_image"] for s in layers),
        },
    }
