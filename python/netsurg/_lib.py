"""libnetsurg.so through ctypes: where the library is, and the prototypes
of the functions this package calls.

ctypes.CDLL (not PyDLL) releases the GIL for the duration of every foreign
call, so a forward pass in one thread lets other Python threads run."""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int64, c_uint64, c_void_p

_HERE = os.path.dirname(os.path.abspath(__file__))
_NAME = "libnetsurg.so"


def library_candidates():
    """Where the library is looked for, in order: $NETSURG_LIB, a copy
    installed next to the package, the repository's build/ folder."""
    env = os.environ.get("NETSURG_LIB")
    if env:
        return [env]
    repo_build = os.path.join(_HERE, "..", "..", os.environ.get("NS_BUILD", "build"), _NAME)
    return [os.path.join(_HERE, _NAME), os.path.normpath(repo_build)]


def _load():
    tried = []
    for path in library_candidates():
        if os.path.exists(path):
            return ctypes.CDLL(path)
        tried.append(path)
    raise ImportError("netsurg: %s not found (tried %s); build it with `make` or set NETSURG_LIB"
                      % (_NAME, ", ".join(tried)))


class Tensor(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("num_axes", c_int), ("shape", POINTER(c_int64)),
                ("count", c_int64), ("data", POINTER(c_float))]


class NetOpts(ctypes.Structure):
    _fields_ = [("phase", c_int), ("seed", c_uint64), ("weights", c_char_p)]


class Learnable(ctypes.Structure):
    _fields_ = [("layer", c_int), ("index", c_int), ("layer_name", c_char_p), ("data", Tensor),
                ("diff", POINTER(c_float)), ("lr_mult", c_float), ("decay_mult", c_float)]


class Image(ctypes.Structure):
    _fields_ = [("height", c_int), ("width", c_int), ("channels", c_int),
                ("data", POINTER(c_float))]


class FcnOpts(ctypes.Structure):
    _fields_ = [("suffix", c_char_p), ("height", c_int), ("width", c_int), ("batch", c_int),
                ("seed", c_uint64)]


class Classification(ctypes.Structure):
    _fields_ = [("classes", c_int), ("map_h", c_int), ("map_w", c_int), ("k", c_int),
                ("argmax", POINTER(c_int)), ("confidence", POINTER(c_float)),
                ("top", POINTER(c_int)), ("mean", POINTER(c_double)),
                ("top_mean", POINTER(c_int))]


class SolverOpts(ctypes.Structure):
    _fields_ = [("seed", c_int64), ("weights", c_char_p), ("on_event", c_void_p),
                ("user", c_void_p), ("stop", POINTER(c_int)), ("type", c_char_p)]


MAX_CHANNELS = 16


class Transform(ctypes.Structure):
    _fields_ = [("num_swap", c_int), ("channel_swap", c_int * MAX_CHANNELS),
                ("raw_scale", c_double), ("num_mean_values", c_int),
                ("mean_values", c_double * MAX_CHANNELS), ("mean_image", c_void_p),
                ("input_scale", c_double), ("antialias", c_int)]


