"""netsurg's own Pythonic API: Net, its blobs and params as numpy views
over the library's memory, and errors as exceptions."""
import ctypes
import os
import weakref

import numpy as np

from ._lib import Classification, FcnOpts, Learnable, NetOpts, SolverOpts, Tensor, lib

TRAIN, TEST = 0, 1
_threads = [0]
_live_contexts = weakref.WeakSet()


_STATUS_NAMES = ["NS_OK", "NS_ERR_USAGE", "NS_ERR_INPUT", "NS_ERR_UNSUPPORTED", "NS_ERR_IO",
                 "NS_ERR_NOMEM", "NS_ERR_NET", "NS_ERR_INTERNAL"]


class Error(Exception):
    """A call into libnetsurg failed: .status is the status's enum name
    (e.g. "NS_ERR_INPUT"), .code its number (the CLI's exit code),
    .message the library's message (file, line, layer)."""

    def __init__(self, code, description, message):
        status = _STATUS_NAMES[code] if 0 <= code < len(_STATUS_NAMES) else "NS_ERR_%d" % code
        super().__init__("%s (%s): %s" % (status, description, message))
        self.code, self.status, self.description, self.message = code, status, description, message


def _fs(path):
    return os.fsencode(path)


class Context:
    """One ns_ctx: the error slot and thread count of the calls made on it."""

    def __init__(self):
        self.handle = lib.ns_ctx_create()
        if not self.handle:
            raise MemoryError("netsurg: cannot allocate a context")
        lib.ns_ctx_set_threads(self.handle, _threads[0])
        _live_contexts.add(self)

    def check(self, code):
        """Raises Error with the library's message unless code is NS_OK."""
        if code == 0:
            return
        name = lib.ns_status_name(code).decode()
        message = (lib.ns_ctx_error(self.handle) or b"").decode("utf-8", "replace")
        lib.ns_ctx_clear_error(self.handle)
        raise Error(code, name, message)

    def close(self):
        if getattr(self, "handle", None):
            lib.ns_ctx_destroy(self.handle)
            self.handle = None

    def __del__(self):
        # A net's context is closed by the net, after it: the garbage
        # collector finalizes a cycle's objects in no set order, and the
        # library needs the context to outlive the net.
        if not getattr(self, "owned_by_net", False):
            self.close()


def set_num_threads(n):
    """Threads for every net's compute loops (0: all cores), and OpenBLAS's
    pool, which backward passes and Deconvolution use."""
    n = int(n)
    if n < 0:
        raise ValueError("set_num_threads: %d is negative" % n)
    _threads[0] = n
    for ctx in list(_live_contexts):
        lib.ns_ctx_set_threads(ctx.handle, n)
    lib.ns_blas_set_threads(n)


class _Memory:
    """numpy's array interface over library memory; keeps the owner (the
    Net) alive as long as any array made from it."""

    def __init__(self, owner, pointer, shape):
        self.owner = owner
        address = ctypes.cast(pointer, ctypes.c_void_p).value or 0
        self.__array_interface__ = {"shape": tuple(shape), "typestr": "<f4",
                                    "data": (address, False), "version": 3}


def _tensor_array(owner, t):
    shape = [t.shape[i] for i in range(t.num_axes)]
    if t.count == 0 or not t.data:
        return np.zeros(shape, np.float32)
    return np.asarray(_Memory(owner, t.data, shape))


