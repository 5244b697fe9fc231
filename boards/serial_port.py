"""The host link over a real serial port (pyserial): the Transport `rowmix run` hands to BoardLink."""

from __future__ import annotations

from ..errors import RowmixError


class SerialTransport:
    def __init__(self, port: str, baud: int, read_timeout: float = 0.1) -> None:
        import serial

        try:
            self.port = serial.Serial(port, baud, timeout=read_timeout)
        except (serial.SerialException, ValueError) as e:
            raise RowmixError(f"cannot open serial port {port!r} at {baud} baud: {e}") from None
        self.port.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, n: int) -> bytes:
        return self.port.read(max(1, min(n, self.port.in_waiting)))

    def close(self) -> None:
        self.port.close()
