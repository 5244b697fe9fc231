"""Semantic checks of a parsed artifact: graph, shapes, row tables, code legality, integer bounds.

The JSON Schema has already checked types and ranges; this checks what a schema cannot express, so
that every later stage (golden model, hardware generator, simulator) can trust what it reads.
"""

from __future__ import annotations

import numpy as np

from ..formats import CONTAINER_BITS, GROUPS, RowFormat, packed_width
from .errors import ArtifactError
from .manifest import bias_key, codes_key
from .spec import Add, Artifact, AvgPool, Flatten, GlobalAvgPool, MacLayer, MaxPool, Shortcut, TensorSpec

ACC_LIMIT = 1 << 31  # accumulators are int32
PRODUCT_LIMIT = 1 << 47  # acc * M0 must fit a signed 48-bit product register (single mode, 16-bit M0)
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"


def _pool_len(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _expected_shape(op, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    src = shapes[op.inputs[0]]
    err = lambda msg: ArtifactError(MANIFEST, msg, layer=op.name, field="inputs")  # noqa: E731
    if isinstance(op, MacLayer):
        if op.op == "linear":
            if len(src) != 1 or src[0] != op.k:
                raise err(f"linear input shape {list(src)} does not give K={op.k}")
            return (op.r,)
        if len(src) != 3:
            raise err(f"conv input must be [C, H, W], got {list(src)}")
        c, h, w = src
        (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
        if c * kh * kw != op.k:
            raise err(f"K={op.k} but input channels x kernel = {c}x{kh}x{kw} = {c * kh * kw}")
        return (op.r, _pool_len(h, kh, sh, ph), _pool_len(w, kw, sw, pw))
    if isinstance(op, Add):
        other = shapes[op.inputs[1]]
        if other != src:
            raise err(f"add inputs have different shapes {list(src)} and {list(other)}")
        return src
    if len(src) != 3 and not isinstance(op, Flatten):
        raise err(f"{op.op} input must be [C, H, W], got {list(src)}")
    if isinstance(op, Shortcut):
        c, h, w = src
        s = op.stride
        return (c + sum(op.pad_channels), -(-h // s), -(-w // s))
    if isinstance(op, (MaxPool, AvgPool)):
        c, h, w = src
        pad = op.padding if isinstance(op, MaxPool) else (0, 0)
        return (c, _pool_len(h, op.kernel[0], op.stride[0], pad[0]), _pool_len(w, op.kernel[1], op.stride[1], pad[1]))
    if isinstance(op, GlobalAvgPool):
        return (src[0], 1, 1)
    if isinstance(op, Flatten):
        return (int(np.prod(src)),)
    raise AssertionError(op)


def _check_same_format(op, src: TensorSpec) -> None:
    """Ops that move integers without requantizing keep their input's format."""
    o = op.out
    if (o.bits, o.signed, o.scale) != (src.bits, src.signed, src.scale):
        raise ArtifactError(MANIFEST, f"{op.op} does not requantize: its output format must equal its input's "
                            f"(bits {src.bits}, signed {src.signed}, scale {src.scale})", layer=op.name, field="out")


def _check_multiplier(name: str, m0: int, n: int, art: Artifact, field: str, row: int | None = None) -> None:
    lo, hi = art.requant.m0_range
    if m0 != 0 and not lo <= m0 <= hi:
        raise ArtifactError(MANIFEST, f"M0={m0} outside [{lo}, {hi}] for {art.requant.mode}/{art.requant.m_bits}-bit requant",
                            layer=name, row=row, field=field)


def _check_mac(layer: MacLayer, src: TensorSpec, art: Artifact) -> None:
    name, rows = layer.name, layer.rows
    if layer.k_pad < layer.k:
        raise ArtifactError(MANIFEST, f"k_pad={layer.k_pad} < K={layer.k}", layer=name, field="k_pad")
    for r in range(len(rows)):
        try:
            RowFormat(rows.scheme[r], int(rows.bits[r]))
        except ValueError as e:
            raise ArtifactError(MANIFEST, str(e), layer=name, row=r, field="bits") from None
        _check_multiplier(name, int(rows.m0[r]), int(rows.n[r]), art, "M0", r)
    seen = np.full(len(rows), False)
    for g in GROUPS:
        members = np.array(layer.row_groups[g], dtype=np.int64)
        if members.size and (np.any(np.diff(members) <= 0) or members[-1] >= len(rows)):
            raise ArtifactError(MANIFEST, f"row group {g} must list distinct rows 0..{len(rows) - 1} in ascending order",
                                layer=name, field=f"row_groups.{g}")
        for r in members:
            if seen[r]:
                raise ArtifactError(MANIFEST, f"row is listed in more than one row group", layer=name, row=int(r), field="row_groups")
            seen[r] = True
            if rows.group[r] != g:
                raise ArtifactError(MANIFEST, f"a {rows.format(r)} row belongs to group {rows.group[r]}, not {g}",
                                    layer=name, row=int(r), field=f"row_groups.{g}")
    if not seen.all():
        raise ArtifactError(MANIFEST, "row is in no row group", layer=name, row=int(np.argmin(seen)), field="row_groups")

    bias = np.asarray(layer.bias)
    if bias.shape != (len(rows),):
        raise ArtifactError(WEIGHTS, f"array '{bias_key(name)}' has shape {list(bias.shape)}, expected [{len(rows)}]", layer=name)
    for r in np.flatnonzero(bias.astype(np.int64) != rows.bias):
        raise ArtifactError(MANIFEST, f"bias {rows.bias[r]} differs from weights.npz ({bias[r]})", layer=name, row=int(r), field="bias")

    for g in GROUPS:
        members = layer.row_groups[g]
        shape = (len(members), packed_width(CONTAINER_BITS[g], layer.k_pad))
        if layer.codes[g].shape != shape:
            raise ArtifactError(WEIGHTS, f"array '{codes_key(name, g)}' has shape {list(layer.codes[g].shape)}, "
                                f"expected {list(shape)} ({len(members)} rows x k_pad={layer.k_pad} {CONTAINER_BITS[g]}-bit codes)",
                                layer=name)
        codes = layer.group_codes[g]
        for i, r in enumerate(members):
            pad = np.flatnonzero(codes[i, layer.k :])
            if pad.size:
                raise ArtifactError(WEIGHTS, f"padding column {layer.k + pad[0]} holds code {codes[i, layer.k + pad[0]]:#x}, "
                                    "padding must be code 0", layer=name, row=r, field=codes_key(name, g))
    values = layer.values
    bad = np.abs(values) > rows.qmax[:, None]
    if bad.any():
        r, k = (int(x) for x in np.argwhere(bad)[0])
        raise ArtifactError(WEIGHTS, f"illegal code at column {k}: value {values[r, k]} is outside "
                            f"{rows.format(r)} (legal |v| <= {rows.qmax[r]})", layer=name, row=r, field=codes_key(name, rows.group[r]))

    bound = layer.k * rows.qmax * src.fmt.max_abs + np.abs(rows.bias)
    over = np.flatnonzero(bound >= ACC_LIMIT)
    if over.size:
        r = int(over[0])
        raise ArtifactError(MANIFEST, f"accumulator bound exceeded: K*max|v|*max|u| + |bias| = {layer.k}*{rows.qmax[r]}*"
                            f"{src.fmt.max_abs} + {abs(rows.bias[r])} = {bound[r]} >= 2^31", layer=name, row=r, field="bias")
    if art.requant.mode == "single" and art.requant.m_bits == 16:
        prod = bound * rows.m0
        over = np.flatnonzero(prod >= PRODUCT_LIMIT)
        if over.size:
            r = int(over[0])
            raise ArtifactError(MANIFEST, f"requant product bound {prod[r]} = acc bound x M0 reaches 2^47 (48-bit product)",
                                layer=name, row=r, field="M0")


def validate(art: Artifact) -> None:
    """Raise ArtifactError on the first inconsistency, naming the layer, row and field."""
    inp = art.input
    if inp.tensor.shape != inp.shape or not inp.tensor.signed:
        raise ArtifactError(MANIFEST, "input tensor must be signed and have the input's shape", field="input.tensor")
    if len(inp.mean) != inp.shape[0] or len(inp.std) != inp.shape[0]:
        raise ArtifactError(MANIFEST, f"input mean/std need one value per channel ({inp.shape[0]})", field="input.mean")
    shapes = {inp.name: inp.shape}
    specs = {inp.name: inp.tensor}
    for op in art.ops:
        if op.name in shapes:
            raise ArtifactError(MANIFEST, "op name is used twice", layer=op.name, field="name")
        for src in op.inputs:
            if src not in shapes:
                raise ArtifactError(MANIFEST, f"input '{src}' is not produced by an earlier op (missing layer?)",
                                    layer=op.name, field="inputs")
        expected = _expected_shape(op, shapes)
        if any(d < 1 for d in expected):
            raise ArtifactError(MANIFEST, f"output shape {list(expected)} is empty", layer=op.name, field="out.shape")
        if op.out.shape != expected:
            raise ArtifactError(MANIFEST, f"shape mismatch: out.shape is {list(op.out.shape)}, the op produces {list(expected)}",
                                layer=op.name, field="out.shape")
        src_spec = specs[op.inputs[0]]
        if isinstance(op, MacLayer):
            _check_mac(op, src_spec, art)
        elif isinstance(op, (Shortcut, MaxPool, Flatten)):
            _check_same_format(op, src_spec)
        elif isinstance(op, Add):
            for i in range(2):
                _check_multiplier(op.name, op.m0[i], op.n[i], art, f"requant[{i}].M0")
        elif isinstance(op, (AvgPool, GlobalAvgPool)):
            _check_multiplier(op.name, op.m0, op.n, art, "requant.M0")
        shapes[op.name] = op.out.shape
        specs[op.name] = op.out
    if art.output not in shapes or art.output == inp.name:
        raise ArtifactError(MANIFEST, f"output '{art.output}' is not produced by any op", field="output")
    if shapes[art.output] != (art.num_classes,):
        raise ArtifactError(MANIFEST, f"output shape {list(shapes[art.output])} is not [num_classes={art.num_classes}]",
                            field="output")