class Net:
    """A built net.  net.blobs[name] and net.params[layer][i] are numpy
    arrays over the net's own memory (no copies): writes through them are
    what the next forward reads.  A reshape moves the blobs: views taken
    before it are stale (as pycaffe's)."""

    def __init__(self, ctx, handle):
        ctx.owned_by_net = True
        self._ctx, self._h = ctx, handle

    @classmethod
    def load(cls, prototxt, weights=None, phase=TEST, seed=1):
        ctx = Context()
        opts = NetOpts()
        lib.ns_net_opts_init(ctypes.byref(opts))
        opts.phase, opts.seed = int(phase), int(seed)
        if weights is not None:
            opts.weights = _fs(weights)
        handle = ctypes.c_void_p()
        ctx.check(lib.ns_net_load(ctx.handle, _fs(prototxt), ctypes.byref(opts),
                                  ctypes.byref(handle)))
        return cls(ctx, handle)

    @classmethod
    def borrowed(cls, owner, ctx, handle):
        """A net another object owns (a solver's): kept alive through owner,
        never destroyed here."""
        net = cls.__new__(cls)
        net._ctx, net._h, net._owner = ctx, ctypes.c_void_p(handle), owner
        return net

    def __del__(self):
        if getattr(self, "_owner", None) is not None:
            return
        if getattr(self, "_h", None):
            lib.ns_net_destroy(self._h)
            self._h = None
        if getattr(self, "_ctx", None):
            self._ctx.close()

    # ---- structure ----
    @property
    def name(self):
        return lib.ns_net_name(self._h).decode()

    def layer_names(self):
        return [lib.ns_net_layer_name(self._h, i).decode()
                for i in range(lib.ns_net_layer_count(self._h))]

    def layer_type(self, i):
        return lib.ns_net_layer_type(self._h, i).decode()

    def layer_bottoms(self, i):
        return [lib.ns_net_layer_bottom(self._h, i, j).decode()
                for j in range(lib.ns_net_layer_bottom_count(self._h, i))]

    def layer_tops(self, i):
        return [lib.ns_net_layer_top(self._h, i, j).decode()
                for j in range(lib.ns_net_layer_top_count(self._h, i))]

    def blob_names(self):
        return [lib.ns_net_blob(self._h, i).name.decode()
                for i in range(lib.ns_net_blob_count(self._h))]

    @property
    def inputs(self):
        return [lib.ns_net_blob(self._h, lib.ns_net_input_blob(self._h, i)).name.decode()
                for i in range(lib.ns_net_input_count(self._h))]

    @property
    def outputs(self):
        idx = (ctypes.c_int * max(1, lib.ns_net_blob_count(self._h)))()
        n = lib.ns_net_output_blobs(self._h, idx)
        return [lib.ns_net_blob(self._h, idx[i]).name.decode() for i in range(n)]

    # ---- views ----
    def blob(self, name):
        """The blob's values as a numpy view; KeyError if there is none."""
        i = lib.ns_net_find_blob(self._h, name.encode())
        if i < 0:
            raise KeyError("net '%s' has no blob '%s'" % (self.name, name))
        return _tensor_array(self, lib.ns_net_blob(self._h, i))

    @property
    def blobs(self):
        return {name: self.blob(name) for name in self.blob_names()}

    def param(self, layer, index):
        """Writable view of a param: ns_net_param marks the params exposed,
        so caches made from them (Winograd) compare the values each forward."""
        return _tensor_array(self, lib.ns_net_param(self._h, layer, index))

    def layer_index(self, name):
        names = self.layer_names()
        if name not in names:
            raise KeyError("net '%s' has no layer '%s'" % (self.name, name))
        return names.index(name)

    @property
    def params(self):
        out = {}
        for i, name in enumerate(self.layer_names()):
            n = lib.ns_net_param_count(self._h, i)
            if n:
                out[name] = [self.param(i, j) for j in range(n)]
        return out

    def blob_diff(self, name):
        """The blob's gradient as a writable numpy view (zero until a
        backward writes it); KeyError if there is no such blob."""
        i = lib.ns_net_find_blob(self._h, name.encode())
        if i < 0:
            raise KeyError("net '%s' has no blob '%s'" % (self.name, name))
        t = Tensor()
        self._ctx.check(lib.ns_net_blob_diff(self._ctx.handle, self._h, i, ctypes.byref(t)))
        return _tensor_array(self, t)

    def param_diff(self, layer, index):
        """Gradient of params[layer][index] (a shared param's is its owner's)."""
        t = Tensor()
        self._ctx.check(lib.ns_net_param_diff(self._ctx.handle, self._h, layer, index,
                                              ctypes.byref(t)))
        return _tensor_array(self, t)

    def param_diffs(self):
        """{(layer index, param index): numpy view of the param's diff}."""
        out = {}
        for i in range(lib.ns_net_learnable_count(self._h)):
            item = Learnable()
            self._ctx.check(lib.ns_net_learnable(self._h, i, ctypes.byref(item)))
            shape = [item.data.shape[k] for k in range(item.data.num_axes)]
            if item.data.count:
                out[(item.layer, item.index)] = np.asarray(_Memory(self, item.diff, shape))
        return out

    # ---- running ----
    def reshape_input(self, name, shape):
        shape = [int(d) for d in shape]
        if name not in self.inputs:
            raise KeyError("net '%s' has no input '%s' (inputs: %s)"
                           % (self.name, name, ", ".join(self.inputs)))
        arr = (ctypes.c_int64 * len(shape))(*shape)
        self._ctx.check(lib.ns_net_reshape_input(self._ctx.handle, self._h, name.encode(),
                                                 len(shape), arr))

    def set_input(self, name, value):
        if name not in self.inputs:
            raise KeyError("net '%s' has no input '%s' (inputs: %s)"
                           % (self.name, name, ", ".join(self.inputs)))
        dst = self.blob(name)
        value = np.asarray(value)
        if value.shape != dst.shape:
            raise ValueError("input '%s' has shape %s, the net's is %s (reshape the input first)"
                             % (name, value.shape, dst.shape))
        dst[...] = value

    def forward(self, **inputs):
        """Copies the given inputs in, runs the net, returns the output
        blobs by name (views over the net's memory)."""
        for name, value in inputs.items():
            self.set_input(name, value)
        self.run_forward()
        return {name: self.blob(name) for name in self.outputs}

    def run_forward(self):
        """ns_net_forward on the blobs as they are (no copies)."""
        self._ctx.check(lib.ns_net_forward(self._ctx.handle, self._h))

    def run_forward_range(self, first, last):
        """Layers first..last (indices, inclusive) on the blobs as they are."""
        self._ctx.check(lib.ns_net_forward_range(self._ctx.handle, self._h, int(first), int(last)))

    def backward(self, first=0, last=None):
        """Backward through layers last down to first (inclusive; last
        defaults to the top layer) from the diffs the blobs hold, and the
        loss weights of the loss layers in the range.  Param diffs
        accumulate (clear_param_diffs); blob diffs are overwritten."""
        if last is None:
            last = lib.ns_net_layer_count(self._h) - 1
        self._ctx.check(lib.ns_net_backward_range(self._ctx.handle, self._h, int(first),
                                                  int(last)))

    def clear_param_diffs(self):
        lib.ns_net_clear_param_diffs(self._h)

    def fcn(self, height=0, width=0, batch=0, suffix="-conv", seed=1):
        """The FCN cast (ns_fcn_cast): a new net where every InnerProduct is
        a Convolution, its params transplanted flat, its first input
        height x width (0: kept)."""
        ctx = Context()
        opts = FcnOpts()
        lib.ns_fcn_opts_init(ctypes.byref(opts))
        opts.suffix, opts.seed = suffix.encode(), int(seed)
        opts.height, opts.width, opts.batch = int(height), int(width), int(batch)
        handle = ctypes.c_void_p()
        ctx.check(lib.ns_fcn_cast(ctx.handle, self._h, ctypes.byref(opts), ctypes.byref(handle)))
        return Net(ctx, handle)

    def load_weights(self, path):
        self._ctx.check(lib.ns_net_load_weights(self._ctx.handle, self._h, _fs(path)))

    def save(self, path):
        self._ctx.check(lib.ns_net_save_weights(self._ctx.handle, self._h, _fs(path)))

    def save_prototxt(self, path):
        self._ctx.check(lib.ns_net_save_prototxt(self._ctx.handle, self._h, _fs(path)))


