"""Run a network on a board through the host link: the same per-layer loop as the cocotb
testbench (host does im2col, adds and pooling with the golden model's functions; the board does
every MAC layer), over any byte transport: a pyserial port for `rowmix run`, the simulated UART in
the cocotb link test. Every layer's board outputs are checked against the golden model, so a board
run is a bit-exactness test too."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .. import golden
from ..artifact import Artifact, MacLayer
from ..golden.workspace import Workspace
from ..hardware.config import ArrayConfig
from ..hardware.protocol import activation_bytes, config_words
from ..sim.checker import Mismatch, first_mismatch
from ..sim.host import assemble, mac_vectors
from .frames import Cmd, Decoder, Frame, LinkError, Status, act_frame, buffer_bytes, config_frames, encode, expect


class Transport(Protocol):
    def write(self, data: bytes) -> object: ...

    def read(self, n: int) -> bytes: ...  # fewer bytes (or none) when nothing arrives in time


class BoardLink:
    """Stop-and-wait requests: one frame out, its one response back."""

    def __init__(self, transport: Transport, cfg: ArrayConfig, idle_reads: int = 50) -> None:
        self.t, self.cfg, self.idle_reads = transport, cfg, idle_reads
        self.decoder = Decoder()
        self.max_payload = buffer_bytes(cfg)

    def request(self, frame: bytes, reply: Cmd) -> Frame:
        self.t.write(frame)
        idle = 0
        while idle < self.idle_reads:
            data = self.t.read(64)
            idle = 0 if data else idle + 1
            frames = self.decoder.feed(data)
            if frames:
                if len(frames) > 1:
                    raise LinkError(f"{len(frames)} frames from the board for one request")
                return expect(frames[0], reply)
        raise LinkError(f"no reply from the board to a {Cmd(frame[1]).name} frame ({self.idle_reads} reads timed out)")

    def reset(self) -> None:
        self.request(encode(Cmd.RESET), Cmd.ACK)

    def status(self) -> Status:
        return Status.parse(self.request(encode(Cmd.STATUS), Cmd.STATUS_REPLY).payload)

    def configure(self, words: np.ndarray) -> None:
        for frame in config_frames(words, self.max_payload):
            self.request(frame, Cmd.ACK)

    def vector(self, beats: np.ndarray, rows: int) -> np.ndarray:
        out = np.frombuffer(self.request(act_frame(beats), Cmd.RESULT).payload, "<i2").astype(np.int64)
        if len(out) != rows:
            raise LinkError(f"the board returned {len(out)} outputs for a {rows}-row layer")
        return out


@dataclass
class BoardRun:
    predictions: list[int] = field(default_factory=list)
    mismatch: Mismatch | None = None
    layers: dict[str, dict[str, int]] = field(default_factory=dict)  # cycles and pixels per layer
    seconds: float = 0.0


def run_network(link: BoardLink, art: Artifact, images: np.ndarray,
                progress: Callable[[int], None] | None = None) -> BoardRun:
    """Every image through the network, one image at a time; stops at the first mismatch."""
    t0 = time.perf_counter()
    cfg = link.cfg
    plans, tables, ws = golden.plans(art), golden.add_tables(art), Workspace()
    run = BoardRun()
    link.reset()
    for i in range(len(images)):
        values = {art.input.name: golden.quantize_input(images[i : i + 1], art.input)}
        for op in art.ops:
            if not isinstance(op, MacLayer):
                values[op.name] = golden.apply_op(art, op, values, plans, tables, ws)
                continue
            x = values[op.input]
            words, plan = config_words(op, art.tensors[op.input], cfg, art.requant)
            link.configure(words)
            beats = activation_bytes(mac_vectors(op, x), plan, cfg)
            outputs = np.stack([link.vector(b, plan.r) for b in beats])
            st = link.status()
            s = run.layers.setdefault(op.name, {"cycles": 0, "pixels": 0})
            s["cycles"] += st.cycles
            s["pixels"] += st.pixels
            actual = assemble(op, outputs, 1)
            expected = golden.mac_layer(op, x, plans[op.name], art.requant)
            run.mismatch = first_mismatch(op.name, expected, actual, i)
            if run.mismatch is not None:
                run.seconds = time.perf_counter() - t0
                return run
            values[op.name] = actual.astype(np.float32)
        run.predictions.append(int(values[art.output].reshape(1, -1).argmax(axis=1)[0]))
        if progress is not None:
            progress(i + 1)
    run.seconds = time.perf_counter() - t0
    return run
