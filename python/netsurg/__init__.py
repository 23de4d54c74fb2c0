"""netsurg from Python: Caffe models loaded, edited and run by libnetsurg,
with numpy views over the net's own memory.  `netsurg.caffe` is pycaffe's
API on top of it."""
from ._batch import ImageClassifier
from ._core import TEST, TRAIN, Error, Net, Solver, classify, set_num_threads

__all__ = ["Net", "Solver", "Error", "classify", "ImageClassifier", "TRAIN", "TEST",
           "set_num_threads"]
__version__ = "0.1.0"
