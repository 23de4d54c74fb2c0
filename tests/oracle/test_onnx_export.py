"""`netsurg export --onnx` judged by ONNX's own checker and by two ONNX
consumers that share no code with netsurg:

- ONNX's checker (Debian python3-onnx): check_model(full_check=True), which
  runs shape inference too, on every model written;
- ONNX Runtime (npm onnxruntime-node, through tests/oracle/ort_run.js, graph
  optimisations off) runs every model: its outputs must equal Caffe's own
  figures (../shared/conformance: every net there; BVLC Caffe computed
  them; the checks that read them skip without ../shared) or,
  for the nets built here, netsurg's forward, within 1e-4 of the output's
  largest magnitude (the tolerance of every case below; measured: under
  4e-7 on the conformance nets);
- OpenCV's ONNX importer (cv2.dnn.readNetFromONNX, Debian's OpenCV 4.6) is
  the second consumer, at the same tolerance, except where it is known to
  compute ONNX differently (OPENCV_DIFFERS says which and why; they are
  printed, not hidden).

Every conformance net is exported (ArgMax, Crop and Slice included).
Also: `export --verify` (ONNX Runtime against netsurg's forward, and its
message when ONNX Runtime is absent); errors naming the layer or option; a
pooling corner suite (pad with ceil rounding, windows over the edge,
stride > kernel, AVE's border divisor) against a NumPy rendering of Caffe's
pooling; the dynamic batch; every conformance net at opset 11; the zoo nets and CaffeNet's fully
convolutional cast (slow: NS_SKIP_SLOW=1 skips them). The layers beyond the
conformance nets and external data: test_onnx_layers.py.

ONNX Runtime is found in bench/peers/node_modules (`make deps-ort`) or the
folder NETSURG_ORT_NODE_PATH names (as for `netsurg export --verify`); the
checks that need it, or python3-onnx, skip with a message when absent.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI, SHARED, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None
try:
    import onnx
except ImportError:  # pragma: no cover
    onnx = None

CONF = os.path.join(SHARED, "conformance")  # Caffe's; read there, never committed
NO_CONF = "no %s (../shared)" % CONF
ORT_MODULES = os.environ.get("NETSURG_ORT_NODE_PATH", os.path.abspath("bench/peers/node_modules"))
HAVE_ORT = shutil.which("node") is not None and os.path.isdir(
    os.path.join(ORT_MODULES, "onnxruntime-node"))
ORT_MISSING = ("ONNX Runtime absent: node and npm onnxruntime-node in bench/peers/node_modules "
               "(cd bench/peers && npm install --ignore-scripts)")
PROTO = os.path.join(SHARED, "data", "prototxt")
TOL = 1e-4  # of the output's largest magnitude, every case

# Where OpenCV 4.6's ONNX importer computes ONNX differently (ONNX Runtime
# and Caffe agree on all of these).
OPENCV_DIFFERS = {
    "lrn_within": "AveragePool's count_include_pad=1 is ignored (border averages exclude the "
                  "padding)",
    "ip_axis2": "MatMul of a 3-D input by a 2-D weight is refused",
    "ip_transpose": "Gemm with transB=0 is refused",
    "pool_ave_ceil": "AveragePool followed by Mul with a constant (1, 1, H, W) divisor is refused",
    "pool_ave_pad": "AveragePool followed by Mul with a constant (1, 1, H, W) divisor is refused",
    "scale_two_bottoms": "Mul of two graph values with broadcasting is refused",
    "crop": "a graph input read by no node (Crop's reference bottom, used for its shape) is "
            "refused",
    "slice": "Split's sizes given as an input (opset 13) are ignored: equal parts",
}


def rel_err(ours, ref):
    scale = float(np.abs(ref).max())
    return float(np.abs(ours - ref).max()) / (scale if scale > 0 else 1.0)


def ort_forward(model, inputs, workdir):
    """{name: array} -> [(name, array)] as ONNX Runtime computes them."""
    spec = {"inputs": {}, "outdir": workdir}
    for k, (name, x) in enumerate(inputs.items()):
        path = os.path.join(workdir, "in%d.f32" % k)
        np.ascontiguousarray(x, "<f4").tofile(path)
        spec["inputs"][name] = {"file": path, "shape": list(x.shape)}
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, NODE_PATH=ORT_MODULES)
    p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_run.js"), model,
                        spec_path], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AssertionError("ONNX Runtime failed on %s: %s" % (model, p.stderr))
    return [(o["name"], np.fromfile(o["file"], "<f4").reshape(o["shape"]))
            for o in json.loads(p.stdout)["outputs"]]


def check_model(test, model):
    if onnx is None:
        return
    m = onnx.load(model)
    onnx.checker.check_model(m, full_check=True)
    return m


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class OnnxExport(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-onnx-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def export(self, proto, weights, *opts):
        out = self.path("model.onnx")
        run("export", proto, weights, "--onnx", out, *opts)
        check_model(self, out)
        return out

    def assertClose(self, what, ours, ref):
        self.assertEqual(tuple(ours.shape), tuple(ref.shape), what)
        err = rel_err(ours, ref)
        self.assertLessEqual(err, TOL, "%s: max diff %.3g of the largest magnitude" % (what, err))
        return err

    # The consumers: their checks elsewhere are left out without them, so
    # their absence is reported here as a skip (a failure in CI).
    def test_onnx_checker_present(self):
        if onnx is None:
            self.skipTest("python3-onnx absent: the models are not checked by onnx.checker")

    def test_onnx_runtime_present(self):
        if not HAVE_ORT:
            self.skipTest(ORT_MISSING)

    # ---- the conformance nets, against Caffe's figures ----------------------

    def conformance_case(self, case, blobs):
        d = os.path.join(CONF, case)
        model = self.export(os.path.join(d, "net.prototxt"), os.path.join(d, "weights.caffemodel"))
        inputs = {n: np.load(os.path.join(d, f)) for n, f in blobs["inputs"].items()}
        worst = 0.0
        if HAVE_ORT:
            for name, y in ort_forward(model, inputs, self.dir):
                ref = np.load(os.path.join(d, blobs["blobs"][name]["file"]))
                worst = max(worst, self.assertClose("%s %s (ONNX Runtime)" % (case, name), y, ref))
        if case in OPENCV_DIFFERS:
            print("  %s: OpenCV not compared: %s" % (case, OPENCV_DIFFERS[case]))
            return worst
        net = cv2.dnn.readNetFromONNX(model)
        for name, x in inputs.items():
            net.setInput(x, name)
        names = net.getUnconnectedOutLayersNames()
        for name, y in zip(names, net.forward(names)):
            ref = np.load(os.path.join(d, blobs["blobs"][name]["file"]))
            self.assertClose("%s %s (OpenCV)" % (case, name), y.reshape(ref.shape), ref)
        return worst

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
    def test_conformance_nets(self):
        with open(os.path.join(CONF, "manifest.json")) as f:
            manifest = json.load(f)
        worst, exported = 0.0, 0
        for case, blobs in sorted(manifest.items()):
            with self.subTest(case=case):
                worst = max(worst, self.conformance_case(case, blobs))
                exported += 1
        self.assertGreaterEqual(exported, 58)
        print("  %d conformance nets exported; ONNX Runtime's worst: %.2g of the output's "
              "largest magnitude (tolerance %g)%s" % (exported, worst, TOL,
                                                       "" if HAVE_ORT else "; " + ORT_MISSING))

    # ---- pooling's corners, against Caffe's rule in NumPy -------------------

    POOL_CASES = [
        # (method, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
        ("AVE", 8, 8, 3, 3, 2, 2, 1, 1),  # pad with ceil: the last window hangs over
        ("AVE", 8, 9, 3, 3, 2, 2, 0, 0),  # ceil without pad: divisor counts the image only
        ("AVE", 7, 7, 2, 2, 3, 3, 0, 0),  # stride > kernel
        ("AVE", 6, 6, 3, 3, 3, 3, 2, 2),  # a last window starting in the padding is dropped
        ("AVE", 7, 5, 3, 2, 2, 1, 1, 0),  # rectangular everything
        ("MAX", 6, 6, 3, 3, 2, 2, 1, 1),
        ("MAX", 8, 8, 2, 2, 3, 3, 1, 1),  # stride > kernel with pad
        ("MAX", 6, 7, 3, 3, 3, 3, 2, 2),
        ("MAX", 9, 6, 3, 2, 2, 2, 0, 0),
    ]

    @staticmethod
    def caffe_pool(x, method, k, s, p):
        """Caffe's PoolingLayer forward (CPU), written from its source rules."""
        n, c, size = x.shape[0], x.shape[1], x.shape[2:]
        out = []
        for a in range(2):
            o = -(-(size[a] + 2 * p[a] - k[a]) // s[a]) + 1
            if (p[0] or p[1]) and (o - 1) * s[a] >= size[a] + p[a]:
                o -= 1
            out.append(o)
        y = np.zeros((n, c, out[0], out[1]), np.float64)
        for i in range(out[0]):
            for j in range(out[1]):
                h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
                h1, w1 = min(h0 + k[0], size[0] + p[0]), min(w0 + k[1], size[1] + p[1])
                area = (h1 - h0) * (w1 - w0)
                win = x[:, :, max(h0, 0):min(h1, size[0]), max(w0, 0):min(w1, size[1])]
                y[:, :, i, j] = (win.max(axis=(2, 3)) if method == "MAX"
                                 else win.sum(axis=(2, 3)) / area)
        return y.astype(np.float32)

    def test_pooling_corners(self):
        if not HAVE_ORT:
            self.skipTest(ORT_MISSING)
        rng = np.random.RandomState(7)
        for case in self.POOL_CASES:
            method, h, w, kh, kw, sh, sw, ph, pw = case
            with self.subTest(case=case):
                proto = self.path("pool.prototxt")
                with open(proto, "w") as f:
                    f.write('layer { name: "data" type: "Input" top: "data" input_param { shape '
                            '{ dim: 2 dim: 3 dim: %d dim: %d } } }\n'
                            'layer { name: "pool" type: "Pooling" bottom: "data" top: "out" '
                            'pooling_param { pool: %s kernel_h: %d kernel_w: %d stride_h: %d '
                            'stride_w: %d pad_h: %d pad_w: %d } }\n'
                            % (h, w, method, kh, kw, sh, sw, ph, pw))
                weights = self.path("pool.caffemodel")
                run("init", proto, "--out", weights)
                model = self.export(proto, weights)
                x = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
                ref = self.caffe_pool(x, method, (kh, kw), (sh, sw), (ph, pw))
                np.save(self.path("x.npy"), x)
                run("forward", proto, weights, "--input", "data=" + self.path("x.npy"),
                    "--output", "out=" + self.path("y.npy"))
                self.assertClose("netsurg %s" % (case,), np.load(self.path("y.npy")), ref)
                (name, y), = ort_forward(model, {"data": x}, self.dir)
                self.assertClose("ONNX Runtime %s" % (case,), y, ref)

    # ---- batch, opsets, errors ----------------------------------------------

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
    def test_dynamic_batch_and_opset_11(self):
        if not HAVE_ORT:
            self.skipTest(ORT_MISSING)
        d = os.path.join(CONF, "mini_caffenet")
        x = np.load(os.path.join(d, "in_data.npy"))
        ref = np.load(os.path.join(d, "blob_prob.npy"))
        for opts in ([], ["--opset", "11"], ["--batch", "3"]):
            with self.subTest(opts=opts):
                model = self.export(os.path.join(d, "net.prototxt"),
                                    os.path.join(d, "weights.caffemodel"), *opts)
                if onnx is not None:
                    m = onnx.load(model)
                    self.assertEqual(m.opset_import[0].version, 11 if opts[:1] == ["--opset"]
                                     else 13)
                    dim0 = m.graph.input[0].type.tensor_type.shape.dim[0]
                    self.assertEqual(dim0.dim_value if opts[:1] == ["--batch"] else dim0.dim_param,
                                     3 if opts[:1] == ["--batch"] else "N")
                # three items where Caffe had two: its two, then the first negated
                xs = np.concatenate([x, -x[:1]])
                (name, y), = ort_forward(model, {"data": xs}, self.dir)
                self.assertEqual(name, "prob")
                self.assertClose("items 0 and 1", y[0:2], ref)
                self.assertGreater(np.abs(y[2] - y[0]).max(), 1e-3, "items are independent")

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
    def test_verify(self):
        d = os.path.join(CONF, "mini_caffenet_fcn")
        args = [CLI, "export", os.path.join(d, "net.prototxt"),
                os.path.join(d, "weights.caffemodel"), "--onnx", self.path("v.onnx"), "--verify"]
        absent = subprocess.run(args, capture_output=True, text=True,
                                env=dict(os.environ, NETSURG_ORT_NODE_PATH=self.path("none")))
        self.assertEqual(absent.returncode, 0, absent.stderr)
        self.assertIn("--verify skipped: ONNX Runtime (npm onnxruntime-node) not found",
                      absent.stderr)
        if not HAVE_ORT:
            self.skipTest(ORT_MISSING)
        p = subprocess.run(args, capture_output=True, text=True,
                           env=dict(os.environ, NETSURG_ORT_NODE_PATH=ORT_MODULES))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("(equal at 1e-4); argmax over axis 1: 0 of 25 cells differ", p.stdout)
        # on Caffe's own input: the 5x5 map printed is Caffe's argmax map
        p = subprocess.run(args + ["--verify-input", "data=" + os.path.join(d, "in_data.npy")],
                           capture_output=True, text=True,
                           env=dict(os.environ, NETSURG_ORT_NODE_PATH=ORT_MODULES))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        at = lines.index("verify: prob: argmax map over axis 1, ONNX Runtime ('*': netsurg's "
                         "differs)")
        printed = [[int(c) for c in row.split()] for row in lines[at + 1:at + 6]]
        caffe = np.load(os.path.join(d, "blob_prob.npy"))[0].argmax(axis=0)
        self.assertEqual(printed, caffe.tolist())
        self.assertNotIn("*", "".join(lines[at + 1:at + 6]))

    def test_errors_name_the_layer_or_option(self):
        proto = self.path("roi.prototxt")
        with open(proto, "w") as f:
            f.write('layer { name: "data" type: "Input" top: "data" top: "rois" input_param { '
                    'shape { dim: 1 dim: 2 dim: 6 dim: 6 } shape { dim: 1 dim: 5 } } }\n'
                    'layer { name: "pool5" type: "ROIPooling" bottom: "data" bottom: "rois" '
                    'top: "y" roi_pooling_param { pooled_h: 2 pooled_w: 2 } }\n')
        weights = self.path("roi.caffemodel")
        run("init", proto, "--out", weights)
        out = self.path("s.onnx")
        p = subprocess.run([CLI, "export", proto, weights, "--onnx", out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("layer 'pool5' (ROIPooling) cannot be exported to ONNX: ONNX MaxRoiPool",
                      p.stderr)
        for bad in (["--onnx", out, "--opset", "10"], ["--onnx", out, "--batch", "0"], []):
            p = subprocess.run([CLI, "export", proto, weights, *bad],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, (bad, p.stderr))
        self.assertFalse(os.path.exists(out))

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
    def test_conformance_nets_at_opset_11(self):
        """Opset 11's Softmax flattens from its axis: the exporter moves the
        axis last and back (softmax_channels, softmax_axis2, the FCN map)."""
        if not HAVE_ORT:
            self.skipTest(ORT_MISSING)
        with open(os.path.join(CONF, "manifest.json")) as f:
            manifest = json.load(f)
        for case, blobs in sorted(manifest.items()):
            with self.subTest(case=case):
                d = os.path.join(CONF, case)
                model = self.export(os.path.join(d, "net.prototxt"),
                                    os.path.join(d, "weights.caffemodel"), "--opset", "11")
                inputs = {n: np.load(os.path.join(d, f)) for n, f in blobs["inputs"].items()}
                for name, y in ort_forward(model, inputs, self.dir):
                    ref = np.load(os.path.join(d, blobs["blobs"][name]["file"]))
                    self.assertClose("%s %s (opset 11)" % (case, name), y, ref)

ZOO = {
    "caffenet": ("current/bvlc_reference_caffenet__deploy.prototxt", 227),
    "caffenet_v1": ("legacy_v1/bvlc_reference_caffenet__deploy.prototxt", 227),
    "squeezenet_v1.1": ("zoo/squeezenet_v1.1__deploy.prototxt", 227),
    "googlenet": ("current/bvlc_googlenet__deploy.prototxt", 224),
    "resnet50": ("zoo/resnet50__deploy.prototxt", 224),
}


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(os.environ.get("NS_SKIP_SLOW") == "1", "slow (NS_SKIP_SLOW=1)")
@unittest.skipIf(not os.path.isdir(PROTO), "../shared prototxts absent")
@unittest.skipIf(not HAVE_ORT, ORT_MISSING)
class ZooInOnnxRuntime(unittest.TestCase):
    """Zoo nets with filler weights (BatchNorm statistics and Scale gammas
    set as test_zoo_opencv does, so that the logits stay moderate): ONNX
    Runtime's prob against netsurg's forward at 1e-4 of its largest
    magnitude, and the same argmax."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-onnx-zoo-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def weights_for(self, proto):
        weights = self.path("w.caffemodel")
        run("init", proto, "--filler", "msra", "--seed", "3", "--out", weights)
        info = json.loads(run("info", proto, "--json").stdout)
        edits = []
        for layer in info["layers"]:
            name = layer["name"].replace("/", "_")
            if layer["type"] == "BatchNorm":
                np.save(self.path(name + "_var.npy"), np.ones(layer["params"][1], np.float32))
                edits += ["--load", "%s[1]=%s" % (layer["name"], self.path(name + "_var.npy")),
                          "--set", "%s[2][0]=1" % layer["name"]]
            elif layer["type"] == "Scale" and layer["params"]:
                np.save(self.path(name + "_g.npy"), np.full(layer["params"][0], 0.3, np.float32))
                edits += ["--load", "%s[0]=%s" % (layer["name"], self.path(name + "_g.npy"))]
        if edits:
            run("edit", proto, weights, *edits, "--out", self.path("w_bn.caffemodel"))
            weights = self.path("w_bn.caffemodel")
        return weights

    def compare(self, key, proto, weights, size, output="prob"):
        model = self.path(key + ".onnx")
        out = run("export", proto, weights, "--onnx", model).stdout
        check_model(self, model)
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3) + size).astype(np.float32)
        np.save(self.path("x.npy"), x)
        run("forward", proto, weights, "--input", "data=" + self.path("x.npy"),
            "--output", "%s=%s" % (output, self.path("y.npy")))
        ours = np.load(self.path("y.npy"))
        (name, theirs), = ort_forward(model, {"data": x}, self.dir)
        self.assertEqual(name, output)
        err = rel_err(theirs, ours)
        print("  %s: %s; ONNX Runtime vs netsurg: %.2g of the largest magnitude" %
              (key, out.splitlines()[0].split(": ", 1)[1], err))
        self.assertLessEqual(err, TOL, key)
        np.testing.assert_array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))
        return ours

    def check(self, key):
        rel, size = ZOO[key]
        proto = os.path.join(PROTO, rel)
        if not os.path.exists(proto):
            self.skipTest(proto + " absent")
        self.compare(key, proto, self.weights_for(proto), (size, size))

    def test_caffenet(self):
        self.check("caffenet")

    def test_caffenet_legacy_v1(self):
        self.check("caffenet_v1")

    def test_squeezenet(self):
        self.check("squeezenet_v1.1")

    def test_googlenet(self):
        self.check("googlenet")

    def test_resnet50(self):
        self.check("resnet50")

    def test_caffenet_fcn_cast(self):
        """The seed's workflow ends in ONNX: the 451x451 cast's 8x8 map."""
        proto = os.path.join(PROTO, ZOO["caffenet"][0])
        weights = self.weights_for(proto)
        run("fcn", proto, weights, "--size", "451", "--batch", "1", "--out", self.path("fcn"))
        prob = self.compare("caffenet_fcn", self.path("fcn.prototxt"),
                            self.path("fcn.caffemodel"), (451, 451))
        self.assertEqual(prob.shape, (1, 1000, 8, 8))


LENET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models",
                     "fmnist_lenet")


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not HAVE_ORT, ORT_MISSING)
class FmnistLenetInOnnxRuntime(unittest.TestCase):
    """The trained Fashion-MNIST LeNet (models/fmnist_lenet, real weights)
    and its fully convolutional cast at 112x112 (a 22x22 map, as `make
    demo` runs it): ONNX Runtime against netsurg's forward at 1e-4 of the
    output's largest magnitude, the argmax equal everywhere; OpenCV's ONNX
    importer the same."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-onnx-lenet-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def compare(self, proto, weights, x):
        model = self.path("m.onnx")
        run("export", proto, weights, "--onnx", model)
        check_model(self, model)
        np.save(self.path("x.npy"), x)
        run("forward", proto, weights, "--input", "data=" + self.path("x.npy"),
            "--output", "prob=" + self.path("y.npy"))
        ours = np.load(self.path("y.npy"))
        (name, theirs), = ort_forward(model, {"data": x}, self.dir)
        self.assertEqual(name, "prob")
        err = rel_err(theirs, ours)
        self.assertLessEqual(err, TOL)
        np.testing.assert_array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))
        net = cv2.dnn.readNetFromONNX(model)
        net.setInput(x, "data")
        cv_err = rel_err(net.forward("prob").reshape(ours.shape), ours)
        self.assertLessEqual(cv_err, TOL)
        print("  %s %s: ONNX Runtime %.2g, OpenCV %.2g of the largest magnitude" %
              (os.path.basename(proto), ours.shape, err, cv_err))
        return ours

    def test_lenet_and_its_cast(self):
        weights = os.path.join(LENET, "fmnist_lenet.caffemodel")
        if not os.path.exists(weights):
            self.skipTest(weights + " absent")
        rng = np.random.RandomState(4)
        self.compare(os.path.join(LENET, "deploy.prototxt"), weights,
                     rng.uniform(0, 1, (1, 1, 28, 28)).astype(np.float32))
        run("fcn", os.path.join(LENET, "deploy.prototxt"), weights, "--size", "112x112",
            "--out", self.path("cast"))
        prob = self.compare(self.path("cast.prototxt"), self.path("cast.caffemodel"),
                            rng.uniform(0, 1, (1, 1, 112, 112)).astype(np.float32))
        self.assertEqual(prob.shape, (1, 10, 22, 22))


if __name__ == "__main__":
    unittest.main()
