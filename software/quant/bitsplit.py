"""Bit-Split and stitching (Wang et al., ICML 2020 / TPAMI 2023): post-training quantization that
writes each weight row's integer values as stitched ternary bit planes and optimises the planes and
the row scale against the layer's float response (notes/algorithms.md 11, from the authors' code).

Integer form of a b-bit row: `v = sum_i 2^(b-2-i) beta_i`, `beta_i in {-1, 0, 1}^K` (plane 0 is
the MSB), so `|v| <= 2^(b-1) - 1` and every row is an ordinary FIXED-b row, `w_hat = s_r v`.

Per MAC layer, in network order (`post`):
1. `fwa`: per-row Lloyd scale from `max|w| / Qp` with round-to-nearest codes;
2. `split`: sign-magnitude bit planes of those codes;
3. `ofwa`: weight-domain refinement (closed-form scale, each plane by the exact ternary minimiser);
4. `response_refine` (the authors' `ofwa_rr`): min ||Y - X (s V)^T||^2 where X is the im2col of the
   layer's input in the quantized network (earlier layers already bit-split, activations quantized)
   and Y the float network's response before BN; closed-form scales, then each plane by exact
   coordinate descent over the K columns, vectorised over the rows; the whole loop works on the
   Gram matrices A = X^T X and C = Y^T X, so its cost does not grow with the sample count;
5. error-compensated activation quantization (interpretation): the layer's output activation scale
   is re-fitted so that the quantized output, computed from the quantized input and weights, best
   matches the float output (MSE over the same samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import RowmixError
from ..formats import ActFormat, RowFormat, Scheme, quantize_activation, quantize_values
from .methods import Calib, Method
from .qnet import QuantMac, QuantNet

TOL = 1e-9  # scale change that counts as converged (the authors' threshold)
REFIT_FACTORS = np.geomspace(0.5, 2.0, 97)  # activation scale candidates around the MSE scale
REFIT_VALUES = 1 << 18  # activation values used for the refit


# -- bit planes ----------------------------------------------------------------------------------
def plane_weights(bits: int) -> np.ndarray:
    """Integer weight of each plane, MSB first: 2^(b-2), ..., 2, 1."""
    return 2.0 ** np.arange(bits - 2, -1, -1)


def split(v: np.ndarray, bits: int) -> np.ndarray:
    """Sign-magnitude planes [b-1, R, K] of integer values v: beta_i = sign(v) * bit_i(|v|)."""
    mag = np.abs(v).astype(np.int64)
    shifts = np.arange(bits - 2, -1, -1)[:, None, None]
    return (np.sign(v)[None] * ((mag[None] >> shifts) & 1)).astype(np.float64)


def stitch(planes: np.ndarray, bits: int) -> np.ndarray:
    """Integer values v [R, K] of planes [b-1, R, K]."""
    return np.tensordot(plane_weights(bits), planes, axes=1)


def _closed_form_scale(num: np.ndarray, den: np.ndarray, old: np.ndarray) -> np.ndarray:
    """num / den per row, keeping the old scale where the row is all zero or the ratio is not
    positive (a row scale must stay positive for the exporter's multiplier)."""
    ok = (den > 0) & (num > 0)
    return np.where(ok, num / np.where(ok, den, 1.0), old)


# -- weight domain -------------------------------------------------------------------------------
def fwa(w: np.ndarray, bits: int, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Per-row MSE scale by Lloyd iteration from max|w| / Qp, and the round-to-nearest values."""
    fmt = RowFormat(Scheme.FIXED, bits)
    amax = np.abs(w).max(axis=1)
    s = np.where(amax > 0, amax / fmt.qmax, 1.0)
    for _ in range(iters):
        v = quantize_values(w, s[:, None], fmt)
        new = _closed_form_scale((w * v).sum(axis=1), (v * v).sum(axis=1), s)
        done = np.abs(new - s).max() <= TOL
        s = new
        if done:
            break
    return s, quantize_values(w, s[:, None], fmt)


def ofwa(w: np.ndarray, bits: int, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight-domain Bit-Split: from `fwa`, alternate the closed-form row scale and each plane's
    exact element-wise ternary minimiser of ||w - s v||^2. Returns (scales, planes)."""
    s, v = fwa(w, bits)
    planes = split(v, bits)
    c = plane_weights(bits)
    for _ in range(iters):
        v = stitch(planes, bits)
        new = _closed_form_scale((w * v).sum(axis=1), (v * v).sum(axis=1), s)
        done = np.abs(new - s).max() <= TOL
        s = new
        if done:
            break
        for i in range(len(c)):
            residual = w - s[:, None] * (stitch(planes, bits) - c[i] * planes[i])
            step = s[:, None] * c[i]
            planes[i] = np.where(2 * np.abs(residual) >= step, np.sign(residual), 0.0)
    return s, planes


# -- response domain -----------------------------------------------------------------------------
def response_error(gram: np.ndarray, cross: np.ndarray, yy: float, s: np.ndarray, v: np.ndarray) -> float:
    """||Y - X (s V)^T||_F^2 from A = X^T X, C = Y^T X and yy = ||Y||^2."""
    sv = s[:, None] * v
    return float(yy - 2 * (cross * sv).sum() + ((sv @ gram) * sv).sum())


def _plane_descent(gram: np.ndarray, target: np.ndarray, plane: np.ndarray, step: np.ndarray) -> bool:
    """Exact coordinate descent over the columns of one plane, all rows at once.

    Minimises step_r^2 b^T A b - 2 step_r b^T T_r for every row; column n's minimiser over
    {-1, 0, 1} is -sign(lump) where |lump| > step A_nn, else 0, with
    lump = 2 (step (A_n . b - A_nn b_n) - T_n). Works on [K, R] copies so a column is contiguous;
    returns whether any element changed."""
    b = np.ascontiguousarray(plane.T)
    t = np.ascontiguousarray(target.T)
    p = gram @ b  # [K, R]: A_n . b for every row
    diag = np.diag(gram)
    changed = False
    for n in range(len(b)):
        old = b[n]
        lump = 2 * (step * (p[n] - diag[n] * old) - t[n])
        new = np.where(np.abs(lump) > step * diag[n], -np.sign(lump), 0.0)
        delta = new - old
        if delta.any():
            p += gram[:, n, None] * delta[None, :]
            b[n] = new
            changed = True
    plane[...] = b.T
    return changed


def response_refine(gram: np.ndarray, cross: np.ndarray, s: np.ndarray, planes: np.ndarray, bits: int,
                    iters: int) -> tuple[np.ndarray, np.ndarray]:
    """The authors' ofwa_rr: alternate closed-form row scales and plane-wise coordinate descent on
    ||Y - X (s V)^T||^2 (each step is an exact minimisation, so the error never increases). Stops
    early once an iteration changes neither a plane nor a scale. Returns (scales, planes)."""
    c = plane_weights(bits)
    planes = planes.copy()
    for _ in range(iters):
        v = stitch(planes, bits)
        new = _closed_form_scale((cross * v).sum(axis=1), ((v @ gram) * v).sum(axis=1), s)
        moved = np.abs(new - s).max() > TOL
        s = new
        changed = False
        for i in range(len(c)):
            rest = stitch(planes, bits) - c[i] * planes[i]
            target = cross - (s[:, None] * rest) @ gram
            changed |= _plane_descent(gram, target, planes[i], s * c[i])
        if not (changed or moved):
            break
    return s, planes


# -- sampling the network ------------------------------------------------------------------------
def im2col_rows(mac: QuantMac, x: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Rows `local` (indices into image * positions + position) of the layer's im2col matrix."""
    if mac.kind == "linear":
        return x.reshape(len(x), -1)[local]
    cols = F.unfold(x, tuple(mac.weight.shape[2:]), padding=mac.attrs["padding"], stride=mac.attrs["stride"])
    positions = cols.shape[2]
    return cols[local // positions, :, local % positions]


def positions_of(mac: QuantMac, x: torch.Tensor) -> int:
    """Output positions per image (im2col rows per image)."""
    if mac.kind == "linear":
        return 1
    kh, kw = mac.weight.shape[2:]
    (ph, pw), (sh, sw) = mac.attrs["padding"], mac.attrs["stride"]
    return ((x.shape[2] + 2 * ph - kh) // sh + 1) * ((x.shape[3] + 2 * pw - kw) // sw + 1)


def _batches(images: np.ndarray, batch: int):
    for start in range(0, len(images), batch):
        yield start, torch.from_numpy(np.ascontiguousarray(images[start : start + batch], np.float32))


def _gather(index: torch.Tensor, positions: int, start: int, count: int) -> torch.Tensor:
    """The sampled rows that fall into the batch [start, start + count) images, batch-local."""
    lo, hi = start * positions, (start + count) * positions
    chosen = index[(index >= lo) & (index < hi)]
    return chosen - lo


@dataclass
class LayerSamples:
    """Which im2col rows a layer is fitted on, and the float network's response there."""

    index: torch.Tensor  # sorted global row indices
    positions: int
    y: np.ndarray  # [N, R] float output before BN (no bias)


@torch.no_grad()
def float_targets(qnet: QuantNet, images: np.ndarray, samples: int, seed: int,
                  batch: int) -> dict[str, LayerSamples]:
    """One float pass: per MAC layer, `samples` random im2col rows and Y = X_float W^T there.
    Must run before any weight is replaced (the float weights are the target)."""
    macs = [n for n in qnet.nodes if n.kind in ("conv", "linear")]
    gen = torch.Generator().manual_seed(seed)
    index: dict[str, tuple[torch.Tensor, int]] = {}
    ys: dict[str, list[np.ndarray]] = {n.name: [] for n in macs}
    qnet.set_quantized(False)
    try:
        for start, x in _batches(images, batch):
            values = qnet(x, keep=True)
            for node in macs:
                mac, src = qnet.mac(node.name), values[node.inputs[0]]
                if node.name not in index:  # positions are known once the input's shape is
                    positions = positions_of(mac, src)
                    total = len(images) * positions
                    chosen = torch.randperm(total, generator=gen)[: min(samples, total)]
                    index[node.name] = torch.sort(chosen).values, positions
                rows = im2col_rows(mac, src, _gather(*index[node.name], start, len(x)))
                w = mac.weight.detach().reshape(mac.rows, -1).double()
                ys[node.name].append((rows.double() @ w.T).numpy())
    finally:
        qnet.set_quantized(True)
    return {name: LayerSamples(idx, positions, np.concatenate(ys[name])) for name, (idx, positions) in index.items()}


@torch.no_grad()
def quantized_inputs(qnet: QuantNet, images: np.ndarray, upto: int, s: LayerSamples, batch: int) -> np.ndarray:
    """The sampled im2col rows of node `upto`'s input in the quantized network (only the nodes
    before it run)."""
    node = qnet.nodes[upto]
    mac = qnet.mac(node.name)
    rows = []
    for start, x in _batches(images, batch):
        values = {"input": qnet.preprocess(x)}
        for prev in qnet.nodes[:upto]:
            values[prev.name] = qnet.node_forward(prev, [values[i] for i in prev.inputs])
        rows.append(im2col_rows(mac, values[node.inputs[0]], _gather(s.index, s.positions, start, len(x))))
    return torch.cat(rows).double().numpy()


# -- activations ---------------------------------------------------------------------------------
def layer_output(mac: QuantMac, pre: np.ndarray) -> np.ndarray:
    """BN (with the conv bias) and ReLU applied to pre-BN responses [N, R]."""
    gain, offset = (t.detach().double().numpy() for t in mac.affine())
    z = pre * gain[None] + offset[None]
    return np.maximum(z, 0) if mac.relu else z


def refit_scale(z_q: np.ndarray, z_f: np.ndarray, fmt: ActFormat, seed: int) -> float:
    """Error-compensated activation scale: the candidate (around the current scale, which is one of
    them) whose quantization of the quantized network's output is closest to the float output."""
    rng = np.random.default_rng(seed)
    flat_q, flat_f = z_q.reshape(-1), z_f.reshape(-1)
    if flat_q.size > REFIT_VALUES:
        pick = rng.choice(flat_q.size, REFIT_VALUES, replace=False)
        flat_q, flat_f = flat_q[pick], flat_f[pick]
    best, best_err = fmt.scale, np.inf
    for cand in np.float32(fmt.scale * np.concatenate([[1.0], REFIT_FACTORS])):
        probe = ActFormat(fmt.bits, fmt.signed, float(cand))
        err = float(((quantize_activation(flat_q, probe) * float(cand) - flat_f) ** 2).sum())
        if err < best_err:
            best, best_err = float(cand), err
    return best


def sync_pools(qnet: QuantNet, name: str) -> None:
    """Pooled tensors derive their scale from their input's (calibrate.set_activation_formats:
    the input's full range onto the output's); re-derive it after that input's scale changed."""
    for node in qnet.nodes:
        if node.kind in ("avgpool", "global_avgpool") and node.inputs[0] == name:
            q, src = qnet.act(node.name), qnet.tensor_format(name)
            probe = ActFormat(q.fmt.bits, src.signed, 1.0)
            q.fmt = ActFormat(q.fmt.bits, src.signed, float(np.float32(src.scale * src.hi / probe.hi)))


# -- the method ----------------------------------------------------------------------------------
def write_rows(mac: QuantMac, s: np.ndarray, v: np.ndarray, bits: int) -> None:
    """Export contract: weight = scale * v in float32 so that the encoder returns exactly v."""
    s32 = s.astype(np.float32)
    w = (s32[:, None] * v.astype(np.float32)).reshape(mac.weight.shape)
    with torch.no_grad():
        mac.weight.copy_(torch.from_numpy(w))
    mac.set_formats([RowFormat(Scheme.FIXED, bits)] * mac.rows, s32)


@dataclass(frozen=True)
class BitSplit(Method):
    """Every row FIXED-b with stitched ternary bit planes fitted to the float response (PTQ: all
    the work is in `post`; `init_scales` keeps the default MSE scales, the round-to-nearest start
    a QAT run would use)."""

    bits: int = 4  # hidden layers
    first_last_bits: int = 8  # first conv and last linear layer
    samples: int = 12_000  # im2col rows per layer (the authors' 30 x 400)
    weight_iters: int = 50
    response_iters: int = 100
    act_refit: bool = True
    seed: int = 0
    batch: int = 100
    name: str = "bitsplit"

    def __post_init__(self) -> None:
        if not 3 <= self.bits <= 8 or not 3 <= self.first_last_bits <= 8:
            raise RowmixError(f"{self.name}: bits and first_last_bits must be 3..8 (a sign plane and at "
                              f"least two bit planes), got {self.bits} and {self.first_last_bits}")
        if self.samples < 1 or self.weight_iters < 0 or self.response_iters < 0:
            raise RowmixError(f"{self.name}: samples must be >= 1 and the iteration counts >= 0")

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits, "first_last_bits": self.first_last_bits, "samples": self.samples,
                "weight_iters": self.weight_iters, "response_iters": self.response_iters,
                "act_refit": self.act_refit, "seed": self.seed}

    def layer_bits(self, qnet: QuantNet) -> dict[str, int]:
        """first_last_bits for the first and the last MAC layer in network order, bits elsewhere."""
        names = [n.name for n in qnet.nodes if n.kind in ("conv", "linear")]
        return {n: self.first_last_bits if n in (names[0], names[-1]) else self.bits for n in names}

    def assign(self, qnet: QuantNet, calib: Calib | None) -> None:
        for name, bits in self.layer_bits(qnet).items():
            mac = qnet.mac(name)
            mac.set_formats([RowFormat(Scheme.FIXED, bits)] * mac.rows)

    def post(self, qnet: QuantNet, calib: Calib | None) -> None:
        """Layer by layer in network order, so each layer's input already carries the quantization
        error of every earlier layer; without calibration images, weight domain only."""
        bits = self.layer_bits(qnet)
        targets = None
        if calib is not None and (self.response_iters > 0 or self.act_refit):
            targets = float_targets(qnet, calib.images, self.samples, self.seed, self.batch)
        ratios = []
        for idx, node in enumerate(qnet.nodes):
            if node.kind not in ("conv", "linear"):
                continue
            mac, b = qnet.mac(node.name), bits[node.name]
            s, planes = ofwa(mac.weight.detach().reshape(mac.rows, -1).double().numpy(), b, self.weight_iters)
            if targets is not None:
                x = quantized_inputs(qnet, calib.images, idx, targets[node.name], self.batch)
                s, planes, ratio = self._fit_response(x, targets[node.name].y, s, planes, b)
                ratios.append(ratio)
                if self.act_refit and node.name != qnet.output and qnet.act(node.name) is not None:
                    self._refit_output(qnet, node.name, x, targets[node.name].y, s, stitch(planes, b), idx)
            write_rows(mac, s, stitch(planes, b), b)
        if ratios:
            qnet.notes["bitsplit_response_error"] = (
                f"after/before response refinement: mean {np.mean(ratios):.3f}, max {np.max(ratios):.3f}")

    def _fit_response(self, x: np.ndarray, y: np.ndarray, s: np.ndarray, planes: np.ndarray,
                      bits: int) -> tuple[np.ndarray, np.ndarray, float]:
        """ofwa_rr on the layer's samples; also returns the response error after / before."""
        gram, cross, yy = x.T @ x, y.T @ x, float((y ** 2).sum())
        before = response_error(gram, cross, yy, s, stitch(planes, bits))
        s, planes = response_refine(gram, cross, s, planes, bits, self.response_iters)
        return s, planes, response_error(gram, cross, yy, s, stitch(planes, bits)) / max(before, 1e-300)

    def _refit_output(self, qnet: QuantNet, name: str, x: np.ndarray, y: np.ndarray, s: np.ndarray,
                      v: np.ndarray, idx: int) -> None:
        """Re-fit the layer's output activation scale on its quantized vs float outputs (BN, ReLU)
        at the sampled positions; the fitted weights are the float32 ones that will be exported."""
        mac, q = qnet.mac(name), qnet.act(name)
        w_hat = (s.astype(np.float32)[:, None] * v.astype(np.float32)).astype(np.float64)
        z_q, z_f = layer_output(mac, x @ w_hat.T), layer_output(mac, y)
        q.fmt = ActFormat(q.fmt.bits, q.fmt.signed, refit_scale(z_q, z_f, q.fmt, self.seed + idx))
        sync_pools(qnet, name)