lib = _load()
_P = c_void_p  # opaque handles: ns_ctx *, ns_net *
_PROTOTYPES = {
    "ns_status_name": (c_char_p, [c_int]),
    "ns_ctx_create": (_P, []),
    "ns_ctx_destroy": (None, [_P]),
    "ns_ctx_error": (c_char_p, [_P]),
    "ns_ctx_status": (c_int, [_P]),
    "ns_ctx_clear_error": (None, [_P]),
    "ns_ctx_set_threads": (None, [_P, c_int]),
    "ns_blas_set_threads": (None, [c_int]),
    "ns_net_opts_init": (None, [POINTER(NetOpts)]),
    "ns_net_load": (c_int, [_P, c_char_p, POINTER(NetOpts), POINTER(_P)]),
    "ns_net_destroy": (None, [_P]),
    "ns_net_load_weights": (c_int, [_P, _P, c_char_p]),
    "ns_net_save_weights": (c_int, [_P, _P, c_char_p]),
    "ns_net_save_prototxt": (c_int, [_P, _P, c_char_p]),
    "ns_net_name": (c_char_p, [_P]),
    "ns_net_layer_count": (c_int, [_P]),
    "ns_net_layer_name": (c_char_p, [_P, c_int]),
    "ns_net_layer_type": (c_char_p, [_P, c_int]),
    "ns_net_layer_bottom_count": (c_int, [_P, c_int]),
    "ns_net_layer_top_count": (c_int, [_P, c_int]),
    "ns_net_layer_bottom": (c_char_p, [_P, c_int, c_int]),
    "ns_net_layer_top": (c_char_p, [_P, c_int, c_int]),
    "ns_net_param_count": (c_int, [_P, c_int]),
    "ns_net_param": (Tensor, [_P, c_int, c_int]),
    "ns_net_blob_count": (c_int, [_P]),
    "ns_net_find_blob": (c_int, [_P, c_char_p]),
    "ns_net_blob": (Tensor, [_P, c_int]),
    "ns_net_input_count": (c_int, [_P]),
    "ns_net_input_blob": (c_int, [_P, c_int]),
    "ns_net_output_blobs": (c_int, [_P, POINTER(c_int)]),
    "ns_net_reshape_input": (c_int, [_P, _P, c_char_p, c_int, POINTER(c_int64)]),
    "ns_net_forward": (c_int, [_P, _P]),
    "ns_net_forward_range": (c_int, [_P, _P, c_int, c_int]),
    "ns_net_backward_range": (c_int, [_P, _P, c_int, c_int]),
    "ns_net_blob_diff": (c_int, [_P, _P, c_int, POINTER(Tensor)]),
    "ns_net_param_diff": (c_int, [_P, _P, c_int, c_int, POINTER(Tensor)]),
    "ns_net_clear_param_diffs": (None, [_P]),
    "ns_net_learnable_count": (c_int, [_P]),
    "ns_net_learnable": (c_int, [_P, c_int, POINTER(Learnable)]),
    "ns_fcn_opts_init": (None, [POINTER(FcnOpts)]),
    "ns_fcn_cast": (c_int, [_P, _P, POINTER(FcnOpts), POINTER(_P)]),
    "ns_classify": (c_int, [_P, POINTER(c_float), c_int, c_int, c_int, c_int, c_int,
                            POINTER(Classification)]),
    "ns_classification_free": (None, [_P, POINTER(Classification)]),
    "ns_solver_opts_init": (None, [POINTER(SolverOpts)]),
    "ns_solver_create": (c_int, [_P, c_char_p, POINTER(SolverOpts), POINTER(_P)]),
    "ns_solver_destroy": (None, [_P]),
    "ns_solver_restore": (c_int, [_P, _P, c_char_p]),
    "ns_solver_solve": (c_int, [_P, _P]),
    "ns_solver_step": (c_int, [_P, _P, c_int]),
    "ns_solver_snapshot": (c_int, [_P, _P]),
    "ns_solver_iter": (c_int, [_P]),
    "ns_solver_net": (_P, [_P]),
    "ns_solver_test_net_count": (c_int, [_P]),
    "ns_solver_test_net": (_P, [_P, c_int]),
    "ns_image_load": (c_int, [_P, c_char_p, c_int, POINTER(Image)]),
    "ns_image_resize": (c_int, [_P, POINTER(Image), c_int, c_int, c_int, POINTER(Image)]),
    "ns_image_free": (None, [_P, POINTER(Image)]),
    "ns_transform_init": (None, [POINTER(Transform)]),
    "ns_transform_preprocess": (c_int, [_P, POINTER(Transform), POINTER(Image), c_int, c_int,
                                        POINTER(c_float), c_int64]),
}
for _name, (_res, _args) in _PROTOTYPES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
