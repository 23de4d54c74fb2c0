"""`from caffe.proto import caffe_pb2`, served by netsurg.caffe.proto."""
import sys

from netsurg.caffe.proto import caffe_pb2  # noqa: F401

sys.modules[__name__ + ".caffe_pb2"] = caffe_pb2
