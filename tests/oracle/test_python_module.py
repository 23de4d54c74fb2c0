"""The Python package (python/netsurg) against independent figures.

Caffe's own outputs (../shared/conformance, BVLC Caffe 1.0) through
pycaffe-style code on netsurg.caffe, at test_conformance.c's tolerance;
pycaffe's own preprocessed arrays (conformance/preprocess) against
caffe.io.load_image + Transformer; live views checked against values
worked out by hand (a delta kernel copies its input, zero weights leave
the bias); the seed's FCN transplant via .flat against Caffe's
mini_caffenet_fcn outputs; errors as exceptions.  Skipped when
libnetsurg.so or the shared folder is missing."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import numpy as np

from nscli import BUILD, SHARED, sanitized

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SO = os.path.join(BUILD, "libnetsurg.so")
CONFORMANCE = os.path.join(SHARED, "conformance")
ABS_TOL, REL_TOL = 1e-5, 1e-4  # tests/test_conformance.c's



SANITIZED = sanitized()
if os.path.exists(SO) and not SANITIZED:
    os.environ.setdefault("NETSURG_LIB", os.path.abspath(SO))
    sys.path.insert(0, os.path.join(ROOT, "python"))
    sys.path.insert(0, os.path.join(ROOT, "python", "caffe_shim"))
    import netsurg
    import caffe
else:
    netsurg = caffe = None
NO_LIB = ("libnetsurg.so built with sanitizers cannot load into python3" if SANITIZED
          else "no %s (make)" % SO)


def case_dir(name):
    return os.path.join(CONFORMANCE, name)


def caffe_blob(case, blob):
    return np.load(os.path.join(case_dir(case), "blob_%s.npy" % blob.replace("/", "_")))


def assert_close(test, got, want, what):
    test.assertEqual(got.shape, want.shape, what)
    excess = np.abs(got.astype(np.float64) - want) - (ABS_TOL + REL_TOL * np.abs(want))
    test.assertTrue(excess.size == 0 or excess.max() <= 0,
                    "%s: max abs error %g over the tolerance" % (what, np.abs(got - want).max()))


def load_case(name, weights=True):
    d = case_dir(name)
    args = [os.path.join(d, "net.prototxt")]
    if weights:
        args.append(os.path.join(d, "weights.caffemodel"))
    return caffe.Net(*args, caffe.TEST)


def feed_inputs(net, name):
    """pycaffe's way: reshape each input blob to the array, then copy in."""
    for f in sorted(os.listdir(case_dir(name))):
        if f.startswith("in_") and f.endswith(".npy"):
            a = np.load(os.path.join(case_dir(name), f))
            blob = net.blobs[f[3:-4]]
            blob.reshape(*a.shape)
            blob.data[...] = a


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)
class ConformanceThroughPycaffeApi(unittest.TestCase):
    def test_every_blob_equals_caffes(self):
        cases = sorted(c for c in os.listdir(CONFORMANCE)
                       if os.path.exists(os.path.join(case_dir(c), "weights.caffemodel")))
        self.assertGreater(len(cases), 40)
        for name in cases:
            with self.subTest(case=name):
                net = load_case(name)
                feed_inputs(net, name)
                out = net.forward()
                self.assertEqual(sorted(out), sorted(net.outputs))
                for blob, b in net.blobs.items():
                    if "_split_" in blob:
                        continue  # inserted Split tops: Caffe saved no file for them
                    assert_close(self, b.data, caffe_blob(name, blob), "%s/%s" % (name, blob))


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)
class PycaffeSurface(unittest.TestCase):
    def test_signatures_and_phases(self):
        d = case_dir("mini_caffenet")
        proto, weights = os.path.join(d, "net.prototxt"), os.path.join(d, "weights.caffemodel")
        a = caffe.Net(proto, weights, caffe.TEST)
        b = caffe.Net(proto, phase=caffe.TEST, weights=weights)
        c = caffe.Net(proto, caffe.TEST)  # fillers only
        np.testing.assert_array_equal(a.params["fc6"][0].data, b.params["fc6"][0].data)
        self.assertFalse(np.array_equal(a.params["fc6"][0].data, c.params["fc6"][0].data))
        with self.assertRaises(ValueError):
            caffe.Net(proto, weights, 7)
        self.assertEqual((caffe.TRAIN, caffe.TEST), (0, 1))

    def test_structure_in_layer_order(self):
        net = load_case("mini_caffenet")
        self.assertEqual(list(net.params), ["conv1", "conv2", "fc6", "fc7"])
        self.assertEqual(list(net.blobs)[0], "data")
        self.assertEqual(net.inputs, ["data"])
        self.assertEqual(net.outputs, ["prob"])
        self.assertEqual(net.layers[1].type, "Convolution")
        self.assertEqual(net._layer_names[1], "conv1")
        self.assertEqual(net.layer_dict["fc6"].blobs[0].shape, (32, 192))
        self.assertEqual(net.bottom_names["fc6"], ["pool2"])
        data, fc6 = net.blobs["data"], net.blobs["fc6"]
        self.assertEqual((data.num, data.channels, data.height, data.width), (2, 3, 39, 39))
        self.assertEqual((fc6.num, fc6.channels, fc6.height, fc6.width), (2, 32, 1, 1))
        self.assertEqual(data.count, 2 * 3 * 39 * 39)
        self.assertEqual(net.params["conv1"][1].diff.shape, (8,))

    def test_gpu_calls_warn(self):
        caffe.set_mode_cpu()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            caffe.set_mode_gpu()
            caffe.set_device(0)
        self.assertEqual(len(w), 2)
        self.assertIn("CPU", str(w[0].message))

    def test_forward_kwargs_and_forward_all(self):
        net = load_case("mini_caffenet")
        x = np.load(os.path.join(case_dir("mini_caffenet"), "in_data.npy"))
        want = caffe_blob("mini_caffenet", "prob")
        out = net.forward(data=x, blobs=["fc6"])
        assert_close(self, out["prob"], want, "forward(data=...)")
        assert_close(self, out["fc6"], caffe_blob("mini_caffenet", "fc6"), "blobs=['fc6']")
        # Three items in batches of two: the last batch is padded, then cut.
        every = net.forward_all(data=np.concatenate([x, x[:1]]))["prob"]
        self.assertEqual(every.shape, (3, 10))
        assert_close(self, every, np.concatenate([want, want[:1]]), "forward_all")
        # pycaffe's partial forward: up to conv2 (its tops returned, before
        # the in-place ReLU), then the rest, gives Caffe's blobs.
        net.blobs["prob"].data[...] = 0
        part = net.forward(data=x, end="conv2")
        self.assertEqual(list(part), ["conv2"])
        self.assertLess(part["conv2"].min(), 0)
        self.assertTrue((net.blobs["prob"].data == 0).all(), "forward ran past end")
        assert_close(self, net.forward(start="relu2")["prob"], want, "forward(start='relu2')")
        assert_close(self, net.blobs["conv2"].data, caffe_blob("mini_caffenet", "conv2"),
                     "conv2 after relu2")

    def test_save_and_copy_from(self):
        net = load_case("mini_caffenet")
        fresh = load_case("mini_caffenet", weights=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "w.caffemodel")
            net.save(path)
            fresh.copy_from(path)
        for layer, blobs in net.params.items():
            for i, b in enumerate(blobs):
                np.testing.assert_array_equal(fresh.params[layer][i].data, b.data)


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)
class LiveViews(unittest.TestCase):
    def test_param_writes_reach_the_next_forward(self):
        # conv_basic: 3x3 kernels, stride 1 (the Winograd path, whose cache
        # of transformed weights must see writes through the view).
        net = load_case("conv_basic")
        feed_inputs(net, "conv_basic")
        net.forward()
        x = net.blobs["data"].data.copy()
        w, bias = net.params["conv"][0].data, net.params["conv"][1].data
        w[...] = 0
        bias[...] = np.arange(1, 5)
        out = net.forward()["out"]
        np.testing.assert_array_equal(out, np.broadcast_to(np.arange(1, 5)[None, :, None, None],
                                                           out.shape))
        # A delta kernel at the centre of input channel 0: each output
        # channel copies that channel's interior, plus its bias.
        w[:, 0, 1, 1] = 1
        out = net.forward()["out"]
        want = x[:, :1, 1:-1, 1:-1] + np.arange(1, 5)[None, :, None, None]
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)

    def test_param_writes_reach_the_winograd_cache(self):
        # 16 -> 16 channels, 3x3, stride 1, 12x12: big enough for the
        # Winograd path, which keeps transformed weights between forwards.
        proto = """name: "wino"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 16 dim: 12 dim: 12 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" value: 0 } } }
"""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "wino.prototxt")
            with open(path, "w") as f:
                f.write(proto)
            net = caffe.Net(path, caffe.TEST)
        x = np.random.default_rng(5).standard_normal((1, 16, 12, 12)).astype(np.float32)
        net.forward(data=x)  # fills the cache from the gaussian weights
        w, bias = net.params["conv"][0].data, net.params["conv"][1].data
        w[...] = 0
        w[:, 3, 1, 1] = 2  # every output: twice input channel 3, plus its bias
        bias[...] = np.arange(16)
        out = net.forward(data=x)["conv"]
        want = 2 * x[:, 3:4] + np.arange(16, dtype=np.float32)[None, :, None, None]
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)

    def test_view_taken_before_forward_shows_new_values(self):
        net = load_case("act_relu")
        feed_inputs(net, "act_relu")
        out_view = net.blobs["out"].data  # taken before any forward
        first = out_view[0]
        x = net.blobs["data"].data
        net.forward()
        np.testing.assert_array_equal(first, np.maximum(x[0], 0))
        x[...] = -x
        net.forward()
        np.testing.assert_array_equal(first, np.maximum(-np.load(
            os.path.join(case_dir("act_relu"), "in_data.npy"))[0], 0))

    def test_transplant_with_flat(self):
        # The seed's cast: fully connected weights become the fully
        # convolutional net's filters flat, then its map is Caffe's.
        net = load_case("mini_caffenet")
        fcn = load_case("mini_caffenet_fcn", weights=False)
        for src, dst in [("conv1", "conv1"), ("conv2", "conv2"), ("fc6", "fc6-conv"),
                         ("fc7", "fc7-conv")]:
            for i in range(2):
                fcn.params[dst][i].data.flat = net.params[src][i].data.flat
        feed_inputs(fcn, "mini_caffenet_fcn")
        prob = fcn.forward()["prob"]
        assert_close(self, prob, caffe_blob("mini_caffenet_fcn", "prob"), "fcn prob")
        self.assertEqual(prob.shape[2:], (5, 5))

    def test_seed_designer_filters(self):
        # The notebook's first half, as its pycaffe code is written: a view
        # of the output taken before forward, params set through .data,
        # against what Caffe computed (conformance/designer_filters).
        d = case_dir("designer_filters")
        if not os.path.isdir(d):
            self.skipTest("no %s" % d)
        net = caffe.Net(os.path.join(d, "net.prototxt"), caffe.TEST)
        im = caffe.io.load_image(os.path.join(SHARED, "data", "cat_gray.jpg"), color=False)
        im_input = im[np.newaxis, np.newaxis, :, :, 0]
        np.testing.assert_allclose(im_input, np.load(os.path.join(d, "in_data.npy")), atol=1e-6)
        net.blobs["data"].reshape(*im_input.shape)
        net.blobs["data"].data[...] = im_input
        conv0 = net.blobs["conv"].data[0, 0]
        net.params["conv"][0].data[...] = np.load(os.path.join(d, "conv_weights.npy"))
        net.params["conv"][1].data[...] = np.load(os.path.join(d, "conv_bias.npy"))
        net.forward()
        want = np.load(os.path.join(d, "blob_conv.npy"))
        assert_close(self, net.blobs["conv"].data, want, "conv")
        self.assertAlmostEqual(float(conv0.mean()), 1.494440, places=5)  # README there

    def test_fcn_cast_gives_caffes_map(self):
        # netsurg.Net.fcn: the library's cast of mini_caffenet at 71 x 71
        # is the net Caffe ran by hand as mini_caffenet_fcn.
        d = case_dir("mini_caffenet")
        net = netsurg.Net.load(os.path.join(d, "net.prototxt"),
                               os.path.join(d, "weights.caffemodel"))
        fcn = net.fcn(height=71, width=71, batch=1)
        self.assertIn("fc6-conv", fcn.params)
        x = np.load(os.path.join(case_dir("mini_caffenet_fcn"), "in_data.npy"))
        prob = fcn.forward(data=x)["prob"]
        want = caffe_blob("mini_caffenet_fcn", "prob")
        assert_close(self, prob, want, "cast prob")
        # classify on the first image's map: argmax and top-3 as numpy's
        got = netsurg.classify(prob[0], top=3)
        np.testing.assert_array_equal(got["argmax"], want[0].argmax(0))
        order = np.argsort(-want[0].mean((1, 2)), kind="stable")[:3]
        np.testing.assert_array_equal(got["top_mean"], order)
        with self.assertRaises(ValueError):
            netsurg.classify(prob[0, 0, 0, :, None])

    @staticmethod
    def _forward_beside_a_spinner(net):
        done, started, stamps = threading.Event(), threading.Event(), []

        def spin():
            started.set()
            while not done.is_set():
                stamps.append(time.perf_counter())

        t = threading.Thread(target=spin)
        t.start()
        started.wait()
        try:
            t0 = time.perf_counter()
            net.run_forward()
            t1 = time.perf_counter()
        finally:
            done.set()
            t.join()
        return t0, t1, stamps

    def test_forward_releases_the_gil(self):
        # Another thread records the time of each of its loop turns while
        # one long forward runs.  Were the GIL held through the foreign
        # call, no turn could fall inside it (only after it returns); turns
        # in its first half prove the release (CDLL, not PyDLL).
        net = netsurg.Net.load(os.path.join(case_dir("mini_caffenet"), "net.prototxt"))
        # The forward must outlast several of Python's thread switch
        # intervals for the check to mean anything: grow the batch until it
        # does (a precondition of the check, not a timing assertion).
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        try:
            for batch in (256, 1024, 4096):
                net.reshape_input("data", (batch, 3, 39, 39))
                t0, t1, stamps = self._forward_beside_a_spinner(net)
                if t1 - t0 > 0.02:
                    break
        finally:
            sys.setswitchinterval(old_interval)
        self.assertGreater(t1 - t0, 0.02, "forward too short to tell")
        inside = [s for s in stamps if t0 < s < t0 + (t1 - t0) / 2]
        self.assertGreater(len(inside), 0, "no other thread ran during forward")


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)
class Errors(unittest.TestCase):
    def test_unknown_names_are_key_errors(self):
        net = load_case("mini_caffenet")
        with self.assertRaises(KeyError):
            net.blobs["no_such_blob"]
        with self.assertRaises(KeyError):
            net.forward(blobs=["no_such_blob"])
        with self.assertRaises(KeyError):
            net.forward(no_such_input=np.zeros((2, 3, 39, 39)))
        with self.assertRaises(KeyError):
            netsurg.Net.load(os.path.join(case_dir("act_relu"), "net.prototxt")).blob("nope")

    def test_wrong_shapes_are_value_errors(self):
        net = load_case("mini_caffenet")
        with self.assertRaises(ValueError):
            net.forward(data=np.zeros((3, 3, 39, 39), np.float32))
        with self.assertRaises(ValueError):
            net.forward(data=np.zeros((2, 3, 40, 40), np.float32))
        core = netsurg.Net.load(os.path.join(case_dir("mini_caffenet"), "net.prototxt"))
        with self.assertRaises(ValueError):
            core.forward(data=np.zeros((2, 3, 38, 39), np.float32))

    def test_hostile_files_are_netsurg_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.prototxt")
            with open(bad, "w") as f:
                f.write('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: -5')
            with self.assertRaises(netsurg.Error) as e:
                caffe.Net(bad, caffe.TEST)
            self.assertEqual(e.exception.status, "NS_ERR_INPUT")
            self.assertIn("bad.prototxt", e.exception.message)
            junk = os.path.join(tmp, "junk.caffemodel")
            with open(junk, "wb") as f:
                f.write(bytes(range(256)) * 4)
            net = load_case("mini_caffenet")
            with self.assertRaises(netsurg.Error):
                net.copy_from(junk)
            with self.assertRaises(netsurg.Error) as e:
                caffe.Net(os.path.join(tmp, "missing.prototxt"), caffe.TEST)
            self.assertEqual(e.exception.status, "NS_ERR_IO")


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)
class ClassifierAndOversample(unittest.TestCase):
    def setUp(self):
        d = case_dir("mini_caffenet")
        self.files = os.path.join(d, "net.prototxt"), os.path.join(d, "weights.caffemodel")
        self.net = caffe.Net(*self.files, caffe.TEST)
        rng = np.random.default_rng(7)
        self.images = rng.random((3, 45, 47, 3)).astype(np.float32)

    def probs(self, hwc_batch):
        """The net's prob for each H x W x 3 crop, one forward per crop pair."""
        chw = np.ascontiguousarray(hwc_batch.transpose(0, 3, 1, 2))
        return self.net.forward_all(data=chw)["prob"]

    def test_oversample_is_corners_centre_and_mirrors(self):
        im = self.images[0]
        crops = caffe.io.oversample([im], (39, 39))
        self.assertEqual(crops.shape, (10, 39, 39, 3))
        # 45 x 47 image, 39 x 39 crops: corners start at rows 0/6, columns
        # 0/8; the centre at (int(22.5 - 19.5), int(23.5 - 19.5)) = (3, 4).
        starts = [(0, 0), (0, 8), (6, 0), (6, 8), (3, 4)]
        for i, (y, x) in enumerate(starts):
            np.testing.assert_array_equal(crops[i], im[y:y + 39, x:x + 39])
            np.testing.assert_array_equal(crops[5 + i], im[y:y + 39, x:x + 39][:, ::-1])

    def test_predict_center_crop_and_oversample(self):
        clf = caffe.Classifier(*self.files, image_dims=(45, 47), raw_scale=255.0,
                               channel_swap=(2, 1, 0))
        prepared = self.images[:, :, :, ::-1] * 255.0  # swap to BGR, scale: by hand
        centre = self.probs(prepared[:, 3:42, 4:43])
        np.testing.assert_allclose(clf.predict(list(self.images), oversample=False), centre,
                                   rtol=1e-5, atol=1e-6)
        starts = [(0, 0), (0, 8), (6, 0), (6, 8), (3, 4)]
        crops = [prepared[:, y:y + 39, x:x + 39] for y, x in starts]
        crops += [c[:, :, ::-1] for c in crops]
        want = np.mean([self.probs(c) for c in crops], axis=0)
        np.testing.assert_allclose(clf.predict(list(self.images)), want, rtol=1e-5, atol=1e-6)


FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"  # the solver's source
LENET = os.path.join(ROOT, "models", "fmnist_lenet")


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.exists(FMNIST), "no %s (dataset-fashion-mnist)" % FMNIST)
class Solvers(unittest.TestCase):
    def write_solver(self, tmp, prefix):
        path = os.path.join(tmp, prefix + "_solver.prototxt")
        with open(path, "w") as f:
            f.write('net: "%s"\ntest_iter: 2\ntest_interval: 1000\nbase_lr: 0.01\n'
                    'momentum: 0.9\nweight_decay: 0.0005\nlr_policy: "inv"\ngamma: 0.0001\n'
                    'power: 0.75\ndisplay: 0\nmax_iter: 12\nsnapshot_prefix: "%s"\n'
                    'random_seed: 3\n' % (os.path.join(LENET, "train_val.prototxt"),
                                           os.path.join(tmp, prefix)))
        return path

    def test_sgd_steps_equal_netsurg_train(self):
        # One thread on both sides: training is then deterministic, and
        # SGDSolver.step must land on the very weights `netsurg train` does.
        cli = os.path.abspath(os.path.join(BUILD, "netsurg"))
        if not os.path.exists(cli):
            self.skipTest("no %s" % cli)
        deploy = os.path.join(LENET, "deploy.prototxt")
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([cli, "train", self.write_solver(tmp, "cli"), "--threads", "1",
                                "--quiet"], capture_output=True, text=True, cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            netsurg.set_num_threads(1)
            try:
                solver = caffe.SGDSolver(self.write_solver(tmp, "py"))
                before = solver.net.params["conv1"][0].data.copy()
                solver.step(5)
                self.assertEqual(solver.iter, 5)
                solver.step(7)
                solver.snapshot()
            finally:
                netsurg.set_num_threads(0)
            self.assertEqual(solver.iter, 12)
            self.assertFalse(np.array_equal(solver.net.params["conv1"][0].data, before))
            self.assertEqual(len(solver.test_nets), 1)
            want = caffe.Net(deploy, os.path.join(tmp, "cli_iter_12.caffemodel"), caffe.TEST)
            got = caffe.Net(deploy, os.path.join(tmp, "py_iter_12.caffemodel"), caffe.TEST)
            for layer, blobs in want.params.items():
                for i, b in enumerate(blobs):
                    np.testing.assert_array_equal(got.params[layer][i].data, b.data,
                                                  "%s[%d]" % (layer, i))
                    np.testing.assert_array_equal(solver.net.params[layer][i].data, b.data)

    def test_bad_solver_is_an_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.prototxt")
            with open(path, "w") as f:
                f.write("base_lr: oops\n")
            with self.assertRaises(netsurg.Error):
                caffe.get_solver(path)


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(CONFORMANCE), "no %s" % CONFORMANCE)  # its caffemodel
class OfflineInstall(unittest.TestCase):
    def test_make_python_installs_package_library_and_caffe_pb2(self):
        # `make python` into a scratch folder: the installed package must
        # load its own copy of the library, and caffe_pb2 (protobuf's own
        # decoder) must read a caffemodel as netsurg's loader does.
        for tool, why in (("protoc", "protobuf-compiler"), ("make", "make")):
            if shutil.which(tool) is None:
                self.skipTest("no %s (%s)" % (tool, why))
        try:
            import setuptools  # noqa: F401
            import google.protobuf  # noqa: F401
        except ImportError as e:
            self.skipTest("%s (scripts/install-deps.sh test)" % e)
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "site")
            p = subprocess.run(["make", "--no-print-directory", "-s", "python",
                                "BUILD=" + BUILD, "PY_TARGET=" + target],
                               capture_output=True, text=True, cwd=ROOT)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            env = {k: v for k, v in os.environ.items() if k not in ("NETSURG_LIB", "PYTHONPATH")}
            env["PYTHONPATH"] = os.pathsep.join([target, os.path.join(ROOT, "python",
                                                                       "caffe_shim")])
            p = subprocess.run([sys.executable, "-c", INSTALLED_CHECK,
                                case_dir("mini_caffenet")], capture_output=True, text=True,
                               env=env, cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            lib_path, compared = p.stdout.split()
            self.assertEqual(lib_path, os.path.join(target, "netsurg", "libnetsurg.so"))
            self.assertEqual(compared, "8")  # 4 layers with weights and biases


# Run by the installed package: prints the library it loaded and how many
# params caffe_pb2 and caffe.Net agree on (it fails on the first that differs).
INSTALLED_CHECK = """
import os, sys
import numpy as np
import caffe, netsurg._lib
from caffe.proto import caffe_pb2
d = sys.argv[1]
msg = caffe_pb2.NetParameter()
with open(os.path.join(d, "weights.caffemodel"), "rb") as f:
    msg.ParseFromString(f.read())
net = caffe.Net(os.path.join(d, "net.prototxt"), os.path.join(d, "weights.caffemodel"), caffe.TEST)
n = 0
for layer in msg.layer:
    for i, blob in enumerate(layer.blobs):
        want = caffe.io.blobproto_to_array(blob)
        assert np.array_equal(net.params[layer.name][i].data, want), (layer.name, i)
        back = caffe.io.blobproto_to_array(caffe.io.array_to_blobproto(want))
        assert np.array_equal(back, want)
        n += 1
datum = caffe_pb2.Datum(channels=2, height=1, width=3, data=bytes([1, 2, 3, 250, 5, 6]))
assert caffe.io.datum_to_array(datum).tolist() == [[[1, 2, 3]], [[250, 5, 6]]]
datum = caffe_pb2.Datum(channels=1, height=2, width=1, float_data=[0.5, -2])
assert caffe.io.datum_to_array(datum).tolist() == [[[0.5], [-2.0]]]
print(netsurg._lib.lib._name, n)
"""


PRE = os.path.join(CONFORMANCE, "preprocess")
MEAN_BGR = [104.0069879317889, 116.66876761696767, 122.6789143406786]  # settings.json


@unittest.skipUnless(netsurg is not None, NO_LIB)
@unittest.skipUnless(os.path.isdir(PRE), "no %s" % PRE)
class TransformerAgainstPycaffe(unittest.TestCase):
    def run_case(self, reference, image, color):
        want = np.load(os.path.join(PRE, reference))
        t = caffe.io.Transformer({"data": want.shape})
        t.set_transpose("data", (2, 0, 1))
        t.set_raw_scale("data", 255.0)
        if color:
            t.set_channel_swap("data", (2, 1, 0))
            t.set_mean("data", np.array(MEAN_BGR))
        im = caffe.io.load_image(os.path.join(SHARED, "data", image), color=color)
        self.assertEqual(im.shape[2], 3 if color else 1)
        got = t.preprocess("data", im)
        self.assertEqual(got.shape, want.shape[1:])
        self.assertLessEqual(np.abs(got - want[0]).max(), 1e-3)  # test_preprocess.c's
        if color:  # deprocess undoes it: back to the resized image in [0, 1]
            back = t.deprocess("data", got)
            resized = caffe.io.resize_image(im, want.shape[2:])
            np.testing.assert_allclose(back, resized, atol=1e-5)

    def test_cat_227(self):
        self.run_case("cat_227_input.npy", "cat.jpg", True)

    def test_cat_451(self):
        self.run_case("cat_451_input.npy", "cat.jpg", True)

    def test_cat_gray_100(self):
        self.run_case("cat_gray_100_input.npy", "cat_gray.jpg", False)


if __name__ == "__main__":
    unittest.main()
