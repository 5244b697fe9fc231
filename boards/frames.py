"""The host link's frames, host side: what `rowmix run`, the cocotb UART test and the board's
Amaranth link (boards/link.py) agree on.

Every frame, both directions: `SYNC, cmd, len_lo, len_hi, payload[len], check`, where `check`
makes `cmd + len_lo + len_hi + sum(payload) + check` a multiple of 256. The host sends one frame
and waits for its one response (stop and wait), so the board needs no receive buffering beyond one
frame and never feeds the engine a byte of a frame whose check failed.

Host -> board                                   board -> host (response)
  CONFIG      32-bit LE words, more follow        ACK [cmd, flags]
  CONFIG_END  32-bit LE words, `last` on the final word
  ACT         one activation vector: S beats of   RESULT: the pixel's R outputs, int16 LE
              t_k bytes, `last` on the final beat
  STATUS      (empty)                             STATUS [flags, cycles u32, pixels u32, rejected u16]
  RESET       (empty): engine and counters reset  ACK [cmd, flags]
A frame with a bad check, an unknown command, a bad length or one longer than the board's buffer
is answered by NAK [cmd, reason] and has no effect. flags: bit 0 busy, 1 configured, 2 engine error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

SYNC = 0x5A
HEADER = 4  # sync, cmd, len (2)


class Cmd(enum.IntEnum):
    CONFIG = 0x01
    CONFIG_END = 0x02
    ACT = 0x03
    STATUS = 0x04
    RESET = 0x05
    ACK = 0x81
    RESULT = 0x83
    STATUS_REPLY = 0x84
    NAK = 0xEE


class Nak(enum.IntEnum):
    CHECK = 1  # checksum mismatch
    COMMAND = 2  # unknown command
    LENGTH = 3  # length not a multiple of the word / beat size, or beyond the buffer


def buffer_bytes(cfg) -> int:
    """The board's frame buffer (HostLink): one activation vector of the array's longest K, at least 256."""
    return max(256, cfg.max_steps * cfg.t_k)


class LinkError(Exception):
    """The board answered with NAK, an unexpected frame, or nothing."""


@dataclass(frozen=True)
class Frame:
    cmd: int
    payload: bytes


def check_byte(cmd: int, payload: bytes) -> int:
    n = len(payload)
    return (-(cmd + (n & 0xFF) + (n >> 8) + sum(payload))) & 0xFF


def encode(cmd: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds 65535")
    n = len(payload)
    return bytes([SYNC, cmd, n & 0xFF, n >> 8]) + bytes(payload) + bytes([check_byte(cmd, payload)])


class Decoder:
    """Incremental decoder of the byte stream from the board: `feed` returns the complete frames."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        frames = []
        while True:
            start = self.buf.find(bytes([SYNC]))
            if start < 0:
                self.buf.clear()
                return frames
            del self.buf[:start]
            if len(self.buf) < HEADER:
                return frames
            n = self.buf[2] | self.buf[3] << 8
            if len(self.buf) < HEADER + n + 1:
                return frames
            cmd, payload, chk = self.buf[1], bytes(self.buf[HEADER : HEADER + n]), self.buf[HEADER + n]
            if check_byte(cmd, payload) != chk:
                raise LinkError(f"frame 0x{cmd:02x} from the board failed its check byte")
            del self.buf[: HEADER + n + 1]
            frames.append(Frame(cmd, payload))


def config_frames(words: np.ndarray, max_payload: int) -> list[bytes]:
    """One layer's configuration words as CONFIG frames, the last one CONFIG_END."""
    data = np.asarray(words, "<u4").tobytes()
    per = max(4, max_payload // 4 * 4)
    chunks = [data[i : i + per] for i in range(0, len(data), per)] or [b""]
    return [encode(Cmd.CONFIG_END if i == len(chunks) - 1 else Cmd.CONFIG, c) for i, c in enumerate(chunks)]


def act_frame(vector_bytes: np.ndarray) -> bytes:
    """One pixel's activation beats ([S, t_k] bytes from hardware.protocol.activation_bytes)."""
    return encode(Cmd.ACT, np.ascontiguousarray(vector_bytes, np.uint8).tobytes())


@dataclass(frozen=True)
class Status:
    busy: bool
    configured: bool
    error: bool
    cycles: int
    pixels: int
    rejected: int  # frames the board answered with NAK since the last reset

    @classmethod
    def parse(cls, payload: bytes) -> "Status":
        if len(payload) != 11:
            raise LinkError(f"STATUS reply of {len(payload)} bytes, expected 11")
        f = payload[0]
        return cls(bool(f & 1), bool(f & 2), bool(f & 4), int.from_bytes(payload[1:5], "little"),
                   int.from_bytes(payload[5:9], "little"), int.from_bytes(payload[9:11], "little"))


def expect(frame: Frame, cmd: Cmd) -> Frame:
    if frame.cmd == Cmd.NAK:
        what = Cmd(frame.payload[0]).name if frame.payload and frame.payload[0] in Cmd._value2member_map_ else "?"
        reason = Nak(frame.payload[1]).name if len(frame.payload) > 1 and frame.payload[1] in Nak._value2member_map_ else "?"
        raise LinkError(f"the board rejected a {what} frame: {reason}")
    if frame.cmd != cmd:
        raise LinkError(f"expected a {cmd.name} frame from the board, got 0x{frame.cmd:02x}")
    return frame
