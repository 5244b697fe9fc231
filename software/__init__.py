"""rowmix: row-wise mixed-scheme quantization, bit-exact golden model and FPGA MAC arrays."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rowmix")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
