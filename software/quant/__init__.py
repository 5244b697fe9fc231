"""The front end (DESIGN section 4): capture a torch model, assign row formats, calibrate, export."""

from .graph import CaptureError, QNode, capture
from .methods import METHODS, Fixed, Method, Mixed, Ratio, SP2, make_method
from .ptq import Quantized, fakequant_from_artifact, quantize
from .qnet import QuantMac, QuantNet

__all__ = [
    "CaptureError", "QNode", "capture",
    "METHODS", "Fixed", "Method", "Mixed", "Ratio", "SP2", "make_method",
    "Quantized", "fakequant_from_artifact", "quantize",
    "QuantMac", "QuantNet",
]
