"""The front end (DESIGN section 4): capture a torch model, assign row formats, calibrate, train,
export. Methods are plug-ins (methods.Method): fixed, sp2, mixed, rmsmp / ilmpq / msq, qmse."""

from .graph import CaptureError, QNode, capture
from .methods import SP2, Calib, Fixed, Method, Mixed, Ratio
from .ptq import Quantized, fakequant_from_artifact, quantize
from .qat import TrainConfig
from .qmse import QMSE
from .qnet import QuantMac, QuantNet
from .registry import METHODS, make_method
from .rmsmp import RMSMP

__all__ = [
    "CaptureError", "QNode", "capture",
    "SP2", "Calib", "Fixed", "Method", "Mixed", "Ratio",
    "Quantized", "fakequant_from_artifact", "quantize", "TrainConfig", "QMSE", "QuantMac", "QuantNet",
    "METHODS", "make_method", "RMSMP",
]