def classify(prob, top=5):
    """What one image's probabilities say (ns_classify): prob is (K,) or a
    (K, H, W) map.  Returns {"argmax": (H, W) ints, "confidence": (H, W),
    "top": (H, W, k) class ids by falling probability, "mean": (K,) the
    probabilities averaged over the cells, "top_mean": (k,)}; ties go to
    the lower class id."""
    prob = np.ascontiguousarray(prob, np.float32)
    if prob.ndim not in (1, 3):
        raise ValueError("classify: prob must be (K,) or (K, H, W), not %s" % (prob.shape,))
    k_classes, h, w = (prob.shape + (1, 1))[:3]
    ctx = Context()
    r = Classification()
    ctx.check(lib.ns_classify(ctx.handle, prob.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                              k_classes, h, w, int(top), -1, ctypes.byref(r)))
    try:
        cells = h * w
        out = {"argmax": np.ctypeslib.as_array(r.argmax, (cells,)).reshape(h, w).copy(),
               "confidence": np.ctypeslib.as_array(r.confidence, (cells,)).reshape(h, w).copy(),
               "top": np.ctypeslib.as_array(r.top, (cells * r.k,)).reshape(h, w, r.k).copy(),
               "mean": np.ctypeslib.as_array(r.mean, (k_classes,)).copy(),
               "top_mean": np.ctypeslib.as_array(r.top_mean, (r.k,)).copy()}
    finally:
        lib.ns_classification_free(ctx.handle, ctypes.byref(r))
    return out


class Solver:
    """Caffe's solvers from a solver.prototxt (ns_solver): step, solve,
    snapshot, restore; .net and .test_nets are the solver's own nets."""

    def __init__(self, solver_prototxt, weights=None, seed=-1, solver_type=None):
        """solver_type (e.g. "Adam") overrides the file's type; None keeps it."""
        self._ctx = Context()
        opts = SolverOpts()
        lib.ns_solver_opts_init(ctypes.byref(opts))
        opts.seed = int(seed)
        if solver_type is not None:
            opts.type = solver_type.encode()
        if weights is not None:
            opts.weights = _fs(weights)
        handle = ctypes.c_void_p()
        self._ctx.check(lib.ns_solver_create(self._ctx.handle, _fs(solver_prototxt),
                                             ctypes.byref(opts), ctypes.byref(handle)))
        self._ctx.owned_by_net = True
        self._h = handle

    def __del__(self):
        if getattr(self, "_h", None):
            lib.ns_solver_destroy(self._h)
            self._h = None
        if getattr(self, "_ctx", None):
            self._ctx.close()

    @property
    def iter(self):
        return lib.ns_solver_iter(self._h)

    def net(self):
        return Net.borrowed(self, self._ctx, lib.ns_solver_net(self._h))

    def test_nets(self):
        return [Net.borrowed(self, self._ctx, lib.ns_solver_test_net(self._h, i))
                for i in range(lib.ns_solver_test_net_count(self._h))]

    def step(self, iters):
        self._ctx.check(lib.ns_solver_step(self._ctx.handle, self._h, int(iters)))

    def solve(self):
        self._ctx.check(lib.ns_solver_solve(self._ctx.handle, self._h))

    def snapshot(self):
        self._ctx.check(lib.ns_solver_snapshot(self._ctx.handle, self._h))

    def restore(self, solverstate):
        self._ctx.check(lib.ns_solver_restore(self._ctx.handle, self._h, _fs(solverstate)))
