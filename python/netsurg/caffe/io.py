"""caffe.io: images in and out of the net's layout, as pycaffe's.  Decoding
and resizing are libnetsurg's (which follows scikit-image's load and
resize), the rest is numpy."""
import ctypes

import numpy as np

from .. import _core
from .._lib import Image, lib

_GREY = 1


def _ctx():
    return _core.Context()


def _take_image(ctx, im):
    """A numpy copy of a library image, which is then freed."""
    try:
        shape = (im.height, im.width, im.channels)
        out = np.ctypeslib.as_array(im.data, shape=shape).copy()
    finally:
        lib.ns_image_free(ctx.handle, ctypes.byref(im))
    return out


def load_image(filename, color=True):
    """H x W x 3 RGB floats in [0, 1] (H x W x 1 with color=False)."""
    ctx = _ctx()
    im = Image()
    ctx.check(lib.ns_image_load(ctx.handle, _core._fs(filename), 0 if color else _GREY,
                                ctypes.byref(im)))
    return _take_image(ctx, im)


def _as_image(array):
    """An ns_image over a C-contiguous float32 H x W x C array (borrowed)."""
    return Image(array.shape[0], array.shape[1], array.shape[2],
                 array.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))


def resize_image(im, new_dims, interp_order=1):
    """pycaffe's resize_image: H x W x K to new_dims (height, width) as
    float32.  As pycaffe: a 1- or 3-channel image is scaled to [0, 1] by
    its min and max, resized the way scikit-image's resize(order=
    interp_order, mode='constant') does (anti-aliased when shrinking), and
    scaled back (a constant image stays constant); other channel counts go
    through scipy.ndimage.zoom.  Bilinear (order 1) on 1 or 3 channels is
    libnetsurg's own resize; the other orders call scikit-image and scipy,
    as pycaffe itself does (Debian's python3-skimage)."""
    im = np.asarray(im)
    if im.ndim != 3:
        raise ValueError("resize_image: expected H x W x K, got shape %s" % (im.shape,))
    if interp_order not in (0, 1, 2, 3, 4, 5):
        raise ValueError("resize_image: interp_order must be 0..5, not %r" % (interp_order,))
    height, width = (int(d) for d in new_dims)
    if im.shape[-1] not in (1, 3):
        return _zoom(im, (height, width), interp_order)
    low, high = float(im.min()), float(im.max())
    if high <= low:
        return np.full((height, width, im.shape[-1]), low, np.float32)
    if interp_order == 1:
        return _library_resize(im.astype(np.float32), height, width)
    try:
        from skimage.transform import resize
    except ImportError:
        raise NotImplementedError("resize_image(interp_order=%r) needs scikit-image, as "
                                  "pycaffe's (python3-skimage); netsurg resizes bilinearly "
                                  "itself" % (interp_order,)) from None
    unit = (im - low) / (high - low)
    out = resize(unit, (height, width), order=interp_order, mode="constant")
    return (out * (high - low) + low).astype(np.float32)


def _library_resize(im, height, width):
    """ns_image_resize, which follows scikit-image's bilinear resize (and
    its min/max scaling) itself."""
    src = np.ascontiguousarray(im, np.float32)
    ctx = _ctx()
    out = Image()
    ctx.check(lib.ns_image_resize(ctx.handle, ctypes.byref(_as_image(src)), height, width, 1,
                                  ctypes.byref(out)))
    return _take_image(ctx, out)


def _zoom(im, dims, order):
    """pycaffe's path for channel counts scikit-image does not take."""
    try:
        from scipy.ndimage import zoom
    except ImportError:
        if order != 1:
            raise NotImplementedError("resize_image of %d channels needs scipy, as pycaffe's "
                                      "(python3-scipy)" % im.shape[-1]) from None
        return _library_resize(im, *dims)
    scale = tuple(np.array(dims, dtype=float) / np.array(im.shape[:2]))
    return zoom(im, scale + (1,), order=order).astype(np.float32)


