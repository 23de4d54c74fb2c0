"""`import caffe` for pycaffe scripts, served by netsurg: put this folder's
parent (python/caffe_shim) on sys.path (or PYTHONPATH) to opt in."""
import sys

from netsurg.caffe import *  # noqa: F401,F403
from netsurg.caffe import io, net  # noqa: F401

sys.modules[__name__ + ".io"] = io
