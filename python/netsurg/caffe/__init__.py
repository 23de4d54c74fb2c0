"""pycaffe's API over netsurg: `from netsurg import caffe` (or `import caffe`
with python/caffe_shim on sys.path) runs pycaffe scripts on libnetsurg."""
import warnings

from .._core import TEST, TRAIN, Error, set_num_threads
from . import io
from .net import Blob, Layer, Net
from .classifier import Classifier
from .net_spec import NetSpec, layers, params, to_proto
from .solver import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver, RMSPropSolver,
                     SGDSolver, get_solver)

__all__ = ["Net", "Classifier", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "get_solver", "Blob", "Layer", "TRAIN", "TEST", "io",
           "Error", "NetSpec", "layers", "params", "to_proto", "set_mode_cpu", "set_mode_gpu",
           "set_device", "set_num_threads"]


def set_mode_cpu():
    """netsurg always runs on the CPU."""


def set_mode_gpu():
    warnings.warn("netsurg runs on the CPU: set_mode_gpu() is ignored", RuntimeWarning,
                  stacklevel=2)


def set_device(device_id):
    warnings.warn("netsurg runs on the CPU: set_device(%r) is ignored" % (device_id,),
                  RuntimeWarning, stacklevel=2)
