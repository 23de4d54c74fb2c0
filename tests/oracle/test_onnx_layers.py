"""The ONNX forms of the layers beyond the conformance nets (BVLC's
Threshold, Tile, Reduction, MVN, Swish, Parameter, Embed, Silence; ArgMax
with top_k and out_max_val; the forks' Interp, Upsample, ShuffleChannel,
Axpy, BN, ReLU6 and depthwise convolutions; SSD's Normalize, Permute and
PriorBox), each in a small net built here:

- onnx.checker.check_model(full_check=True) passes on every model;
- ONNX Runtime's outputs equal netsurg's forward within 1e-4 of the
  output's largest magnitude (TOL, every case; the worst is printed).
  netsurg's forward of these layers is checked against Caffe's and the
  forks' formulas in tests/test_layers_bvlc.c, test_layer_forks.c and
  test_layer_ssd.c; here ONNX Runtime, which shares no code with netsurg,
  must compute the same numbers from the exported graph;
- OpenCV 4.6's ONNX importer as second consumer, at the same tolerance,
  except where OPENCV_DIFFERS says it refuses or computes otherwise.

Also: external data (the weights in OUT.onnx.data), the layers that
still refuse export, named with the reason.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from nscli import CLI, run
from test_onnx_export import (HAVE_ORT, ORT_MISSING, TOL, check_model, cv2, np, onnx,
                              ort_forward, rel_err)

INPUT = 'layer {{ name: "{0}" type: "Input" top: "{0}" input_param {{ shape {{ {1} }} }} }}\n'


def inputs(**shapes):
    return "".join(INPUT.format(n, " ".join("dim: %d" % d for d in s)) for n, s in shapes.items())


def layer(name, type_, bottoms, tops, params=""):
    b = " ".join('bottom: "%s"' % x for x in bottoms.split())
    t = " ".join('top: "%s"' % x for x in tops.split())
    return 'layer { name: "%s" type: "%s" %s %s %s }\n' % (name, type_, b, t, params)


X = (2, 6, 5, 7)
GAUSS = 'filler { type: "gaussian" std: 0.5 }'

# name: (prototxt, {input: shape}, outputs, how to draw the inputs)
CASES = {
    "threshold": (layer("t", "Threshold", "x", "y", "threshold_param { threshold: 0.2 }"),
                  {"x": X}, ["y"], "uniform"),
    "tile": (layer("t", "Tile", "x", "y", "tile_param { axis: 2 tiles: 3 }"),
             {"x": X}, ["y"], "uniform"),
    "reduction_sum": (layer("r", "Reduction", "x", "y", "reduction_param { axis: 1 }"),
                      {"x": X}, ["y"], "uniform"),
    "reduction_asum": (layer("r", "Reduction", "x", "y",
                             "reduction_param { operation: ASUM axis: 2 coeff: 0.5 }"),
                       {"x": X}, ["y"], "uniform"),
    "reduction_sumsq": (layer("r", "Reduction", "x", "y",
                              "reduction_param { operation: SUMSQ axis: -1 }"),
                        {"x": X}, ["y"], "uniform"),
    "reduction_mean": (layer("r", "Reduction", "x", "y",
                             "reduction_param { operation: MEAN axis: 1 coeff: -2 }"),
                       {"x": X}, ["y"], "uniform"),
    "mvn": (layer("m", "MVN", "x", "y"), {"x": X}, ["y"], "uniform"),
    "mvn_across": (layer("m", "MVN", "x", "y", "mvn_param { across_channels: true eps: 0.01 }"),
                   {"x": X}, ["y"], "uniform"),
    "mvn_mean_only_2d": (layer("m", "MVN", "x", "y", "mvn_param { normalize_variance: false }"),
                         {"x": (3, 8)}, ["y"], "uniform"),
    "swish": (layer("s", "Swish", "x", "y"), {"x": X}, ["y"], "wide"),
    "swish_beta": (layer("s", "Swish", "x", "y", "swish_param { beta: 1.7 }"),
                   {"x": X}, ["y"], "wide"),
    "relu6": (layer("r", "ReLU6", "x", "y"), {"x": X}, ["y"], "wide"),
    "parameter": (layer("p", "Parameter", "", "w", "parameter_param { shape { dim: 2 dim: 6 "
                        "dim: 5 dim: 7 } }") + layer("sum", "Eltwise", "x w", "y"),
                  {"x": X}, ["y"], "uniform"),
    "embed": (layer("e", "Embed", "x", "y", "embed_param { num_output: 4 input_dim: 9 "
                    "weight_filler { type: \"gaussian\" } bias_filler { type: \"gaussian\" } }"),
              {"x": (3, 5)}, ["y"], "indices9"),
    "silence": (layer("quiet", "Silence", "z", "") + layer("r", "ReLU", "x", "y"),
                {"x": X, "z": (2, 3)}, ["y"], "uniform"),
    "argmax_top3_axis": (layer("a", "ArgMax", "x", "y", "argmax_param { top_k: 3 axis: 1 }"),
                         {"x": X}, ["y"], "ties"),
    "argmax_top3": (layer("a", "ArgMax", "x", "y", "argmax_param { top_k: 3 }"),
                    {"x": X}, ["y"], "ties"),
    "argmax_top2_values": (layer("a", "ArgMax", "x", "y",
                                 "argmax_param { top_k: 2 out_max_val: true }"),
                           {"x": X}, ["y"], "ties"),
    "argmax_top1_values": (layer("a", "ArgMax", "x", "y", "argmax_param { out_max_val: true }"),
                           {"x": X}, ["y"], "ties"),
    "argmax_top4_values_axis": (layer("a", "ArgMax", "x", "y",
                                      "argmax_param { top_k: 4 axis: -1 out_max_val: true }"),
                                {"x": X}, ["y"], "ties"),
    "interp_zoom": (layer("i", "Interp", "x", "y", "interp_param { zoom_factor: 3 }"),
                    {"x": X}, ["y"], "uniform"),
    "interp_size": (layer("i", "Interp", "x", "y", "interp_param { height: 11 width: 4 }"),
                    {"x": X}, ["y"], "uniform"),
    "interp_shrink_crop": (layer("i", "Interp", "x", "y", "interp_param { shrink_factor: 2 "
                                 "pad_beg: -1 pad_end: -1 }"), {"x": (1, 2, 9, 11)}, ["y"],
                           "uniform"),
    "upsample_nearest": (layer("u", "Upsample", "x", "y", "upsample_param { scale: 2 }"),
                         {"x": X}, ["y"], "uniform"),
    "upsample_nearest3": (layer("u", "Upsample", "x", "y", "upsample_param { scale: 3 }"),
                          {"x": (1, 2, 3, 4)}, ["y"], "uniform"),
    "shuffle_channel": (layer("s", "ShuffleChannel", "x", "y",
                              "shuffle_channel_param { group: 3 }"), {"x": X}, ["y"], "uniform"),
    "axpy": (layer("axpy", "Axpy", "a x b", "y"), {"a": (2, 6, 1, 1), "x": X, "b": X}, ["y"],
             "uniform"),
    "axpy_2d_scale": (layer("axpy", "Axpy", "a x b", "y"), {"a": (2, 6), "x": X, "b": X}, ["y"],
                      "uniform"),
    "bn_pspnet": (layer("bn", "BN", "x", "y", "bn_param { slope_filler { type: \"gaussian\" } "
                        "bias_filler { type: \"gaussian\" } eps: 0.001 }"), {"x": X}, ["y"],
                  "uniform"),
    "bn_segnet_inference": (layer("bn", "BN", "x", "y", "bn_param { bn_mode: INFERENCE "
                                  "scale_filler { type: \"gaussian\" } shift_filler { type: "
                                  "\"gaussian\" } }"), {"x": X}, ["y"], "uniform"),
    "conv_depthwise": (layer("c", "ConvolutionDepthwise", "x", "y", "convolution_param { "
                             "num_output: 1 kernel_size: 3 pad: 1 stride: 2 weight_filler { type: "
                             "\"gaussian\" } bias_filler { type: \"gaussian\" } }"),
                       {"x": X}, ["y"], "uniform"),
    "depthwise_convolution": (layer("c", "DepthwiseConvolution", "x", "y", "convolution_param { "
                                    "num_output: 6 group: 6 kernel_size: 3 weight_filler { type: "
                                    "\"gaussian\" } }"), {"x": X}, ["y"], "uniform"),
    "normalize": (layer("n", "Normalize", "x", "y", "norm_param { scale_filler { type: "
                        "\"constant\" value: 20 } }"), {"x": X}, ["y"], "uniform"),
    "normalize_per_position": (layer("n", "Normalize", "x", "y", "norm_param { across_spatial: "
                                     "false channel_shared: false eps: 0.001 scale_filler { type: "
                                     "\"gaussian\" } }"), {"x": X}, ["y"], "uniform"),
    "permute": (layer("p", "Permute", "x", "y", "permute_param { order: 0 order: 2 order: 3 "
                      "order: 1 }"), {"x": X}, ["y"], "uniform"),
    "prior_box": (layer("p", "PriorBox", "map data", "y", "prior_box_param { min_size: 10 "
                        "max_size: 25 aspect_ratio: 2 flip: true clip: true variance: 0.1 "
                        "variance: 0.1 variance: 0.2 variance: 0.2 }"),
                  {"map": (1, 4, 3, 5), "data": (1, 3, 30, 50)}, ["y"], "uniform"),
}

# Where OpenCV 4.6's ONNX importer refuses a model or computes it
# otherwise (ONNX Runtime and netsurg agree on all of these).
OPENCV_DIFFERS = {
    **{k: "Slice with step -1 (the reversal that gives TopK Caffe's tie order) is refused"
       for k in ("argmax_top1_values", "argmax_top2_values", "argmax_top3", "argmax_top3_axis",
                 "argmax_top4_values_axis")},
    "axpy": "a Mul of two graph values that broadcast (N, C, 1, 1) against (N, C, H, W) fails "
            "its shape check",
    "axpy_2d_scale": "a Mul of two graph values that broadcast is refused",
    "embed": "Gather of an initializer by a computed index (the Cast) is refused",
    "mvn": "Sub/Div of two graph values that broadcast (the per-row mean) fail its shape check",
    "mvn_across": "Div of two graph values that broadcast over three axes is refused",
    "normalize": "Div by a (N, 1, 1, 1) graph value is refused",
    "normalize_per_position": "Div of two graph values that broadcast fails its shape check",
    "parameter": "Identity of an initializer (a node with no graph-value input) is refused",
    "prior_box": "Identity of an initializer is refused, and the graph inputs no node reads",
    "reduction_mean": "ReduceMean to fewer axes then Mul: its Reshape rejects the shape",
    "reduction_sum": "ReduceSum with its axes as an input (opset 13) is not implemented",
    "relu6": "Clip with min and max as inputs (opset 11 on) is refused unless constant-folded",
    "silence": "a graph input that no node reads (Silence's bottom) is refused",
    "threshold": "Greater then Cast fails its shape check",
    "tile": "no Tile layer",
    "upsample_nearest": "a 6-D Reshape (the exact nearest-neighbour repeat) is refused",
    "upsample_nearest3": "a 6-D Reshape (the exact nearest-neighbour repeat) is refused",
}


def draw(how, shape, rng):
    if how == "indices9":
        return rng.randint(0, 9, shape).astype(np.float32)
    if how == "ties":  # few distinct values: Caffe's tie order is checked
        return rng.randint(-2, 3, shape).astype(np.float32)
    if how == "wide":
        return rng.uniform(-10, 10, shape).astype(np.float32)
    return rng.uniform(-1, 1, shape).astype(np.float32)


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class OnnxLayers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-onnx-layers-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def build(self, key, text, shapes, how):
        proto = self.path(key + ".prototxt")
        with open(proto, "w") as f:
            f.write(inputs(**shapes) + text)
        weights = self.path(key + ".caffemodel")
        run("init", proto, "--out", weights, "--seed", "5")
        rng = np.random.RandomState(11)
        xs = {n: draw(how, s, rng) for n, s in shapes.items()}
        return proto, weights, xs

    def netsurg_forward(self, proto, weights, xs, outputs):
        args = ["forward", proto, weights]
        for n, x in xs.items():
            np.save(self.path("in_%s.npy" % n), x)
            args += ["--input", "%s=%s" % (n, self.path("in_%s.npy" % n))]
        for n in outputs:
            args += ["--output", "%s=%s" % (n, self.path("out_%s.npy" % n))]
        run(*args)
        return {n: np.load(self.path("out_%s.npy" % n)) for n in outputs}

    def opencv_forward(self, model, xs, outputs):
        net = cv2.dnn.readNetFromONNX(model)
        for n, x in xs.items():
            net.setInput(x, n)
        return dict(zip(outputs, net.forward(outputs)))

    def check_case(self, key, *opts):
        text, shapes, outputs, how = CASES[key]
        proto, weights, xs = self.build(key, text, shapes, how)
        ours = self.netsurg_forward(proto, weights, xs, outputs)
        model = self.path(key + ".onnx")
        run("export", proto, weights, "--onnx", model, *opts)
        check_model(self, model)
        worst = 0.0
        if HAVE_ORT:
            for name, y in ort_forward(model, xs, self.dir):
                self.assertEqual(tuple(y.shape), tuple(ours[name].shape), key)
                err = rel_err(y, ours[name])
                self.assertLessEqual(err, TOL, "%s %s: ONNX Runtime differs by %.3g of the "
                                     "largest magnitude" % (key, name, err))
                worst = max(worst, err)
        if opts:
            return worst, "", True
        try:
            theirs = self.opencv_forward(model, xs, outputs)
            errs = [rel_err(theirs[n].reshape(ours[n].shape), ours[n]) for n in outputs]
            if max(errs) <= TOL:
                return worst, "OpenCV %.2g" % max(errs), True
            opencv = "OpenCV differs by %.3g" % max(errs)
        except cv2.error as e:
            opencv = "OpenCV refuses"
        return worst, opencv, False

    def test_layer_mappings(self):
        if onnx is None or not HAVE_ORT:
            self.skipTest("python3-onnx and ONNX Runtime are needed: " + ORT_MISSING)
        opencv_differs = set()
        for key in sorted(CASES):
            with self.subTest(case=key):
                worst, opencv, opencv_equal = self.check_case(key)
                if not opencv_equal:
                    opencv_differs.add(key)
                    opencv += " (%s)" % OPENCV_DIFFERS.get(key, "NOT LISTED")
                print("  %-26s ONNX Runtime %.2g of the largest magnitude; %s" %
                      (key, worst, opencv))
        # OpenCV's differences are the listed ones, no more and no fewer.
        self.assertEqual(opencv_differs, set(OPENCV_DIFFERS))

    def test_opset_11(self):
        """The forms that change with the opset (Reduce* axes, Resize's
        inputs, Split, TopK) at opset 11."""
        if onnx is None or not HAVE_ORT:
            self.skipTest("python3-onnx and ONNX Runtime are needed: " + ORT_MISSING)
        for key in ("argmax_top2_values", "reduction_mean", "mvn_across", "normalize",
                    "interp_zoom"):
            with self.subTest(case=key):
                self.check_case(key, "--opset", "11")

    def test_external_data(self):
        """--external-data: the weights in OUT.onnx.data at the offsets the
        model names; the .onnx alone is small; the checker and ONNX Runtime
        read the pair and compute what the single-file model computes."""
        if onnx is None or not HAVE_ORT:
            self.skipTest("python3-onnx and ONNX Runtime are needed: " + ORT_MISSING)
        text = (layer("conv", "Convolution", "x", "c", "convolution_param { num_output: 32 "
                      "kernel_size: 3 weight_filler { type: \"gaussian\" } bias_filler { type: "
                      "\"gaussian\" } }") +
                layer("fc", "InnerProduct", "c", "y", "inner_product_param { num_output: 10 "
                      "weight_filler { type: \"gaussian\" std: 0.01 } }"))
        proto, weights, xs = self.build("ext", text, {"x": (2, 3, 12, 12)}, "uniform")
        inline, external = self.path("inline.onnx"), self.path("ext.onnx")
        run("export", proto, weights, "--onnx", inline)
        out = run("export", proto, weights, "--onnx", external, "--external-data").stdout
        self.assertIn("weights in %s.data" % external, out)
        data = external + ".data"
        self.assertLess(os.path.getsize(external), 4096)
        self.assertGreater(os.path.getsize(data), 32 * 3 * 9 * 4 + 10 * 32 * 10 * 10 * 4)
        onnx.checker.check_model(external, full_check=True)
        bare = onnx.load(external, load_external_data=False)
        full = onnx.load(inline)
        with open(data, "rb") as f:
            raw = f.read()
        outside = 0
        for t, ref in zip(bare.graph.initializer, full.graph.initializer):
            self.assertEqual(t.name, ref.name)
            if t.data_location != onnx.TensorProto.EXTERNAL:
                self.assertLess(len(ref.raw_data) if ref.raw_data else 0, 1024, t.name)
                continue
            entries = {e.key: e.value for e in t.external_data}
            self.assertEqual(entries["location"], "ext.onnx.data")
            off, n = int(entries["offset"]), int(entries["length"])
            self.assertEqual(off % 4096, 0)
            self.assertEqual(raw[off:off + n], ref.raw_data, t.name)
            outside += 1
        self.assertGreaterEqual(outside, 2)  # conv's and fc's weights at least
        ours = self.netsurg_forward(proto, weights, xs, ["y"])
        (name, y), = ort_forward(external, xs, self.dir)
        (_, y_inline), = ort_forward(inline, xs, self.dir)
        np.testing.assert_array_equal(y, y_inline)
        self.assertLessEqual(rel_err(y, ours["y"]), TOL)

    def test_still_refused_name_the_layer(self):
        """Layers with no exact ONNX form stop the export, naming the layer
        and why, and leave no file."""
        cases = {
            "roi": (inputs(x=(1, 2, 6, 6), rois=(1, 5)) +
                    layer("pool5", "ROIPooling", "x rois", "y",
                          "roi_pooling_param { pooled_h: 2 pooled_w: 2 }"),
                    "layer 'pool5' (ROIPooling) cannot be exported to ONNX"),
            "bn_learn": (inputs(x=X) + layer("bn", "BN", "x", "y", "bn_param { bn_mode: LEARN }"),
                         "layer 'bn' (BN) cannot be exported to ONNX: SegNet's LEARN mode"),
        }
        for key, (text, message) in cases.items():
            with self.subTest(case=key):
                proto = self.path(key + ".prototxt")
                with open(proto, "w") as f:
                    f.write(text)
                weights = self.path(key + ".caffemodel")
                run("init", proto, "--out", weights)
                out = self.path(key + ".onnx")
                p = subprocess.run([CLI, "export", proto, weights, "--onnx", out],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn(message, p.stderr)
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
