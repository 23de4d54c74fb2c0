"""caffe.Net, its blobs and layers, as pycaffe has them."""
import collections

import numpy as np

from .. import _core
from .._core import TEST, TRAIN


class Blob:
    """pycaffe's Blob: .data and .diff are numpy views over the net's
    memory (new views each access, so they follow reshapes); a param's
    .diff is its gradient, a blob's the gradient backward() wrote there."""

    def __init__(self, net, name=None, param=None):
        self._net, self._name, self._param = net, name, param

    @property
    def data(self):
        if self._param is not None:
            return self._net._core.param(*self._param)
        return self._net._core.blob(self._name)

    @data.setter
    def data(self, value):
        self.data[...] = value

    @property
    def diff(self):
        if self._param is not None:
            return self._net._core.param_diff(*self._param)
        return self._net._core.blob_diff(self._name)

    @diff.setter
    def diff(self, value):
        self.diff[...] = value

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def count(self):
        return int(self.data.size)

    def _legacy(self, axis):
        shape = self.shape
        return shape[axis] if axis < len(shape) else 1

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))

    def reshape(self, *shape):
        """Input blobs only: reshapes the input and, as net.reshape() would
        next, the whole net."""
        if self._param is not None or self._name not in self._net.inputs:
            raise NotImplementedError("netsurg reshapes input blobs only ('%s' is not one)"
                                      % (self._name or "a param"))
        self._net._core.reshape_input(self._name, shape)


class Layer:
    def __init__(self, net, index):
        self._net, self._index = net, index
        self.type = net._core.layer_type(index)
        self.name = net._layer_names[index]

    @property
    def blobs(self):
        return self._net.params.get(self.name, [])


def _parse_args(args, kwargs):
    """pycaffe's two signatures: Net(def, phase) / Net(def, weights, phase),
    and the keyword form Net(def, phase=..., weights=...)."""
    args = list(args)
    if not args and "network_file" not in kwargs:
        raise TypeError("Net(network_file, [weights,] phase)")
    network = kwargs.pop("network_file", None) or args.pop(0)
    weights = kwargs.pop("weights", None)
    phase = kwargs.pop("phase", None)
    for key in ("level", "stages"):
        kwargs.pop(key, None)
    if kwargs:
        raise TypeError("Net(): unexpected arguments %s" % ", ".join(sorted(kwargs)))
    if args and isinstance(args[0], (str, bytes)) or (args and hasattr(args[0], "__fspath__")):
        weights = args.pop(0)
    if args:
        phase = args.pop(0)
    if args:
        raise TypeError("Net(): too many arguments")
    if phase not in (TRAIN, TEST):
        raise ValueError("Net(): phase must be caffe.TRAIN or caffe.TEST, not %r" % (phase,))
    return network, weights, phase


