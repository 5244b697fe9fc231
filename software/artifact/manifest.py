"""Artifact objects <-> manifest.json dictionaries (structure only; semantics live in validate.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats import GROUPS, RequantSpec
from .spec import (
    FORMAT,
    FORMAT_VERSION,
    Add,
    Artifact,
    AvgPool,
    Flatten,
    GlobalAvgPool,
    InputSpec,
    MacLayer,
    MaxPool,
    Op,
    RowTable,
    Shortcut,
    TensorSpec,
)


def codes_key(layer: str, group: str) -> str:
    return f"{layer}.codes.{group}"


def bias_key(layer: str) -> str:
    return f"{layer}.bias"


def tensor_to_json(t: TensorSpec) -> dict[str, Any]:
    return {"shape": list(t.shape), "bits": t.bits, "signed": t.signed, "scale": float(t.scale)}


def tensor_from_json(d: dict[str, Any]) -> TensorSpec:
    return TensorSpec(tuple(d["shape"]), d["bits"], d["signed"], float(d["scale"]))


def _rows_to_json(rows: RowTable) -> list[dict[str, Any]]:
    out = []
    for r in range(len(rows)):
        sens = float(rows.sensitivity[r])
        out.append({
            "scheme": rows.scheme[r],
            "bits": int(rows.bits[r]),
            "scale": float(rows.scale[r]),
            "M0": int(rows.m0[r]),
            "n": int(rows.n[r]),
            "bias": int(rows.bias[r]),
            "negated": bool(rows.negated[r]),
            "sensitivity": None if np.isnan(sens) else sens,
        })
    return out


def rows_from_json(rows: list[dict[str, Any]]) -> RowTable:
    sens = [r.get("sensitivity") for r in rows]
    return RowTable(
        scheme=tuple(r["scheme"] for r in rows),
        bits=np.array([r["bits"] for r in rows], np.int64),
        scale=np.array([r["scale"] for r in rows], np.float64),
        m0=np.array([r["M0"] for r in rows], np.int64),
        n=np.array([r["n"] for r in rows], np.int64),
        bias=np.array([r["bias"] for r in rows], np.int64),
        negated=np.array([r["negated"] for r in rows], bool),
        sensitivity=np.array([np.nan if s is None else s for s in sens], np.float64),
    )


def op_to_json(op: Op) -> dict[str, Any]:
    d: dict[str, Any] = {"name": op.name, "op": op.op, "inputs": list(op.inputs), "out": tensor_to_json(op.out)}
    if isinstance(op, MacLayer):
        d.update(
            K=op.k, k_pad=op.k_pad, kernel=list(op.kernel), stride=list(op.stride), padding=list(op.padding),
            groups=1, rows=_rows_to_json(op.rows), row_groups={g: list(op.row_groups[g]) for g in GROUPS},
        )
    elif isinstance(op, Add):
        d["requant"] = [{"M0": int(m), "n": int(n)} for m, n in zip(op.m0, op.n)]
    elif isinstance(op, Shortcut):
        d.update(stride=op.stride, pad_channels=list(op.pad_channels))
    elif isinstance(op, MaxPool):
        d.update(kernel=list(op.kernel), stride=list(op.stride), padding=list(op.padding))
    elif isinstance(op, AvgPool):
        d.update(kernel=list(op.kernel), stride=list(op.stride), requant={"M0": op.m0, "n": op.n})
    elif isinstance(op, GlobalAvgPool):
        d["requant"] = {"M0": op.m0, "n": op.n}
    return d


def op_from_json(d: dict[str, Any], arrays: dict[str, np.ndarray]) -> Op:
    name, kind, out = d["name"], d["op"], tensor_from_json(d["out"])
    src = d["inputs"][0]
    if kind in ("conv", "linear"):
        return MacLayer(
            name=name, op=kind, input=src, out=out, k=d["K"], k_pad=d["k_pad"],
            kernel=tuple(d["kernel"]), stride=tuple(d["stride"]), padding=tuple(d["padding"]),
            rows=rows_from_json(d["rows"]),
            row_groups={g: tuple(d["row_groups"][g]) for g in GROUPS},
            codes={g: arrays[codes_key(name, g)] for g in GROUPS},
            bias=arrays[bias_key(name)],
        )
    if kind == "add":
        rq = d["requant"]
        return Add(name, (d["inputs"][0], d["inputs"][1]), out, (rq[0]["M0"], rq[1]["M0"]), (rq[0]["n"], rq[1]["n"]))
    if kind == "shortcut":
        return Shortcut(name, src, out, d["stride"], tuple(d["pad_channels"]))
    if kind == "maxpool":
        return MaxPool(name, src, out, tuple(d["kernel"]), tuple(d["stride"]), tuple(d["padding"]))
    if kind == "avgpool":
        return AvgPool(name, src, out, tuple(d["kernel"]), tuple(d["stride"]), d["requant"]["M0"], d["requant"]["n"])
    if kind == "global_avgpool":
        return GlobalAvgPool(name, src, out, d["requant"]["M0"], d["requant"]["n"])
    if kind == "flatten":
        return Flatten(name, src, out)
    raise ValueError(f"unknown op {kind!r}")  # the schema rejects this first


def arrays_of(art: Artifact) -> dict[str, np.ndarray]:
    """Every array weights.npz holds, by key."""
    arrays: dict[str, np.ndarray] = {}
    for layer in art.mac_layers:
        for g in GROUPS:
            arrays[codes_key(layer.name, g)] = np.ascontiguousarray(layer.codes[g], dtype=np.uint8)
        arrays[bias_key(layer.name)] = np.ascontiguousarray(layer.bias, dtype=np.int32)
    return arrays


def to_manifest(art: Artifact, checksums: dict[str, dict[str, Any]]) -> dict[str, Any]:
    inp = art.input
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rowmix_version": art.rowmix_version,
        "model": dict(art.model),
        "method": dict(art.method),
        "rounding": "half_away_from_zero",
        "requant": {"mode": art.requant.mode, "m_bits": art.requant.m_bits},
        "ratio": None if art.ratio is None else dict(art.ratio),
        "input": {
            "name": inp.name, "shape": list(inp.shape), "mean": [float(x) for x in inp.mean],
            "std": [float(x) for x in inp.std], "tensor": tensor_to_json(inp.tensor),
        },
        "ops": [op_to_json(op) for op in art.ops],
        "output": art.output,
        "num_classes": art.num_classes,
        "arrays": checksums,
    }


def from_manifest(m: dict[str, Any], arrays: dict[str, np.ndarray]) -> Artifact:
    i = m["input"]
    return Artifact(
        model=m["model"],
        method=m["method"],
        requant=RequantSpec(m["requant"]["mode"], m["requant"]["m_bits"]),
        ratio=m["ratio"],
        input=InputSpec(tuple(i["shape"]), tuple(i["mean"]), tuple(i["std"]), tensor_from_json(i["tensor"])),
        ops=tuple(op_from_json(d, arrays) for d in m["ops"]),
        output=m["output"],
        num_classes=m["num_classes"],
        rowmix_version=m["rowmix_version"],
    )
