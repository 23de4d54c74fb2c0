"""Classify image files in batches, as `netsurg classify --list` does:
the library decodes and preprocesses each file (ns_image_load,
ns_transform_preprocess), the net runs the good ones as one batch, and
each file gives the record the CLI writes as its JSON line (a file that
cannot be read gives {"image": path, "error": message}).  One
ImageClassifier keeps its net: load it once, call classify_files often."""
import ctypes
import os

import numpy as np

from ._core import Context, Error, Net, classify
from ._lib import Image, Transform, lib

_GREY = 1  # NS_IMAGE_GREY


def _g6(x):
    """A value as the CLI prints it (%.6g), read back as JSON reads it."""
    return float("%.6g" % x)


class ImageClassifier:
    """prototxt + weights, with classify's preprocessing options: raw_scale
    (default 255), mean (per-channel values in the net's order), channel_swap
    (default (2, 1, 0) on 3 channels; () for none), input_scale, antialias;
    blob: the output (default: the net's last output); top: classes kept;
    batch: images per forward pass (a longer list runs as several)."""

    def __init__(self, prototxt, weights, raw_scale=255.0, mean=None, channel_swap=None,
                 input_scale=1.0, antialias=True, blob=None, top=5, batch=16):
        self.net = Net.load(prototxt, weights)
        self.input = next(n for n in self.net.inputs if self.net.blob(n).ndim == 4)
        _, self.channels, self.height, self.width = self.net.blob(self.input).shape
        self.output = blob or self.net.outputs[-1]
        self.top, self.batch = int(top), max(1, int(batch))
        self._ctx = Context()
        self._tf = self._transform(raw_scale, mean, channel_swap, input_scale, antialias)

    def _transform(self, raw_scale, mean, channel_swap, input_scale, antialias):
        t = Transform()
        lib.ns_transform_init(ctypes.byref(t))
        t.raw_scale, t.input_scale, t.antialias = raw_scale, input_scale, int(bool(antialias))
        swap = (2, 1, 0) if channel_swap is None and self.channels == 3 else channel_swap or ()
        t.num_swap = len(swap)
        for i, c in enumerate(swap):
            t.channel_swap[i] = int(c)
        mean = list(mean or ())
        t.num_mean_values = len(mean)
        for i, m in enumerate(mean):
            t.mean_values[i] = float(m)
        return t

    def preprocess(self, path):
        """The file as the net's input (C, H, W) float32; Error if unreadable."""
        im = Image()
        flags = _GREY if self.channels == 1 else 0
        self._ctx.check(lib.ns_image_load(self._ctx.handle, os.fsencode(path), flags, ctypes.byref(im)))
        out = np.empty((self.channels, self.height, self.width), np.float32)
        try:
            self._ctx.check(lib.ns_transform_preprocess(
                self._ctx.handle, ctypes.byref(self._tf), ctypes.byref(im), self.height,
                self.width, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), out.size))
        finally:
            lib.ns_image_free(self._ctx.handle, ctypes.byref(im))
        return out

    def classify_files(self, paths):
        """One record per path, in order (see the module's docstring)."""
        paths = list(paths)
        return [r for i in range(0, len(paths), self.batch)
                for r in self._classify_batch(paths[i:i + self.batch])]

    def _classify_batch(self, paths):
        inputs, records = [], []
        for path in paths:
            try:
                inputs.append(self.preprocess(path))
                records.append(None)
            except Error as e:
                records.append({"image": path, "error": e.message})
        if inputs:
            self.net.reshape_input(self.input, (len(inputs),) + inputs[0].shape)
            self.net.forward(**{self.input: np.stack(inputs)})
            probs = iter(np.array(self.net.blob(self.output)))  # a copy: the next batch reuses it
            for i, path in enumerate(paths):
                if records[i] is None:
                    records[i] = self._record(path, next(probs))
        return records

    def _record(self, path, prob):
        r = classify(prob, self.top)
        h, w = r["argmax"].shape
        top = [[[{"class": int(c), "prob": _g6(prob.reshape(len(prob), h, w)[c, y, x])}
                 for c in r["top"][y, x]] for x in range(w)] for y in range(h)]
        return {"image": path, "blob": self.output, "shape": [1] + list(prob.shape),
                "map": [h, w], "class": None, "argmax": r["argmax"].tolist(),
                "confidence": [[_g6(v) for v in row] for row in r["confidence"]],
                "top": top,
                "top_mean": [{"class": int(c), "mean_prob": _g6(r["mean"][c])}
                             for c in r["top_mean"]]}