class Net:
    def __init__(self, *args, **kwargs):
        network, weights, phase = _parse_args(args, kwargs)
        self._setup(_core.Net.load(network, weights=weights, phase=phase))

    def _setup(self, core):
        self._core = core
        self._layer_names = core.layer_names()
        self._blob_cache = {}

    @classmethod
    def _wrap(cls, core):
        """A caffe.Net over an existing netsurg.Net (a solver's)."""
        net = cls.__new__(cls)
        net._setup(core)
        return net

    # ---- structure ----
    @property
    def blobs(self):
        out = collections.OrderedDict()
        for name in self._core.blob_names():
            if name not in self._blob_cache:
                self._blob_cache[name] = Blob(self, name=name)
            out[name] = self._blob_cache[name]
        return out

    @property
    def params(self):
        out = collections.OrderedDict()
        for layer, name in enumerate(self._layer_names):
            n = _core.lib.ns_net_param_count(self._core._h, layer)
            if n:
                key = ("param", layer)
                if key not in self._blob_cache:
                    self._blob_cache[key] = [Blob(self, param=(layer, j)) for j in range(n)]
                out[name] = self._blob_cache[key]
        return out

    @property
    def layers(self):
        return [Layer(self, i) for i in range(len(self._layer_names))]

    @property
    def layer_dict(self):
        return collections.OrderedDict((l.name, l) for l in self.layers)

    @property
    def _blob_names(self):
        return self._core.blob_names()

    @property
    def inputs(self):
        return self._core.inputs

    @property
    def outputs(self):
        return self._core.outputs

    @property
    def top_names(self):
        return collections.OrderedDict((name, self._core.layer_tops(i))
                                       for i, name in enumerate(self._layer_names))

    @property
    def bottom_names(self):
        return collections.OrderedDict((name, self._core.layer_bottoms(i))
                                       for i, name in enumerate(self._layer_names))

    # ---- running ----
    def _layer_index(self, name, what):
        try:
            return self._layer_names.index(name)
        except ValueError:
            raise KeyError("%s=%r: the net has no layer of that name" % (what, name)) from None

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """pycaffe's forward: inputs by name (batch-sized arrays copied into
        the input blobs), runs layers start..end (names, both inclusive;
        default all), returns {blob: view} for the net's outputs (end's tops
        if end is given) plus any `blobs` asked for."""
        blobs = list(blobs or [])
        first = 0 if start is None else self._layer_index(start, "start")
        if end is None:
            last, outs = len(self._layer_names) - 1, list(self.outputs)
        else:
            last = self._layer_index(end, "end")
            outs = list(self._core.layer_tops(last))
        outs += [b for b in blobs if b not in outs]
        for name in outs:
            self._core.blob(name)  # KeyError for an unknown blob, before running
        for name, value in kwargs.items():
            if name not in self.inputs:
                raise KeyError("net has no input '%s' (inputs: %s)"
                               % (name, ", ".join(self.inputs)))
            self._copy_batch(name, value, self._core.blob(name), "input")
        self._core.run_forward_range(first, last)
        return {name: self._core.blob(name) for name in outs}

    @staticmethod
    def _copy_batch(name, value, dst, what):
        value = np.asarray(value)
        if value.ndim == 0 or value.shape[0] != dst.shape[0]:
            raise ValueError("%s '%s': %s is not batch sized (%d)"
                             % (what, name, value.shape, dst.shape[0]))
        try:
            dst[...] = value
        except ValueError as e:
            raise ValueError("%s '%s': shape %s does not fit the blob's %s (%s)"
                             % (what, name, value.shape, dst.shape, e)) from None

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """pycaffe's backward: top diffs of the outputs by name (copied into
        their .diff), runs layers start down to end (names, both inclusive;
        default all), returns {blob: diff view} for the net's inputs
        (end's bottoms if end is given) plus any `diffs` asked for.  Loss
        layers in the range start from their loss_weight, as Caffe's; param
        diffs accumulate over calls, as Caffe's."""
        diffs = list(diffs or [])
        last = len(self._layer_names) - 1 if start is None else self._layer_index(start, "start")
        if end is None:
            first, outs = 0, list(self.inputs)
        else:
            first = self._layer_index(end, "end")
            outs = list(self._core.layer_bottoms(first))
        outs += [d for d in diffs if d not in outs]
        for name in outs:
            self._core.blob(name)  # KeyError for an unknown blob, before running
        for name, value in kwargs.items():
            if name not in self.outputs:
                raise KeyError("net has no output '%s' (outputs: %s)"
                               % (name, ", ".join(self.outputs)))
            self._copy_batch(name, value, self._core.blob_diff(name), "top diff")
        self._core.backward(first, last)
        return {name: self._core.blob_diff(name) for name in outs}

    def forward_all(self, blobs=None, **kwargs):
        """Runs any number of items in batches of the net's batch size (the
        last one padded with zeros) and returns copies, stacked."""
        outs = list(self.outputs) + [b for b in (blobs or []) if b not in self.outputs]
        all_outs = {name: [] for name in outs}
        if not kwargs:
            for name, value in self.forward(blobs=blobs).items():
                all_outs[name].extend(value.copy())
        else:
            n = len(next(iter(kwargs.values())))
            batch = self.blobs[next(iter(kwargs))].num
            for i in range(0, n, batch):
                chunk = {}
                for name, value in kwargs.items():
                    value = np.asarray(value)[i:i + batch]
                    pad = batch - len(value)
                    if pad:
                        value = np.concatenate([value, np.zeros((pad,) + value.shape[1:],
                                                                value.dtype)])
                    chunk[name] = value
                result = self.forward(blobs=blobs, **chunk)
                keep = min(batch, n - i)
                for name, value in result.items():
                    all_outs[name].extend(value[:keep].copy())
        return {name: np.asarray(items) for name, items in all_outs.items()}

    def reshape(self):
        """Shapes follow input reshapes at once in netsurg (Blob.reshape on
        an input reshapes the whole net): nothing left to do."""

    def copy_from(self, weights):
        self._core.load_weights(weights)

    def save(self, path):
        self._core.save(path)