class Transformer:
    """pycaffe's Transformer: preprocess takes an H x W x K image and gives
    the net's K x H x W input (resize, transpose, channel swap, raw scale,
    mean, input scale, in that order); deprocess undoes it."""

    def __init__(self, inputs):
        self.inputs = {name: tuple(shape) for name, shape in inputs.items()}
        self.transpose, self.channel_swap = {}, {}
        self.raw_scale, self.mean, self.input_scale = {}, {}, {}

    def _check_input(self, in_):
        if in_ not in self.inputs:
            raise KeyError("%s is not one of the net inputs: %s" % (in_, list(self.inputs)))

    def set_transpose(self, in_, order):
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError("Transpose order needs to have the same number of dimensions as "
                             "the input.")
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError("Channel swap needs to have the same number of dimensions as the "
                             "input channels.")
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_input_scale(self, in_, scale):
        self._check_input(in_)
        self.input_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Per channel (K,) or elementwise (K, H, W); an image mean of
        another size is resized to the input's, as Caffe 1.0's."""
        self._check_input(in_)
        mean = np.asarray(mean)
        in_shape = self.inputs[in_][1:]
        if mean.ndim == 1:
            if mean.shape[0] != in_shape[0]:
                raise ValueError("Mean channels incompatible with input.")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if len(mean.shape) == 2:
                mean = mean[np.newaxis]
            if mean.shape[0] != in_shape[0]:
                raise ValueError("Mean channels incompatible with input.")
            if mean.shape[1:] != tuple(in_shape[1:]):
                lo, hi = mean.min(), mean.max()
                unit = (mean - lo) / (hi - lo) if hi > lo else np.zeros_like(mean)
                unit = resize_image(unit.transpose((1, 2, 0)), in_shape[1:]).transpose((2, 0, 1))
                mean = unit * (hi - lo) + lo
        self.mean[in_] = mean

    def preprocess(self, in_, data):
        self._check_input(in_)
        caffe_in = np.asarray(data).astype(np.float32, copy=False)
        in_dims = self.inputs[in_][2:]
        if caffe_in.shape[:2] != tuple(in_dims):
            caffe_in = resize_image(caffe_in, in_dims)
        if in_ in self.transpose:
            caffe_in = caffe_in.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            caffe_in = caffe_in[self.channel_swap[in_], :, :]
        if self.raw_scale.get(in_) is not None:
            caffe_in = caffe_in * self.raw_scale[in_]
        if self.mean.get(in_) is not None:
            caffe_in = caffe_in - self.mean[in_]
        if self.input_scale.get(in_) is not None:
            caffe_in = caffe_in * self.input_scale[in_]
        return caffe_in

    def deprocess(self, in_, data):
        self._check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        if self.input_scale.get(in_) is not None:
            decaf_in = decaf_in / self.input_scale[in_]
        if self.mean.get(in_) is not None:
            decaf_in = decaf_in + self.mean[in_]
        if self.raw_scale.get(in_) is not None:
            decaf_in = decaf_in / self.raw_scale[in_]
        if in_ in self.channel_swap:
            decaf_in = decaf_in[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            decaf_in = decaf_in.transpose(np.argsort(self.transpose[in_]))
        return decaf_in


def oversample(images, crop_dims):
    """pycaffe's ten crops per image: the four corners and the centre, then
    the same five mirrored left to right.  images: N x H x W x K."""
    images = [np.asarray(im) for im in images]
    h, w, k = images[0].shape
    ch, cw = (int(d) for d in crop_dims)
    corners = [(y, x) for y in (0, h - ch) for x in (0, w - cw)]
    centre = (int(h / 2.0 - ch / 2.0), int(w / 2.0 - cw / 2.0))
    starts = corners + [centre]
    crops = np.empty((10 * len(images), ch, cw, k), np.float32)
    for n, im in enumerate(images):
        for i, (y, x) in enumerate(starts):
            crops[10 * n + i] = im[y:y + ch, x:x + cw]
            crops[10 * n + 5 + i] = im[y:y + ch, x:x + cw][:, ::-1]
    return crops


def blobproto_to_array(blob, return_diff=False):
    """A caffe_pb2.BlobProto's data (or diff) as an array of its shape
    (num, channels, height, width for legacy blobs)."""
    values = np.array(blob.diff if return_diff else blob.data, np.float32)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return values.reshape(blob.num, blob.channels, blob.height, blob.width)
    return values.reshape(tuple(blob.shape.dim))


def array_to_blobproto(arr, diff=None):
    """A caffe_pb2.BlobProto holding arr (and diff, of the same shape)."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.astype(float).flat)
    if diff is not None:
        blob.diff.extend(np.asarray(diff).astype(float).flat)
    return blob


def datum_to_array(datum):
    """A caffe_pb2.Datum as a channels x height x width array: uint8 from
    its bytes, else floats from float_data."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape)
    return np.array(datum.float_data).astype(float).reshape(shape)


def array_to_datum(arr, label=None):
    """A caffe_pb2.Datum of a channels x height x width array: bytes for
    uint8, float_data otherwise (pycaffe's, for writing LMDBs)."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError("array_to_datum: expected channels x height x width, got %s"
                         % (arr.shape,))
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = label
    return datum
